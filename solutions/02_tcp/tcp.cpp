// Reference solution of exercise 02 (lessons/02_tcp/tcp.hpp).
#include "tcp.hpp"

#include <sys/socket.h>

#include <cerrno>
#include <system_error>

#include "lab/error.hpp"
#include "lab/program.hpp"
#include "lab/socket.hpp"
#include "lab/text.hpp"

namespace lab::tcp {

void send_all(const Fd& socket, std::string_view data) {
  while (!data.empty()) {
    const ssize_t sent = ::send(socket.get(), data.data(), data.size(), MSG_NOSIGNAL);
    if (sent < 0) {
      if (errno == EINTR) {
        throw_if_stop_requested();
        continue;  // interrupted before anything was sent: try again
      }
      throw os_error("send");
    }
    data.remove_prefix(static_cast<std::size_t>(sent));  // short write: send the rest
  }
}

std::optional<std::string> receive_some(const Fd& socket, std::size_t max_bytes) {
  std::string buffer(max_bytes, '\0');
  for (;;) {
    const ssize_t received = ::recv(socket.get(), buffer.data(), buffer.size(), 0);
    if (received > 0) {
      buffer.resize(static_cast<std::size_t>(received));
      return buffer;
    }
    if (received == 0) {
      return std::nullopt;  // the peer closed its side: a clean end, not an error
    }
    if (errno != EINTR) {
      throw os_error("recv");
    }
    throw_if_stop_requested();
  }
}

std::size_t converse(const Fd& connection) {
  send_all(connection, "Welcome!");
  std::size_t greetings = 0;
  while (const auto chunk = receive_some(connection)) {
    const std::string_view name = chomp(*chunk);
    if (name == "exit") {
      break;
    }
    send_all(connection, "Hello, " + std::string(name) + "!");
    ++greetings;
  }
  return greetings;
}

std::size_t serve(const Fd& listener, const StopSignal& stop) {
  std::size_t conversations = 0;
  while (auto client = accept_client(listener, stop)) {
    const std::string peer = client->peer.to_string();
    say("{} connected", peer);
    try {
      const std::size_t greetings = converse(client->socket);
      say("{} said goodbye after {} greeting(s)", peer, greetings);
    } catch (const std::system_error& error) {
      // ECONNRESET, EPIPE: this client is gone. The server is not.
      say("{} dropped: {}", peer, error.what());
    }
    ++conversations;
  }  // client->socket closes here, at the end of each iteration
  return conversations;
}

}  // namespace lab::tcp
