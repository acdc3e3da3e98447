// Hostile clients against lesson 05's HMAC server, which serves one client
// at a time: each must cost the clients behind it no more than its deadline.
#include <doctest/doctest.h>
#include <sys/stat.h>

#include <chrono>
#include <fstream>
#include <string>
#include <thread>

#include "hmac_auth.hpp"
#include "hostile.hpp"
#include "lab/frame.hpp"

using namespace hostile;
namespace auth = lab::hmac_auth;

namespace {

constexpr std::string_view kKey = "hostile suite key";

// The server with its key in a private file.
struct Server05 {
  lab::testing::TempDir dir{"hostile05"};
  ServerProcess server;

  explicit Server05(std::vector<std::string> extra) : server(start(dir, std::move(extra))) {}

  static ServerProcess start(const lab::testing::TempDir& dir, std::vector<std::string> extra) {
    const std::string key_file = dir.file("key");
    std::ofstream(key_file) << kKey;
    REQUIRE(::chmod(key_file.c_str(), 0600) == 0);
    extra.insert(extra.end(), {"--key-file", key_file});
    return ServerProcess::start(program("05_hmac_auth"), extra);
  }
};

// A connection that has passed the handshake.
lab::Fd authenticated(const ServerProcess& server) {
  lab::Fd socket = connect_to(server);
  lab::set_receive_timeout(socket, 5s);  // a broken server fails the test, never hangs it
  REQUIRE(auth::authenticate(socket, auth::bytes_of(kKey)));
  return socket;
}

// The normal client: authenticated, one message echoed. Returns how long it took.
std::chrono::milliseconds echo_05(const ServerProcess& server) {
  const auto started = std::chrono::steady_clock::now();
  const lab::Fd socket = authenticated(server);
  lab::send_frame(socket, auth::kTypeText, "hello");
  const auto reply = lab::recv_frame(socket);
  REQUIRE(reply.has_value());
  CHECK(reply->payload == "HELLO");
  return std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::steady_clock::now() - started);
}

// Reads the server's 32-byte challenge, so that the handshake's clock is known to run.
void read_nonce(const lab::Fd& socket) {
  lab::set_receive_timeout(socket, 5s);
  REQUIRE(lab::read_exact(socket, auth::kNonceSize).has_value());
}

}  // namespace

TEST_CASE("05: a silent, a trickling and a garbage answer each get NO within --answer-ms, and a normal client follows each") {
  Server05 started({"--answer-ms", "300"});
  ServerProcess& server = started.server;
  {
    // Silent: the client queued behind it waits for its handshake deadline only.
    const lab::Fd silent = connect_to(server);
    const auto waited = echo_05(server);
    CHECK(waited < 1500ms);
    CHECK(read_until(silent, "NO", 1s).ends_with("NO"));
  }
  {
    // Trickling: one byte every 50 ms would take 1.6 s; one deadline for the
    // whole answer ends it at 300 ms.
    const lab::Fd trickler = connect_to(server);
    read_nonce(trickler);
    const auto began = std::chrono::steady_clock::now();
    std::string got;
    for (std::size_t i = 0; i < auth::kNonceSize && got.find("NO") == std::string::npos; ++i) {
      try {
        lab::write_all(trickler, "x");
      } catch (const std::system_error&) {
        break;  // closed after its NO
      }
      got += read_until(trickler, "NO", 50ms);
    }
    CHECK(got.ends_with("NO"));
    CHECK(std::chrono::steady_clock::now() - began < 1s);
    echo_05(server);
  }
  {
    // Garbage: 32 bytes that are not the HMAC, then 40 bytes at once.
    const lab::Fd wrong = connect_to(server);
    read_nonce(wrong);
    lab::write_all(wrong, std::string(32, '\0'));
    CHECK(read_until(wrong, "NO", 2s).ends_with("NO"));
    const lab::Fd too_long = connect_to(server);
    read_nonce(too_long);
    lab::write_all(too_long, std::string(40, 'g'));
    CHECK(read_until(too_long, "NO", 2s).ends_with("NO"));
    echo_05(server);
  }
  stop_cleanly(server);
}

TEST_CASE("05: an authenticated client that goes silent, or trickles a frame, is dropped by its deadlines") {
  Server05 started({"--idle-ms", "300", "--connection-ms", "1000"});
  ServerProcess& server = started.server;
  {
    const lab::Fd silent = authenticated(server);
    const auto began = std::chrono::steady_clock::now();
    CHECK(closed_by_server(silent, 2s));
    CHECK(std::chrono::steady_clock::now() - began < 1s);
    echo_05(server);
  }
  {
    // One byte of a frame every 100 ms, never silent for --idle-ms: the
    // frame would take 10 s, the connection's deadline ends it at 1 s.
    const lab::Fd trickler = authenticated(server);
    const auto began = std::chrono::steady_clock::now();
    const auto header = lab::encode_frame_header({auth::kTypeText, 92});
    std::string frame(header.begin(), header.end());
    frame += std::string(92, 'a');
    bool dropped = false;
    for (std::size_t i = 0; i < frame.size() && !dropped; ++i) {
      try {
        lab::write_all(trickler, frame.substr(i, 1));
      } catch (const std::system_error&) {
        dropped = true;  // the server has closed it: the write failed
        break;
      }
      dropped = closed_by_server(trickler, 100ms);
    }
    CHECK(dropped);
    CHECK(std::chrono::steady_clock::now() - began < 2s);
    echo_05(server);
  }
  stop_cleanly(server);
}

TEST_CASE("05: SIGTERM in the middle of a client's frame stops the server within 1 s, status 0") {
  Server05 started({});
  const lab::Fd client = authenticated(started.server);
  const auto header = lab::encode_frame_header({auth::kTypeText, 100});
  lab::write_all(client, std::string(header.begin(), header.end()) + "half a message");
  stop_cleanly(started.server);
}
