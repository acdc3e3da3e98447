// Benchmark (label "bench", release build): items per second through the
// reference BoundedQueue, with 1 producer -> 1 consumer and 4 -> 4 threads,
// at a small and a large capacity. Capacity 16, 1 -> 1 is run ten times: the
// slowest and fastest run show how much the figure swings (a queue that puts
// a thread to sleep for every item swings with the scheduler), next to the
// Python course's multiprocessing.Queue (mp_queue.py beside this file) of
// the same capacity, measured in the same run.
//
//   cmake --workflow --preset bench
//   build/release/lessons/10_producer_consumer/bench10_bounded_queue [MP_QUEUE_PY] [--items N]
#include <fmt/core.h>
#include <sys/resource.h>

#include <algorithm>
#include <bounded_queue.hpp>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "bench_support.hpp"
#include "lab/testing.hpp"

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

// multiprocessing.Queue's items per second, or nullopt without python3.
std::optional<double> python_queue(const std::string& script, std::uint64_t items) {
  if (!lab::bench::find_program("python3")) {
    return std::nullopt;
  }
  const auto result =
      lab::testing::run({script, std::to_string(items), "16"}, "", std::chrono::minutes(2));
  if (!result.status.success()) {
    throw std::runtime_error("mp_queue.py failed: " + result.describe());
  }
  return std::stod(result.out);
}

}  // namespace

int main(int argc, char** argv) {
  try {
    const std::uint64_t items = lab::bench::number_option(argc, argv, "--items", 2'000'000);
    fmt::print("BoundedQueue<uint64_t>, {} items per run, {} hardware threads\n", items,
               std::thread::hardware_concurrency());
    // Sleeps are what make the figure swing: count them too (getrusage(2),
    // all our threads). A sleep is a voluntary context switch.
    rusage before{};
    ::getrusage(RUSAGE_SELF, &before);
    std::vector<double> rates;
    for (int run = 0; run < 10; ++run) {
      rates.push_back(measure(1, 1, 16, items));
    }
    rusage after{};
    ::getrusage(RUSAGE_SELF, &after);
    fmt::print("  1->1, capacity 16, each run (items/s):");
    for (const double rate : rates) {
      fmt::print(" {:.2g}", rate);
    }
    fmt::print("\n");
    std::sort(rates.begin(), rates.end());
    const double median = (rates[4] + rates[5]) / 2;
    lab::bench::print_figure("1->1, capacity 16, median of 10 runs", median, "items/s");
    lab::bench::print_ratio("1->1, capacity 16, fastest run", rates.back(), "items/s",
                            "slowest (target: <= 2x)", rates.front());
    lab::bench::print_figure("1->1, capacity 16, sleeps (voluntary switches) per run",
                             static_cast<double>(after.ru_nvcsw - before.ru_nvcsw) / 10, "");
    const std::string script = argc > 1 && argv[1][0] != '-' ? argv[1] : "";
    if (const auto python = script.empty() ? std::nullopt : python_queue(script, items / 10)) {
      lab::bench::print_figure("multiprocessing.Queue(16), 1->1 processes", *python, "items/s");
      lab::bench::print_ratio("1->1, capacity 16, median", median, "items/s",
                              "multiprocessing.Queue's (target: >= 5x)", *python);
    } else {
      fmt::print("  (python3 not found: no multiprocessing.Queue figure to compare with)\n");
    }
    for (const std::size_t capacity : {16UL, 1024UL}) {
      for (const std::size_t threads : {1UL, 4UL}) {
        if (capacity == 16 && threads == 1) {
          continue;  // above
        }
        const double rate = measure(threads, threads, capacity, items / threads);
        lab::bench::print_figure(
            fmt::format("{}->{} threads, capacity {}", threads, threads, capacity), rate,
            "items/s");
      }
    }
    return 0;
  } catch (const std::exception& error) {
    std::fprintf(stderr, "bench10_bounded_queue: %s\n", error.what());
    return 1;
  }
}
