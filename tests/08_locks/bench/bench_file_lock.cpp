// Benchmark (label "bench", release build): tickets per second sold under the
// reference file lock (lessons/08_locks, exercise 08.1) by 1 and by 50 buyer
// processes, and by 50 threads under the mutex (08.2) for comparison.
#include <fmt/core.h>

#include <chrono>
#include <filesystem>
#include <future>
#include <string>
#include <vector>

#include "lab/forked.hpp"
#include "lab/temp_dir.hpp"
#include "locks.hpp"

namespace {

namespace fs = std::filesystem;
namespace locks = lab::locks;

constexpr int kTickets = 20'000;

double file_lock_rate(const fs::path& path, int buyers) {
  locks::create_office(path, kTickets);
  const auto started = std::chrono::steady_clock::now();
  lab::ForkedChildren processes;
  for (int b = 0; b < buyers; ++b) {
    processes.start([&path] {
      const lab::Fd office = locks::open_office(path);
      while (locks::buy_ticket(office)) {
      }
      return 0;
    });
  }
  for (const auto& status : processes.wait_all(std::chrono::minutes(5))) {
    if (!status.success()) {
      fmt::print("a buyer {}\n", status.to_string());
      std::exit(1);
    }
  }
  const std::chrono::duration<double> elapsed = std::chrono::steady_clock::now() - started;
  if (locks::read_count(locks::open_office(path)) != 0) {
    fmt::print("WRONG: tickets left over\n");
    std::exit(1);
  }
  return kTickets / elapsed.count();
}

double mutex_rate(int threads) {
  locks::TicketCounter counter(kTickets * 10);
  const auto started = std::chrono::steady_clock::now();
  {
    std::vector<std::future<void>> buyers;
    for (int t = 0; t < threads; ++t) {
      buyers.push_back(std::async(std::launch::async, [&counter] {
        while (counter.buy()) {
        }
      }));
    }
  }
  const std::chrono::duration<double> elapsed = std::chrono::steady_clock::now() - started;
  return kTickets * 10 / elapsed.count();
}

}  // namespace

int main() {
  const lab::TempDir dir("lab08-bench");
  const fs::path path = dir.path() / "tickets";
  fmt::print("{} tickets per run\n", kTickets);
  fmt::print("  file lock (F_OFD_SETLKW),  1 buyer process : {:10.0f} tickets/s\n", file_lock_rate(path, 1));
  fmt::print("  file lock (F_OFD_SETLKW), 50 buyer processes: {:10.0f} tickets/s\n", file_lock_rate(path, 50));
  fmt::print("  std::mutex, 50 buyer threads                : {:10.0f} tickets/s\n", mutex_rate(50));
  return 0;
}
