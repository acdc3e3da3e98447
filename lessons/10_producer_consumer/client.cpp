// Lesson 10 — producer client: streams the numbers 1..N to the server, one
// per line, then prints the server's report and checks that every item was
// processed exactly once (the count, and the sum 1+2+...+N).
//
//   build/default/lessons/10_producer_consumer/client                 (10000 items)
//   build/default/lessons/10_producer_consumer/client --items 100000
#include <sys/socket.h>

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <string>

#include "lab/error.hpp"
#include "lab/io.hpp"
#include "lab/program.hpp"
#include "lab/socket.hpp"

namespace {

constexpr std::size_t kBatchBytes = 4096;

// A TCP socket's send buffer grows by itself, up to megabytes (tcp_wmem in
// tcp(7)): it alone would swallow a whole demo run, and the client would
// finish "sending" while the server's queue was still full. Kept small, only
// the server's receive buffer (about 128 KiB) lies between the full queue
// and our send, so the wait reaches us. Setting SO_SNDBUF also stops that
// growth; the kernel doubles the value asked for (socket(7)). A real
// producer keeps the default: this is for seeing back-pressure, not speed.
void shrink_send_buffer(const lab::Fd& connection) {
  const int bytes = 4096;
  if (::setsockopt(connection.get(), SOL_SOCKET, SO_SNDBUF, &bytes, sizeof bytes) != 0) {
    throw lab::os_error("setsockopt SO_SNDBUF");
  }
}

}  // namespace

int main(int argc, char** argv) {
  lab::ProgramSpec spec = lab::client_spec(10, "producer client: streams numbered items, checks the report");
  spec.options.push_back({"items", "N", "how many items to send", "10000"});
  return lab::run_program(argc, argv, spec, [](const lab::Args& args) {
    const auto items = static_cast<std::uint64_t>(args.get_int("items", 1, 100'000'000));
    const lab::Fd connection = lab::tcp_connect(args.endpoint());
    shrink_send_buffer(connection);

    // Send in batches of a few KiB. When the server's queue is full it stops
    // reading; then the socket buffers fill and write_all blocks here: that
    // is back-pressure reaching the producer. We time those waits.
    using Clock = std::chrono::steady_clock;
    const auto started = Clock::now();
    Clock::duration blocked{};
    std::string batch;
    for (std::uint64_t item = 1; item <= items; ++item) {
      batch += std::to_string(item);
      batch += '\n';
      if (batch.size() >= kBatchBytes || item == items) {
        const auto before = Clock::now();
        lab::write_all(connection, batch);
        blocked += Clock::now() - before;
        batch.clear();
      }
    }
    const auto elapsed = Clock::now() - started;
    // "No more items": the server's read returns end of stream, and it can
    // close the queue. Our receiving side stays open for the report.
    if (::shutdown(connection.get(), SHUT_WR) != 0) {
      throw lab::os_error("shutdown");
    }
    const auto elapsed_ms = std::chrono::duration_cast<std::chrono::milliseconds>(elapsed).count();
    const auto blocked_ms = std::chrono::duration_cast<std::chrono::milliseconds>(blocked).count();
    const double seconds = std::chrono::duration<double>(elapsed).count();
    lab::say("sent {} items in {} ms ({:.0f} items/s), blocked in send for {} ms of it", items,
             elapsed_ms, seconds > 0 ? static_cast<double>(items) / seconds : 0.0, blocked_ms);

    const std::string report = lab::read_to_end(connection, 64 * 1024);
    std::fputs(report.c_str(), stdout);
    const std::uint64_t sum = items * (items + 1) / 2;
    const std::string expected = "total: " + std::to_string(items) + " items, sum " + std::to_string(sum) + ",";
    if (report.find(expected) == std::string::npos) {
      throw lab::ProtocolError("expected a report with '" + expected + "'; the items were not processed exactly once");
    }
    lab::say("every item was processed exactly once");
    return 0;
  });
}
