// Lesson 10 — producer/consumer server: the connection is the producer, a
// pool of consumer threads takes the items from a bounded queue, and the
// server reports how many items each consumer processed.
//
//   build/default/lessons/10_producer_consumer/server                 (127.0.0.1:9010)
//   build/default/lessons/10_producer_consumer/server --work-us 1000   (slow consumers)
//
// Protocol: the client sends items, one decimal number per line, then shuts
// down its sending side. The server answers with one line per consumer,
// "consumer K: N items", and a last line
// "total: N items, sum S, producer waited W times", then closes. A line that
// is not a number gets "error: ..." and the connection is closed.
#include <charconv>
#include <chrono>
#include <cstdint>
#include <string>
#include <thread>
#include <vector>

#include <bounded_queue.hpp>

#include "consumer_pool.hpp"
#include "lab/deadline.hpp"
#include "lab/error.hpp"
#include "lab/io.hpp"
#include "lab/program.hpp"
#include "lab/socket.hpp"
#include "lab/stop.hpp"
#include "lab/text.hpp"

namespace {

using lab::producer_consumer::BoundedQueue;
using lab::producer_consumer::ConsumerPool;

constexpr std::size_t kMaxLine = 21;  // digits of the largest std::uint64_t, and a '\r'

// a + b, or a ProtocolError: an unsigned sum wraps round silently (the
// largest value + 1 is 0), and a wrong total said with confidence is worse
// than none.
std::uint64_t add_checked(std::uint64_t a, std::uint64_t b) {
  std::uint64_t sum = 0;
  if (__builtin_add_overflow(a, b, &sum)) {
    throw lab::ProtocolError("the sum does not fit in 64 bits");
  }
  return sum;
}

struct Settings {
  std::size_t consumers = 4;
  std::size_t capacity = 16;
  std::chrono::microseconds work{0};
  lab::ClientDeadlines deadlines;
};

std::uint64_t parse_item(std::string_view line) {
  if (!line.empty() && line.back() == '\r') {
    line.remove_suffix(1);  // a "\r\n" line ending (telnet, Windows) is still a line ending
  }
  std::uint64_t value = 0;
  const auto [end, error] = std::from_chars(line.data(), line.data() + line.size(), value);
  if (line.empty() || error != std::errc{} || end != line.data() + line.size()) {
    throw lab::ProtocolError("not a number: " + lab::preview(line, 24));
  }
  return value;
}

// One producer connection: read lines, push them into the queue, and let the
// pool's consumers process them. Returns the report to send back.
std::string serve_producer(const lab::Fd& connection, const Settings& settings) {
  // The whole upload is one request: the client is dropped if it is silent
  // for the idle deadline, or still sending when the request deadline ends.
  lab::ClientClock clock(connection, settings.deadlines);
  BoundedQueue<std::string> queue(settings.capacity);
  std::vector<std::uint64_t> sums(settings.consumers, 0);  // sums[k]: consumer k's alone
  // If anything below throws, the pool's destructor closes the queue and
  // joins the consumers before `queue` and `sums` are destroyed.
  ConsumerPool pool(queue, settings.consumers, [&](std::size_t consumer, std::string item) {
    sums[consumer] = add_checked(sums[consumer], parse_item(item));
    if (settings.work.count() > 0) {
      std::this_thread::sleep_for(settings.work);  // pretend each item is real work
    }
  });

  std::size_t producer_waits = 0;
  std::string pending;
  for (;;) {
    // Wait for data OR a stop request OR a deadline (poll on all): a
    // SIGTERM that came just before a blocking read would otherwise be missed.
    clock.wait_readable();
    const auto chunk = lab::read_some(connection, 4096);
    if (!chunk) {
      break;  // the producer has sent everything
    }
    clock.request_started();
    pending += *chunk;
    std::size_t start = 0;
    for (std::size_t end; (end = pending.find('\n', start)) != std::string::npos; start = end + 1) {
      std::string line = pending.substr(start, end - start);
      parse_item(line);  // refuse garbage here, before it is queued
      if (!queue.try_push(line)) {
        // Full: back-pressure. While we wait here we stop reading the
        // socket, the kernel's buffers fill, and the client's send blocks.
        ++producer_waits;
        clock.check();
        if (!queue.push(std::move(line))) {
          pool.finish();  // closed because a consumer failed: this rethrows why
          throw lab::ProtocolError("the consumers stopped");
        }
      }
    }
    pending.erase(0, start);
    if (pending.size() > kMaxLine) {
      throw lab::ProtocolError("a line longer than " + std::to_string(kMaxLine) + " bytes");
    }
  }
  if (!pending.empty()) {
    throw lab::ProtocolError("the last line has no newline: " + lab::preview(pending, 24));
  }

  const std::vector<std::size_t> counts = pool.finish();
  std::string report;
  std::size_t total = 0;
  std::uint64_t sum = 0;
  for (std::size_t k = 0; k < counts.size(); ++k) {
    report += "consumer " + std::to_string(k + 1) + ": " + std::to_string(counts[k]) + " items\n";
    total += counts[k];
    sum = add_checked(sum, sums[k]);
  }
  report += "total: " + std::to_string(total) + " items, sum " + std::to_string(sum) +
            ", producer waited " + std::to_string(producer_waits) + " times\n";
  return report;
}

}  // namespace

int main(int argc, char** argv) {
  lab::ProgramSpec spec = lab::server_spec(10, "producer/consumer server: consumer threads behind a bounded queue");
  spec.options.push_back({"consumers", "N", "consumer threads per producer", "4"});
  spec.options.push_back({"capacity", "N", "items the queue holds before the producer must wait", "16"});
  spec.options.push_back({"work-us", "US", "microseconds of pretend work per item", "0"});
  lab::add_deadline_options(spec, {std::chrono::seconds(10), std::chrono::seconds(30)});
  return lab::run_program(argc, argv, spec, [](const lab::Args& args) {
    Settings settings;
    settings.consumers = static_cast<std::size_t>(args.get_int("consumers", 1, 64));
    settings.capacity = static_cast<std::size_t>(args.get_int("capacity", 1, 1'000'000));
    settings.work = std::chrono::microseconds(args.get_int("work-us", 0, 1'000'000));
    settings.deadlines = lab::deadline_options(args);

    const lab::Fd listener = lab::tcp_listen(args.endpoint());
    lab::announce_listening(listener);
    std::size_t producers = 0;
    while (auto client = lab::accept_client(listener, lab::process_stop())) {
      const std::string peer = client->peer.to_string();
      try {
        const std::string report = serve_producer(client->socket, settings);
        lab::write_all(client->socket, report);
        lab::say("{} {}", peer, lab::chomp(std::string_view(report).substr(report.rfind("total:"))));
        ++producers;
      } catch (const lab::ProtocolError& error) {
        lab::say("{} refused: {}", peer, error.what());
        try {
          lab::write_all(client->socket, std::string("error: ") + error.what() + "\n");
        } catch (const std::system_error&) {
          // The client has gone as well; nothing more to tell it.
        }
      } catch (const std::system_error& error) {
        lab::say("{} dropped: {}", peer, error.what());  // a reset: that client's problem
      }
    }
    lab::say("stopped after {} producer(s)", producers);
    return 0;
  });
}
