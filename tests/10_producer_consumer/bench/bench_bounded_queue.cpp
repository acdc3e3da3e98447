// Benchmark (label "bench", release build): items per second through the
// reference BoundedQueue, with 1 producer -> 1 consumer and 4 -> 4 threads,
// at a small and a large capacity, next to the Python course's
// multiprocessing.Queue (mp_queue.py beside this file) of the same capacity,
// measured in the same run.
//
// Capacity 16, 1 -> 1 is run ten times in two placements, and the slowest,
// median and fastest runs are printed. With both threads on one CPU (and
// Python's two processes on that CPU too) the figure is steady: a thread
// that finds the queue full or empty sleeps, and the other one runs at
// once. Left to the scheduler, the two threads may land on two CPUs; then
// every sleep lasts until the sleeper's CPU is free again, which on a
// machine busy with other work can be tens of microseconds for 16 items, so
// the unpinned figure swings with the machine's load, not with the queue.
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
// `consumers` threads; returns items per second. With `cpu`, every thread
// runs on that CPU only.
double measure(std::size_t producers, std::size_t consumers, std::size_t capacity,
               std::uint64_t per_producer, std::optional<int> cpu = std::nullopt) {
  BoundedQueue<std::uint64_t> queue(capacity);
  std::vector<std::uint64_t> sums(consumers, 0);
  const auto started = std::chrono::steady_clock::now();
  {
    std::vector<std::jthread> consumer_threads;
    for (std::size_t k = 0; k < consumers; ++k) {
      consumer_threads.emplace_back([&queue, &sums, k, cpu] {
        if (cpu) {
          lab::bench::set_cpu(0, cpu);
        }
        while (auto item = queue.pop()) {
          sums[k] += *item;
        }
      });
    }
    {
      std::vector<std::jthread> producer_threads;
      for (std::size_t p = 0; p < producers; ++p) {
        producer_threads.emplace_back([&queue, per_producer, cpu] {
          if (cpu) {
            lab::bench::set_cpu(0, cpu);
          }
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
// With `cpu`, Python and the processes it starts run on that CPU only (a
// child inherits its parent's CPU affinity: sched_setaffinity(2)).
std::optional<double> python_queue(const std::string& script, std::uint64_t items,
                                   std::optional<int> cpu) {
  if (!lab::bench::find_program("python3")) {
    return std::nullopt;
  }
  lab::bench::set_cpu(0, cpu);
  const auto result =
      lab::testing::run({script, std::to_string(items), "16"}, "", std::chrono::minutes(2));
  lab::bench::set_cpu(0, std::nullopt);
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
    const std::string script = argc > 1 && argv[1][0] != '-' ? argv[1] : "";
    for (const std::optional<int> cpu : {std::optional<int>(0), std::optional<int>()}) {
      const std::string where = cpu ? "all on CPU 0" : "unpinned";
      // Count the sleeps too: a sleep is a voluntary context switch
      // (getrusage(2), all our threads), and each costs microseconds.
      rusage before{};
      ::getrusage(RUSAGE_SELF, &before);
      std::vector<double> rates;
      for (int run = 0; run < 10; ++run) {
        rates.push_back(measure(1, 1, 16, items, cpu));
      }
      rusage after{};
      ::getrusage(RUSAGE_SELF, &after);
      fmt::print("  1->1, capacity 16, {}, each run (items/s):", where);
      for (const double rate : rates) {
        fmt::print(" {:.2g}", rate);
      }
      fmt::print("\n");
      std::sort(rates.begin(), rates.end());
      const double median = (rates[4] + rates[5]) / 2;
      lab::bench::print_figure(fmt::format("1->1, cap. 16, {}: slowest", where), rates.front(),
                               "items/s");
      lab::bench::print_figure(fmt::format("1->1, cap. 16, {}: median", where), median, "items/s");
      lab::bench::print_ratio(
          fmt::format("1->1, cap. 16, {}: fastest", where), rates.back(), "items/s",
          cpu ? "slowest (target: <= 2x)" : "slowest (swings with the load)", rates.front());
      lab::bench::print_figure(fmt::format("1->1, cap. 16, {}: sleeps per run", where),
                               static_cast<double>(after.ru_nvcsw - before.ru_nvcsw) / 10, "");
      if (const auto python =
              script.empty() ? std::nullopt : python_queue(script, items / 10, cpu)) {
        lab::bench::print_figure(fmt::format("multiprocessing.Queue(16), 1->1, {}", where), *python,
                                 "items/s");
        lab::bench::print_ratio(
            fmt::format("1->1, cap. 16, {}: median", where), median, "items/s",
            cpu ? "multiprocessing.Queue's (target: >= 5x)" : "multiprocessing.Queue's", *python);
      } else if (cpu) {
        fmt::print("  (python3 not found: no multiprocessing.Queue figure to compare with)\n");
      }
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
