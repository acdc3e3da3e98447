// Lesson 02 — TCP server: welcomes each client, then greets every name it
// sends, one client after another.
//
//   build/default/lessons/02_tcp/server            (listens on 127.0.0.1:9002)
//   build/default/lessons/02_tcp/server --port 0   (any free port)
#include "lab/program.hpp"
#include "lab/socket.hpp"
#include "tcp.hpp"

int main(int argc, char** argv) {
  const lab::ProgramSpec spec = lab::server_spec(2, "TCP server: 'Welcome!', then 'Hello, <name>!' for each name");
  return lab::run_program(argc, argv, spec, [](const lab::Args& args) {
    // socket + bind + listen: the kernel now completes handshakes for us and
    // queues the new connections (the backlog) until we accept them.
    const lab::Fd listener = lab::tcp_listen(args.endpoint());
    lab::announce_listening(listener);
    const std::size_t served = lab::tcp::serve(listener, lab::process_stop());
    lab::say("stopped after {} conversation(s)", served);
    return 0;
  });
}
