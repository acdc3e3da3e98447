// Lesson 05 — HMAC client: answers the server's challenge with
// HMAC-SHA256(key, nonce), then sends messages and prints the upper-cased
// replies. --mutual also makes the server prove it knows the key (05.4);
// --replay-demo then shows that a recorded answer is refused.
//
//   build/default/lessons/05_hmac_auth/client --key-file lessons/05_hmac_auth/demo.key hello
//   LAB_SECRET='my secret' build/default/lessons/05_hmac_auth/client   (type lines; "exit" quits)
#include <unistd.h>

#include <iostream>
#include <stdexcept>
#include <string>

#include "hmac_auth.hpp"
#include "key.hpp"
#include "lab/frame.hpp"
#include "lab/io.hpp"
#include "lab/program.hpp"
#include "lab/socket.hpp"

namespace {

namespace auth = lab::hmac_auth;

// The server's 2-byte verdict, read by hand (the replay demo does not use
// the exercise's authenticate: it misbehaves on purpose).
std::string read_verdict(const lab::Fd& connection) {
  const auto verdict = lab::read_exact(connection, auth::kAccepted.size());
  if (!verdict) {
    throw lab::ProtocolError("the server closed the connection without a verdict");
  }
  return *verdict;
}

auth::Nonce read_nonce(const lab::Fd& connection) {
  auth::Nonce nonce{};
  if (!lab::read_exact(connection, std::span<std::uint8_t>(nonce))) {
    throw lab::ProtocolError("the server closed the connection before sending its nonce");
  }
  return nonce;
}

// What an eavesdropper would try: record one legitimate answer, then send
// it again on a new connection. The new connection has a new nonce, so the
// recorded answer is worthless: the server must say NO.
void show_replay_refused(const lab::Endpoint& server, auth::Bytes key) {
  auth::Mac recorded{};
  {
    const lab::Fd first = lab::tcp_connect(server);
    recorded = auth::hmac_sha256(key, read_nonce(first));
    lab::write_all(first, recorded);
    lab::say("replay demo: recorded a legitimate answer; the server said {}", read_verdict(first));
  }
  const lab::Fd second = lab::tcp_connect(server);
  (void)read_nonce(second);  // a fresh nonce, which the recorded answer does not answer
  lab::write_all(second, recorded);
  const std::string verdict = read_verdict(second);
  lab::say("replay demo: sent the same answer on a new connection; the server said {}", verdict);
  if (verdict != auth::kRefused) {
    throw std::runtime_error("the server accepted a replayed answer: are its nonces fresh?");
  }
}

}  // namespace

int main(int argc, char** argv) {
  lab::ProgramSpec spec = lab::client_spec(5, "HMAC client: proves it holds the key, then chats");
  spec.options.push_back({"key-file", "FILE", "the shared key, the file's exact bytes (default: $LAB_SECRET)", ""});
  spec.options.push_back({"mutual", "", "make the server prove it knows the key too (exercise 05.4)", ""});
  spec.options.push_back({"replay-demo", "", "afterwards, show a recorded answer being refused", ""});
  spec.positionals = "[MESSAGE...]";
  spec.details = "Without MESSAGEs, sends one message per line of stdin; the line 'exit' quits.\n";
  return lab::run_program(argc, argv, spec, [](const lab::Args& args) {
    const auth::Key key = auth::load_key(args.get("key-file"));
    {
      const lab::Fd connection = lab::tcp_connect(args.endpoint());
      if (!auth::authenticate(connection, key.bytes())) {
        throw std::runtime_error("the server said NO: is the key the same as the server's?");
      }
      lab::say("authenticated: the server said OK");
      if (args.flag("mutual")) {
        if (!auth::verify_server(connection, key.bytes())) {
          throw std::runtime_error("the server could not prove it knows the key: sending it nothing");
        }
        lab::say("the server proved it knows the key too");
      }

      auto chat = [&connection](const std::string& message) {
        lab::send_frame(connection, auth::kTypeText, message);
        const auto reply = lab::recv_frame(connection);
        if (!reply) {
          throw lab::ProtocolError("the server closed the connection");
        }
        lab::say("{}", reply->payload);
      };
      if (!args.positionals().empty()) {
        for (const auto& message : args.positionals()) {
          chat(message);
        }
      } else {
        if (::isatty(STDIN_FILENO) != 0) {
          lab::warn("type a message and press Enter; 'exit' quits");
        }
        std::string line;
        while (std::getline(std::cin, line) && line != "exit") {
          chat(line);
        }
      }
    }  // closing the connection ends the conversation: the server sees end of stream
    if (args.flag("replay-demo")) {
      show_replay_refused(args.endpoint(), key.bytes());
    }
    return 0;
  });
}
