// Lesson 12 — many-connection client: opens N connections at once, sends one
// message on every connection per round, and checks that every reply is the
// message ASCII-uppercased. Works against any echo-upper server (lesson 11's
// threaded server too).
//
//   build/default/lessons/12_event_loop/client                                 (100 x 3)
//   build/default/lessons/12_event_loop/client --connections 10000 --rounds 1 --hold 10
//
// It raises its own RLIMIT_NOFILE soft limit to the hard limit first, and
// says so: 10,000 connections are 10,000 descriptors.
#include <poll.h>

#include <cerrno>
#include <chrono>
#include <string>
#include <vector>

#include "descriptor_limit.hpp"
#include "lab/error.hpp"
#include "lab/io.hpp"
#include "lab/program.hpp"
#include "lab/socket.hpp"
#include "lab/stop.hpp"
#include "lab/text.hpp"

namespace {

using Clock = std::chrono::steady_clock;

// The message connection `k` sends in round `round`: lower-case text, `size`
// bytes, different for every connection and round, so a reply sent to the
// wrong connection is caught.
std::string message_for(std::size_t k, std::size_t round, std::size_t size) {
  std::string text = "connection " + std::to_string(k) + " round " + std::to_string(round) + " ";
  for (std::size_t i = 0; text.size() < size; ++i) {
    text += static_cast<char>('a' + (k + round + i) % 26);
  }
  text.resize(size);
  text.back() = '\n';
  return text;
}

std::string upper(std::string text) {
  for (char& c : text) {
    c = (c >= 'a' && c <= 'z') ? static_cast<char>(c - 'a' + 'A') : c;
  }
  return text;
}

// Waits for every connection's reply with poll(2): one call watches them all
// and sleeps until at least one has something. Throws ProtocolError on a
// wrong or missing reply, TimeoutError when `deadline` passes first.
void collect_replies(const std::vector<lab::Fd>& connections, const std::vector<std::string>& expected,
                     Clock::time_point deadline) {
  std::vector<std::string> got(connections.size());
  std::vector<pollfd> waiting;
  std::vector<std::size_t> index;  // waiting[i] is connection index[i]
  for (std::size_t k = 0; k < connections.size(); ++k) {
    waiting.push_back({connections[k].get(), POLLIN, 0});
    index.push_back(k);
  }
  while (!waiting.empty()) {
    const auto left = std::chrono::ceil<std::chrono::milliseconds>(deadline - Clock::now());
    if (left.count() <= 0) {
      throw lab::TimeoutError(std::to_string(waiting.size()) + " connection(s) still waiting for their reply");
    }
    const int ready = ::poll(waiting.data(), waiting.size(), static_cast<int>(left.count()));
    if (ready < 0) {
      if (errno == EINTR) {
        lab::throw_if_stop_requested();
        continue;
      }
      throw lab::os_error("poll");
    }
    for (std::size_t i = 0; i < waiting.size();) {
      const std::size_t k = index[i];
      if (waiting[i].revents == 0) {
        ++i;
        continue;
      }
      // One recv is not one message: a reply may come in pieces.
      const auto chunk = lab::read_some(connections[k], expected[k].size() - got[k].size());
      if (!chunk) {
        throw lab::ProtocolError("connection " + std::to_string(k) + ": the server closed it after " +
                                 std::to_string(got[k].size()) + " of " +
                                 std::to_string(expected[k].size()) + " reply bytes");
      }
      got[k] += *chunk;
      if (expected[k].compare(0, got[k].size(), got[k]) != 0) {
        throw lab::ProtocolError("connection " + std::to_string(k) + ": expected " +
                                 lab::preview(expected[k]) + ", got " + lab::preview(got[k]));
      }
      if (got[k].size() == expected[k].size()) {
        waiting[i] = waiting.back();  // done: stop watching it
        waiting.pop_back();
        index[i] = index.back();
        index.pop_back();
      } else {
        ++i;
      }
    }
  }
}

}  // namespace

int main(int argc, char** argv) {
  lab::ProgramSpec spec = lab::client_spec(12, "many-connection echo-upper client: checks every reply");
  spec.options.push_back({"connections", "N", "connections opened at once", "100"});
  spec.options.push_back({"rounds", "R", "messages sent on every connection, one round at a time", "3"});
  spec.options.push_back({"size", "BYTES", "bytes per message", "64"});
  spec.options.push_back({"hold", "S", "then keep every connection open and idle this many seconds", "0"});
  spec.options.push_back({"timeout", "S", "seconds a round may take", "30"});
  return lab::run_program(argc, argv, spec, [](const lab::Args& args) {
    const auto count = static_cast<std::size_t>(args.get_int("connections", 1, 1'000'000));
    const auto rounds = static_cast<std::size_t>(args.get_int("rounds", 0, 1'000'000));
    // At most 4 KiB: a message always fits in the socket buffers, so writing
    // every message before reading any reply cannot block for ever.
    const auto size = static_cast<std::size_t>(args.get_int("size", 32, 4096));
    const auto hold = std::chrono::seconds(args.get_int("hold", 0, 86400));
    const auto round_timeout = std::chrono::seconds(args.get_int("timeout", 1, 3600));

    const auto limit = lab::event_loop::raise_descriptor_limit();
    lab::say("{}", lab::event_loop::describe(limit, count + 16));

    // The burst: every connect, as fast as we can. connect(2) returns once
    // the kernel has completed the handshake; the server accepts later.
    const auto started = Clock::now();
    std::vector<lab::Fd> connections;
    connections.reserve(count);
    for (std::size_t k = 0; k < count; ++k) {
      connections.push_back(lab::tcp_connect(args.endpoint()));
    }
    const auto connected = Clock::now();
    lab::say("connected {} in {} ms", count,
             std::chrono::duration_cast<std::chrono::milliseconds>(connected - started).count());

    std::vector<std::string> expected(count);
    for (std::size_t round = 1; round <= rounds; ++round) {
      for (std::size_t k = 0; k < count; ++k) {
        const std::string message = message_for(k, round, size);
        expected[k] = upper(message);
        lab::write_all(connections[k], message);
      }
      collect_replies(connections, expected, Clock::now() + round_timeout);
    }
    const std::chrono::duration<double> elapsed = Clock::now() - connected;
    const double trips = static_cast<double>(count * rounds);
    lab::say("{} connections x {} rounds: every reply correct; {} round trips in {:.0f} ms, "
             "{:.0f} round trips/s, {:.1f} MiB/s each way",
             count, rounds, count * rounds, elapsed.count() * 1000, trips / elapsed.count(),
             trips * static_cast<double>(size) / elapsed.count() / (1024.0 * 1024.0));

    if (hold.count() > 0) {
      lab::say("holding {} idle connections for {} s", count, hold.count());
      // Sleep on the stop signal: Ctrl-C ends the hold at once.
      lab::wait_readable(lab::process_stop().fd(), lab::process_stop(), hold);
    }
    return 0;
  });
}
