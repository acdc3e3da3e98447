// Lesson 02 — TCP client: prints the welcome, sends each name and prints the
// greeting, then says "exit".
//
//   build/default/lessons/02_tcp/client Ann Bob
//   build/default/lessons/02_tcp/client            (type names; "exit" quits)
#include <unistd.h>

#include <iostream>
#include <string>

#include "lab/error.hpp"
#include "lab/program.hpp"
#include "lab/socket.hpp"
#include "tcp.hpp"

namespace {

std::string receive_or_fail(const lab::Fd& connection) {
  auto reply = lab::tcp::receive_some(connection);
  if (!reply) {
    throw lab::ProtocolError("the server closed the connection");
  }
  return *reply;
}

}  // namespace

int main(int argc, char** argv) {
  lab::ProgramSpec spec = lab::client_spec(2, "TCP client: sends names, prints the greetings");
  spec.positionals = "[NAME...]";
  spec.details = "Without NAMEs, reads one name per line from stdin; the line 'exit' quits.\n";
  return lab::run_program(argc, argv, spec, [](const lab::Args& args) {
    // connect: the three-way handshake (SYN, SYN-ACK, ACK) happens here.
    const lab::Fd connection = lab::tcp_connect(args.endpoint());
    lab::say("{}", receive_or_fail(connection));

    auto greet = [&](const std::string& name) {
      if (name.empty()) {
        throw lab::UsageError("a name cannot be empty: TCP cannot send a message of 0 bytes");
      }
      lab::tcp::send_all(connection, name);
      // One recv per reply works here because we wait for each reply before
      // sending the next name. Lesson 03 shows what breaks when we don't.
      lab::say("{}", receive_or_fail(connection));
    };
    if (!args.positionals().empty()) {
      for (const auto& name : args.positionals()) {
        greet(name);
      }
    } else {
      if (::isatty(STDIN_FILENO) != 0) {
        lab::warn("type a name and press Enter; 'exit' quits");
      }
      std::string line;
      while (std::getline(std::cin, line) && line != "exit") {
        if (!line.empty()) {
          greet(line);
        }
      }
    }
    lab::tcp::send_all(connection, "exit");
    return 0;
  });
}
