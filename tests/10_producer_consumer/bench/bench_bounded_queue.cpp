// Benchmark (label "bench", release build): items per second through the
// reference BoundedQueue, with 1 producer -> 1 consumer and 4 -> 4 threads,
// at a small and a large capacity.
#include <fmt/core.h>

#include <bounded_queue.hpp>
#include <chrono>
#include <cstdint>
#include <cstdlib>
#include <thread>
#include <vector>

namespace {

using lab::producer_consumer::BoundedQueue;

// Runs `producers` x `per_producer` items through a queue of `capacity` to
// `consumers` threads; returns items per second.
double measure(std::size_t producers, std::size_t consumers, std::size_t capacity,
               std::uint64_t per_producer) {
  BoundedQueue<std::uint64_t> queue(capacity);
  std::vector<std::uint64_t> sums(consumers, 0);
  const auto started = std::chrono::steady_clock::now();
  {
    std::vector<std::jthread> consumer_threads;
    for (std::size_t k = 0; k < consumers; ++k) {
      consumer_threads.emplace_back([&queue, &sums, k] {
        while (auto item = queue.pop()) {
          sums[k] += *item;
        }
      });
    }
    {
      std::vector<std::jthread> producer_threads;
      for (std::size_t p = 0; p < producers; ++p) {
        producer_threads.emplace_back([&queue, per_producer] {
          for (std::uint64_t i = 1; i <= per_producer; ++i) {
            queue.push(i);
          }
        });
      }
    }  // producers joined
    queue.close();
  }  // consumers joined
  const std::chrono::duration<double> elapsed = std::chrono::steady_clock::now() - started;
  std::uint64_t sum = 0;
  for (const auto s : sums) {
    sum += s;
  }
  const std::uint64_t expected = producers * (per_producer * (per_producer + 1) / 2);
  if (sum != expected) {
    fmt::print("WRONG: sum {} instead of {}\n", sum, expected);
    std::exit(1);
  }
  return static_cast<double>(producers * per_producer) / elapsed.count();
}

}  // namespace

int main() {
  constexpr std::uint64_t kItems = 2'000'000;  // per run, split among the producers
  fmt::print("BoundedQueue<uint64_t>, {} items per run, {} hardware threads\n", kItems,
             std::thread::hardware_concurrency());
  for (const std::size_t capacity : {16UL, 1024UL}) {
    for (const std::size_t threads : {1UL, 4UL}) {
      const double rate = measure(threads, threads, capacity, kItems / threads);
      fmt::print("  {}->{} threads, capacity {:5}: {:12.0f} items/s\n", threads, threads, capacity, rate);
    }
  }
  return 0;
}
