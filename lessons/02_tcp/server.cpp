// Lesson 02 — TCP server: welcomes each client, then greets every name it
// sends, one client after another. Per name it makes two system calls, one
// recv(2) and one send(2), and logs once per conversation, not per name.
//
//   build/default/lessons/02_tcp/server            (listens on 127.0.0.1:9002)
//   build/default/lessons/02_tcp/server --port 0   (any free port)
#include "lab/deadline.hpp"
#include "lab/program.hpp"
#include "lab/socket.hpp"
#include "tcp.hpp"

int main(int argc, char** argv) {
  lab::ProgramSpec spec = lab::server_spec(2, "TCP server: 'Welcome!', then 'Hello, <name>!' for each name");
  spec.options.push_back({"idle-timeout", "SECONDS",
                          "drop a client that sends nothing, or reads nothing, for this long (0: never)", "10"});
  return lab::run_program(argc, argv, spec, [](const lab::Args& args) {
    const auto idle = std::chrono::seconds(args.get_int("idle-timeout", 0, 86400));
    // socket + bind + listen: the kernel now completes handshakes for us and
    // queues the new connections (the backlog) until we accept them. The
    // backlog is large (lab::kListenBacklog): when it is full, clients
    // believe they are connected and are never served.
    const lab::Fd listener = lab::tcp_listen(args.endpoint());
    // This server talks to one client at a time, so one client that goes
    // quiet, or stops reading, would keep every other one waiting for ever.
    // Every read and write gives up after `idle` (EAGAIN, which your
    // receive_some and send_all throw as errors): set on the listener,
    // because Linux copies these options into every accepted socket.
    lab::set_io_timeouts(listener, idle);
    lab::announce_listening(listener);
    const std::size_t served = lab::tcp::serve(listener, lab::process_stop());
    lab::say("stopped after {} conversation(s)", served);
    return 0;
  });
}
