// The floor for lesson 02's benchmark: the same protocol as the lesson's
// server ("Welcome!", then "Hello, <name>!" for each chunk, "exit" ends the
// conversation), written with system calls only. Per name: one recv(2) into
// a buffer on the stack, one send(2) from another, no allocation, no
// library, no logging. What this server costs per request is what the kernel
// costs (two system calls, a TCP segment each way over loopback, and, when
// the client shares the CPU, the switch to and from it): no server speaking
// this protocol, in any language, can cost less.
//
// Not a model server: it has no idle timeout, stops on SIGTERM's default
// action and handles one client at a time. The lesson's server is the model.
//
//   raw_hello_server --host 127.0.0.1 --port 0   (prints "listening on HOST:PORT")
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <array>
#include <cerrno>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string_view>

namespace {

// Sends all of `data`; false if the client is gone.
bool send_all(int socket, std::string_view data) {
  while (!data.empty()) {
    // MSG_NOSIGNAL: a client that has gone away gives EPIPE, not SIGPIPE.
    const ssize_t sent = ::send(socket, data.data(), data.size(), MSG_NOSIGNAL);
    if (sent < 0) {
      if (errno == EINTR) {
        continue;
      }
      return false;
    }
    data.remove_prefix(static_cast<std::size_t>(sent));
  }
  return true;
}

void converse(int socket) {
  if (!send_all(socket, "Welcome!")) {
    return;
  }
  std::array<char, 1024> name{};
  std::array<char, 1024 + 8> reply{};
  constexpr std::string_view kHello = "Hello, ";
  std::memcpy(reply.data(), kHello.data(), kHello.size());
  for (;;) {
    // One recv is one chunk, not one message: the protocol has no framing,
    // and the client sends the next name only after reading this reply.
    const ssize_t received = ::recv(socket, name.data(), name.size(), 0);
    if (received < 0 && errno == EINTR) {
      continue;
    }
    if (received <= 0) {
      return;  // the end of the stream, or an error: this client is done
    }
    std::size_t length = static_cast<std::size_t>(received);
    while (length > 0 && (name[length - 1] == '\n' || name[length - 1] == '\r' ||
                          name[length - 1] == ' ' || name[length - 1] == '\t')) {
      --length;
    }
    if (std::string_view(name.data(), length) == "exit") {
      return;
    }
    std::memcpy(reply.data() + kHello.size(), name.data(), length);
    reply[kHello.size() + length] = '!';
    if (!send_all(socket, std::string_view(reply.data(), kHello.size() + length + 1))) {
      return;
    }
  }
}

}  // namespace

int main(int argc, char** argv) {
  const char* host = "127.0.0.1";
  int port = 9002;
  for (int i = 1; i + 1 < argc; i += 2) {
    if (std::strcmp(argv[i], "--host") == 0) {
      host = argv[i + 1];
    } else if (std::strcmp(argv[i], "--port") == 0) {
      port = std::atoi(argv[i + 1]);
    }
  }
  sockaddr_in address{};
  address.sin_family = AF_INET;
  address.sin_port = htons(static_cast<std::uint16_t>(port));
  const int listener = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  const int reuse = 1;
  if (listener < 0 || ::inet_pton(AF_INET, host, &address.sin_addr) != 1 ||
      ::setsockopt(listener, SOL_SOCKET, SO_REUSEADDR, &reuse, sizeof reuse) != 0 ||
      ::bind(listener, reinterpret_cast<const sockaddr*>(&address), sizeof address) != 0 ||
      ::listen(listener, 128) != 0) {
    std::fprintf(stderr, "raw_hello_server: cannot listen on %s:%d: %s\n", host, port,
                 std::strerror(errno));
    return 1;
  }
  socklen_t size = sizeof address;
  ::getsockname(listener, reinterpret_cast<sockaddr*>(&address), &size);
  std::printf("listening on %s:%d\n", host, ntohs(address.sin_port));
  std::fflush(stdout);  // the benchmark waits for this line
  for (;;) {
    const int connection = ::accept4(listener, nullptr, nullptr, SOCK_CLOEXEC);
    if (connection < 0) {
      continue;  // ECONNABORTED, EINTR, ...: wait for the next client
    }
    converse(connection);
    ::close(connection);  // close(2): never retried, even on EINTR
  }
}
