// Lesson 10 — producer client: streams the numbers 1..N to the server, one
// per line, then prints the server's report and checks that every item was
// processed exactly once (the count, and the sum 1+2+...+N).
//
//   build/default/lessons/10_producer_consumer/client                 (10000 items)
//   build/default/lessons/10_producer_consumer/client --items 100000
#include <sys/socket.h>

#include <chrono>
#include <cstdint>
#include <cstdio>
#include <string>

#include "lab/error.hpp"
#include "lab/io.hpp"
#include "lab/program.hpp"
#include "lab/socket.hpp"

int main(int argc, char** argv) {
  lab::ProgramSpec spec = lab::client_spec(10, "producer client: streams numbered items, checks the report");
  spec.options.push_back({"items", "N", "how many items to send", "10000"});
  return lab::run_program(argc, argv, spec, [](const lab::Args& args) {
    const auto items = static_cast<std::uint64_t>(args.get_int("items", 1, 100'000'000));
    const lab::Fd connection = lab::tcp_connect(args.endpoint());

    // Send in batches of about 64 KiB. When the server's queue is full it
    // stops reading; then the socket buffers fill and write_all blocks here:
    // that is back-pressure reaching the producer.
    const auto started = std::chrono::steady_clock::now();
    std::string batch;
    for (std::uint64_t item = 1; item <= items; ++item) {
      batch += std::to_string(item);
      batch += '\n';
      if (batch.size() >= 65536 || item == items) {
        lab::write_all(connection, batch);
        batch.clear();
      }
    }
    const auto elapsed = std::chrono::duration_cast<std::chrono::milliseconds>(
        std::chrono::steady_clock::now() - started);
    // "No more items": the server's read returns end of stream, and it can
    // close the queue. Our receiving side stays open for the report.
    if (::shutdown(connection.get(), SHUT_WR) != 0) {
      throw lab::os_error("shutdown");
    }
    lab::say("sent {} items in {} ms", items, elapsed.count());

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
