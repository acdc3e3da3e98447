// Lesson 05 — HMAC server: challenges every client with a fresh random nonce
// and talks only to those that prove they hold the shared key; then echoes
// each frame upper-cased. One client at a time; a failed client never stops it,
// and no client holds it for longer than --connection-ms.
//
//   build/default/lessons/05_hmac_auth/server --key-file lessons/05_hmac_auth/demo.key
//   LAB_SECRET='my secret' build/default/lessons/05_hmac_auth/server --port 0
#include <algorithm>
#include <chrono>

#include "hmac_auth.hpp"
#include "key.hpp"
#include "lab/deadline.hpp"
#include "lab/error.hpp"
#include "lab/frame.hpp"
#include "lab/program.hpp"
#include "lab/socket.hpp"

namespace {

namespace auth = lab::hmac_auth;

std::string upper_case(std::string text) {
  for (char& c : text) {
    if (c >= 'a' && c <= 'z') {
      c = static_cast<char>(c - 'a' + 'A');
    }
  }
  return text;
}

// The conversation after "OK", in lesson 04's frames: text comes back
// upper-cased; a challenge (exercise 05.4) gets the server's proof.
// Anything else is a protocol error that ends this conversation. Every read
// waits on `clock` first: a frame trickled a byte at a time, or a client
// that only ever sends a little, still meets the connection's deadline.
std::size_t converse(const lab::Fd& connection, auth::Bytes key, lab::ClientClock& clock) {
  std::size_t echoed = 0;
  while (const auto frame = lab::recv_frame(connection, clock)) {
    if (frame->type == auth::kTypeText) {
      lab::send_frame(connection, auth::kTypeText, upper_case(frame->payload));
      ++echoed;
    } else if (frame->type == auth::kTypeChallenge && frame->payload.size() == auth::kNonceSize) {
      auth::Nonce client_nonce{};
      std::copy(frame->payload.begin(), frame->payload.end(), client_nonce.begin());
      const auth::Mac proof = auth::server_proof(key, client_nonce);
      lab::send_frame(connection, auth::kTypeProof,
                      std::string_view(reinterpret_cast<const char*>(proof.data()), proof.size()));
    } else {
      throw lab::ProtocolError("unexpected frame of type " + std::to_string(frame->type) + " and " +
                               std::to_string(frame->payload.size()) + " bytes");
    }
  }
  return echoed;
}

}  // namespace

int main(int argc, char** argv) {
  lab::ProgramSpec spec = lab::server_spec(5, "HMAC server: a nonce to answer, then frames echoed upper-cased");
  spec.options.push_back({"key-file", "FILE", "the shared key, the file's exact bytes (default: $LAB_SECRET)", ""});
  spec.options.push_back({"answer-ms", "MS", "milliseconds a client has for its whole 32-byte answer", "500"});
  spec.options.push_back({"idle-ms", "MS", "milliseconds an authenticated client may stay silent", "10000"});
  spec.options.push_back({"connection-ms", "MS", "milliseconds one client may hold the server, all told", "60000"});
  return lab::run_program(argc, argv, spec, [](const lab::Args& args) {
    // The key first: a missing key is a start-up error, not a per-client one.
    const auth::Key key = auth::load_key(args.get("key-file"));
    const std::chrono::milliseconds answer_timeout{args.get_int("answer-ms", 1, 600'000)};
    const std::chrono::milliseconds idle_timeout{args.get_int("idle-ms", 1, 3'600'000)};
    const std::chrono::milliseconds connection_timeout{args.get_int("connection-ms", 1, 3'600'000)};

    const lab::Fd listener = lab::tcp_listen(args.endpoint());
    lab::announce_listening(listener);
    std::size_t authenticated = 0;
    std::size_t refused = 0;
    while (auto client = lab::accept_client(listener, lab::process_stop())) {
      const std::string peer = client->peer.to_string();
      // One client at a time: while it holds us, everyone else waits in the
      // backlog. So its whole stay, handshake and conversation, is one
      // request with one deadline, and the handshake gets a short one of its
      // own: a key holder answers at once, and each silent connection costs
      // every client behind it --answer-ms. (Lesson 06 serves clients side
      // by side; then one slow client costs only itself.)
      lab::ClientClock clock(client->socket, {idle_timeout, connection_timeout});
      clock.request_started();
      try {
        const auth::Verdict verdict = auth::challenge_client(
            client->socket, key.bytes(), std::min(answer_timeout, connection_timeout), lab::process_stop());
        if (verdict != auth::Verdict::accepted) {
          ++refused;
          lab::say("{} refused: {}", peer, auth::to_string(verdict));
          continue;  // closes the connection: the next client, please
        }
        ++authenticated;
        lab::say("{} authenticated", peer);
        // Only an authenticated client gets this far, but it still must not
        // hold a one-client-at-a-time server for ever by going quiet, by
        // trickling, or by never reading its replies (the clock also sets
        // the socket's send timeout to --idle-ms).
        const std::size_t echoed = converse(client->socket, key.bytes(), clock);
        lab::say("{} left after {} message(s)", peer, echoed);
      } catch (const lab::ProtocolError& error) {  // garbage frames, a deadline passed
        lab::say("{} dropped: {}", peer, error.what());
      } catch (const std::system_error& error) {  // reset, broken pipe
        lab::say("{} dropped: {}", peer, error.what());
      } catch (const lab::StopRequested&) {  // SIGINT or SIGTERM while this client held us
        lab::say("{} dropped: the server is stopping", peer);
        break;
      }
    }
    lab::say("stopped: {} client(s) authenticated, {} refused", authenticated, refused);
    return 0;
  });
}
