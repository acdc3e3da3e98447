// Lesson 11 — a crowd of clients: opens many connections at once, sends a
// line on each, round after round, checks that each reply is that line
// upper-cased, and prints a summary.
//
//   build/default/lessons/11_threaded_server/client                              (10 connections x 10 rounds)
//   build/default/lessons/11_threaded_server/client --connections 1000 --rounds 10
//
// All the connections are open before the first round starts, so the
// server holds them all at once: that is what a thread per connection costs.
#include <algorithm>
#include <chrono>
#include <cstddef>
#include <mutex>
#include <string>
#include <system_error>
#include <thread>
#include <vector>

#include "lab/error.hpp"
#include "lab/io.hpp"
#include "lab/program.hpp"
#include "lab/socket.hpp"

namespace {

struct Tally {
  std::mutex mutex;
  std::size_t round_trips = 0;
  std::size_t failures = 0;
  std::string first_failure;

  void failed(const std::string& why) {
    const std::lock_guard lock(mutex);
    ++failures;
    if (first_failure.empty()) {
      first_failure = why;
    }
  }
};

std::string line_for(std::size_t connection, std::size_t round) {
  return "client " + std::to_string(connection) + " round " + std::to_string(round) + ": hello, threads\n";
}

std::string uppercased(std::string text) {
  for (char& c : text) {
    if (c >= 'a' && c <= 'z') {
      c = static_cast<char>(c - 'a' + 'A');
    }
  }
  return text;
}

// One thread drives its share of the connections in lock-step: this round's
// line on each, then each reply. A connection that fails once is dropped.
void drive(std::vector<lab::Fd*> mine, std::vector<std::size_t> numbers, std::size_t rounds, Tally& tally) {
  std::size_t done = 0;
  for (std::size_t round = 0; round < rounds; ++round) {
    for (std::size_t i = 0; i < mine.size(); ++i) {
      if (*mine[i]) {
        try {
          lab::write_all(*mine[i], line_for(numbers[i], round));
        } catch (const std::system_error& error) {
          tally.failed("connection " + std::to_string(numbers[i]) + ": " + error.what());
          mine[i]->reset();
        }
      }
    }
    for (std::size_t i = 0; i < mine.size(); ++i) {
      if (!*mine[i]) {
        continue;
      }
      const std::string expected = uppercased(line_for(numbers[i], round));
      try {
        // No framing: read exactly as many bytes as we sent (one recv is
        // not one reply; read_exact loops until it has them all).
        const auto reply = lab::read_exact(*mine[i], expected.size());
        if (!reply) {
          throw lab::ProtocolError("the server closed the connection");
        }
        if (*reply != expected) {
          throw lab::ProtocolError("expected " + expected.substr(0, expected.size() - 1) + ", got " + *reply);
        }
        ++done;
      } catch (const std::exception& error) {
        tally.failed("connection " + std::to_string(numbers[i]) + ": " + error.what());
        mine[i]->reset();
      }
    }
  }
  const std::lock_guard lock(tally.mutex);
  tally.round_trips += done;
}

}  // namespace

int main(int argc, char** argv) {
  lab::ProgramSpec spec = lab::client_spec(11, "many concurrent clients of the echo-upper server");
  spec.options.push_back({"connections", "N", "connections open at once", "10"});
  spec.options.push_back({"rounds", "R", "round trips on each connection", "10"});
  spec.options.push_back({"threads", "T", "client threads sharing the connections", "8"});
  spec.options.push_back({"timeout-ms", "MS", "longest wait for one reply", "5000"});
  return lab::run_program(argc, argv, spec, [](const lab::Args& args) {
    const auto connections = static_cast<std::size_t>(args.get_int("connections", 1, 20'000));
    const auto rounds = static_cast<std::size_t>(args.get_int("rounds", 1, 1'000'000));
    const auto threads = std::min(connections, static_cast<std::size_t>(args.get_int("threads", 1, 256)));
    const std::chrono::milliseconds timeout(args.get_int("timeout-ms", 1, 600'000));

    const auto started = std::chrono::steady_clock::now();
    // Open every connection first. A refused connect is the whole run's
    // failure (no server): it ends the program with one line.
    std::vector<lab::Fd> sockets;
    sockets.reserve(connections);
    for (std::size_t i = 0; i < connections; ++i) {
      sockets.push_back(lab::tcp_connect(args.endpoint()));
      lab::set_receive_timeout(sockets.back(), timeout);
    }

    Tally tally;
    {
      std::vector<std::jthread> drivers;
      for (std::size_t t = 0; t < threads; ++t) {
        std::vector<lab::Fd*> mine;
        std::vector<std::size_t> numbers;
        for (std::size_t i = t; i < connections; i += threads) {
          mine.push_back(&sockets[i]);
          numbers.push_back(i);
        }
        drivers.emplace_back(drive, std::move(mine), std::move(numbers), rounds, std::ref(tally));
      }
    }  // every driver joined
    const auto elapsed = std::chrono::duration<double>(std::chrono::steady_clock::now() - started);

    const double per_second = elapsed.count() > 0 ? static_cast<double>(tally.round_trips) / elapsed.count() : 0;
    lab::say("connections: {}, round trips: {}, failures: {}, time: {:.3f} s ({:.0f} round trips/s)", connections,
             tally.round_trips, tally.failures, elapsed.count(), per_second);
    if (tally.failures > 0) {
      throw lab::ProtocolError(std::to_string(tally.failures) + " connection(s) failed; the first: " +
                               tally.first_failure);
    }
    lab::say("every reply was the line upper-cased");
    return 0;
  });
}
