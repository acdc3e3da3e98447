// Endpoints ("127.0.0.1:9001", "[::1]:9001", "localhost:9001") and socket addresses.
#pragma once

#include <sys/socket.h>

#include <cstdint>
#include <string>
#include <string_view>
#include <system_error>
#include <vector>

namespace lab {

// A host and a port as a person writes them; not yet resolved.
struct Endpoint {
  std::string host;
  std::uint16_t port = 0;

  // Parses "HOST:PORT". An IPv6 literal goes in brackets, "[::1]:9001", because
  // its own colons would make the port ambiguous. Throws std::invalid_argument
  // with a message that quotes the text and says what is wrong.
  static Endpoint parse(std::string_view text);

  // The reverse of parse: "127.0.0.1:9001", "[::1]:9001".
  [[nodiscard]] std::string to_string() const;

  friend bool operator==(const Endpoint&, const Endpoint&) = default;
};

// A socket address of any family: what bind, connect, sendto and recvfrom
// take and give. sockaddr_storage is large enough and aligned for each family.
class SocketAddress {
 public:
  SocketAddress() = default;
  SocketAddress(const sockaddr* address, socklen_t length);

  [[nodiscard]] const sockaddr* get() const noexcept;
  [[nodiscard]] sockaddr* get() noexcept;
  [[nodiscard]] socklen_t length() const noexcept { return length_; }
  // For calls that fill an address in (accept, recvfrom, getsockname): pass
  // get() and this, after reset_for_receive().
  [[nodiscard]] socklen_t* length_ptr() noexcept { return &length_; }
  void reset_for_receive() noexcept;

  [[nodiscard]] int family() const noexcept { return storage_.ss_family; }
  // The port in host byte order (0 for families without ports).
  [[nodiscard]] std::uint16_t port() const noexcept;
  // The numeric host, without brackets: "127.0.0.1", "::1".
  [[nodiscard]] std::string host() const;
  // "127.0.0.1:9001", "[::1]:9001"; "(unix)" for AF_UNIX, "(none)" when empty.
  [[nodiscard]] std::string to_string() const;

  // Same family, address and port.
  friend bool operator==(const SocketAddress& a, const SocketAddress& b) noexcept;

  // getsockname(2) / getpeername(2).
  static SocketAddress local_of(int fd);
  static SocketAddress peer_of(int fd);

 private:
  sockaddr_storage storage_{};
  socklen_t length_ = 0;
};

// getaddrinfo(3) for a numeric or named host; the addresses in the order the
// resolver prefers. Throws std::system_error naming the endpoint
// ("resolve nosuchhost:80: Name or service not known").
std::vector<SocketAddress> resolve(const Endpoint& endpoint, int socket_type);

// The error category of getaddrinfo's EAI_* codes (gai_strerror messages).
const std::error_category& resolver_category() noexcept;

}  // namespace lab
