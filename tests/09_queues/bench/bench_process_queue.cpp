// Benchmark (label "bench", release build): messages per second through the
// reference ProcessQueue (lessons/09_queues), 1 -> 1 and 4 -> 4 processes,
// with 64-byte messages (atomic writes) and 16 KiB ones (above PIPE_BUF).
#include <fmt/core.h>

#include <chrono>
#include <cstdlib>
#include <string>

#include "lab/forked.hpp"
#include "process_queue.hpp"

namespace {

using lab::queues::ProcessQueue;

double measure(int producers, int consumers, std::size_t size, int messages_each) {
  ProcessQueue queue;
  const std::string message(size, 'm');
  const auto started = std::chrono::steady_clock::now();
  lab::ForkedChildren processes;
  for (int c = 0; c < consumers; ++c) {
    processes.start([&queue] {
      queue.consumer_only();
      int got = 0;
      while (queue.get()) {
        ++got;
      }
      return got > 0 ? 0 : 1;
    });
  }
  for (int p = 0; p < producers; ++p) {
    processes.start([&queue, &message, messages_each] {
      queue.producer_only();
      for (int i = 0; i < messages_each; ++i) {
        queue.put(message);
      }
      queue.close();
      return 0;
    });
  }
  queue.close();
  queue.producer_only();
  for (const auto& status : processes.wait_all(std::chrono::minutes(5))) {
    if (status.code > 1 || status.signal != 0) {
      fmt::print("a process {}\n", status.to_string());
      std::exit(1);
    }
  }
  const std::chrono::duration<double> elapsed = std::chrono::steady_clock::now() - started;
  return producers * messages_each / elapsed.count();
}

}  // namespace

int main() {
  constexpr int kMessages = 400'000;  // per run, split among the producers
  for (const std::size_t size : {std::size_t{64}, std::size_t{16384}}) {
    const int total = size > 4096 ? kMessages / 20 : kMessages;
    for (const int processes : {1, 4}) {
      const double rate = measure(processes, processes, size, total / processes);
      fmt::print("  {}->{} processes, {:5}-byte messages: {:10.0f} messages/s ({:7.1f} MB/s)\n", processes,
                 processes, size, rate, rate * static_cast<double>(size) / 1e6);
    }
  }
  return 0;
}
