// Lesson 01 — UDP client: sends each line of input as one datagram and
// prints the reply; if no reply comes within the timeout it sends again.
//
//   build/default/lessons/01_udp/client --message hello
//   build/default/lessons/01_udp/client              (type lines; "exit" quits)
#include <unistd.h>

#include <iostream>
#include <string>

#include "lab/program.hpp"
#include "lab/socket.hpp"
#include "lab/text.hpp"
#include "udp.hpp"

namespace {

class NoReply : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

}  // namespace

int main(int argc, char** argv) {
  lab::ProgramSpec spec = lab::client_spec(1, "UDP client: sends lines, prints the replies");
  spec.options.push_back({"message", "TEXT", "send TEXT once instead of reading lines", ""});
  spec.options.push_back({"timeout-ms", "MS", "how long to wait for each reply", "1000"});
  spec.options.push_back({"tries", "N", "how many times to send before giving up", "3"});
  spec.details = "Reads lines from stdin when --message is not given; the line 'exit' quits.\n";
  return lab::run_program(argc, argv, spec, [](const lab::Args& args) {
    const lab::udp::RetryPolicy policy{
        std::chrono::milliseconds(args.get_int("timeout-ms", 1, 600000)),
        static_cast<int>(args.get_int("tries", 1, 100))};
    // A name such as "localhost" is resolved here; the first address is used.
    const lab::SocketAddress server = lab::resolve(args.endpoint(), SOCK_DGRAM).front();
    const lab::Fd socket = lab::udp_socket(server.family());

    auto ask = [&](const std::string& text) {
      const auto reply = lab::udp::request(socket, server, text, policy);
      if (!reply) {
        throw NoReply(fmt::format(
            "no reply from {} after {} tries of {} ms \u2014 {}", lab::udp::format_address(server),
            policy.tries, policy.timeout.count(), lab::start_server_hint(1)));
      }
      lab::say("{}", *reply);
    };

    if (!args.get("message").empty()) {
      ask(args.get("message"));
      return 0;
    }
    if (::isatty(STDIN_FILENO) != 0) {
      lab::warn("type a line and press Enter to send it; 'exit' quits");
    }
    std::string line;
    while (std::getline(std::cin, line) && line != "exit") {
      ask(line);
    }
    return 0;
  });
}
