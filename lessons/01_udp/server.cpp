// Lesson 01 — UDP server: replies to every datagram with its payload in
// upper case, sent back to whoever sent it. One datagram in, one out.
//
//   build/default/lessons/01_udp/server            (listens on 127.0.0.1:9001)
//   build/default/lessons/01_udp/server --port 0   (any free port)
#include "lab/program.hpp"
#include "lab/socket.hpp"
#include "lab/text.hpp"
#include "udp.hpp"

int main(int argc, char** argv) {
  const lab::ProgramSpec spec = lab::server_spec(1, "UDP server: replies to each datagram in upper case");
  return lab::run_program(argc, argv, spec, [](const lab::Args& args) -> int {
    // No listen, no accept: a UDP socket is bound and then simply receives.
    const lab::Fd socket = lab::udp_bind(args.endpoint());
    lab::announce_listening(socket);
    for (;;) {
      // Block until a datagram arrives (or Ctrl-C / SIGTERM stops us), then
      // let the exercise receive it and reply.
      lab::wait_readable(socket.get(), lab::process_stop());
      const lab::udp::Datagram datagram = lab::udp::serve_one(socket);
      lab::say("{} sent {} bytes: {}", lab::udp::format_address(datagram.sender),
               datagram.payload.size(), lab::preview(datagram.payload));
    }
  });
}
