#include "lab/endpoint.hpp"

#include <arpa/inet.h>
#include <fmt/core.h>
#include <netdb.h>
#include <netinet/in.h>

#include <array>
#include <charconv>
#include <cstring>
#include <memory>
#include <stdexcept>
#include <system_error>

#include "lab/error.hpp"

namespace lab {

namespace {

[[noreturn]] void bad_endpoint(std::string_view text, std::string_view why) {
  throw std::invalid_argument("bad endpoint '" + std::string(text) + "': " + std::string(why));
}

std::uint16_t parse_port(std::string_view text, std::string_view port_text) {
  if (port_text.empty()) {
    bad_endpoint(text, "the port is missing (write HOST:PORT)");
  }
  unsigned value = 0;
  const auto* end = port_text.data() + port_text.size();
  const auto [stop, error] = std::from_chars(port_text.data(), end, value);
  if (error != std::errc{} || stop != end || port_text.front() == '+') {
    bad_endpoint(text, "the port must be a number from 0 to 65535");
  }
  if (value > 65535) {
    bad_endpoint(text, "the port must be a number from 0 to 65535");
  }
  return static_cast<std::uint16_t>(value);
}

class ResolverCategory : public std::error_category {
 public:
  [[nodiscard]] const char* name() const noexcept override { return "resolver"; }
  [[nodiscard]] std::string message(int code) const override { return ::gai_strerror(code); }
};

struct AddrinfoDeleter {
  void operator()(addrinfo* list) const noexcept { ::freeaddrinfo(list); }
};

}  // namespace

Endpoint Endpoint::parse(std::string_view text) {
  std::string_view host;
  std::string_view port;
  if (!text.empty() && text.front() == '[') {
    const auto close = text.find(']');
    if (close == std::string_view::npos) {
      bad_endpoint(text, "'[' without ']' (write [::1]:9001)");
    }
    host = text.substr(1, close - 1);
    const auto rest = text.substr(close + 1);
    if (rest.empty() || rest.front() != ':') {
      bad_endpoint(text, "expected ':PORT' after ']'");
    }
    port = rest.substr(1);
  } else {
    const auto colon = text.rfind(':');
    if (colon == std::string_view::npos) {
      bad_endpoint(text, "the port is missing (write HOST:PORT)");
    }
    host = text.substr(0, colon);
    port = text.substr(colon + 1);
    if (host.find(':') != std::string_view::npos) {
      bad_endpoint(text, "an IPv6 address needs brackets (write [::1]:9001)");
    }
  }
  if (host.empty()) {
    bad_endpoint(text, "the host is missing");
  }
  return Endpoint{std::string(host), parse_port(text, port)};
}

// fmt::format rather than "[" + host + ...: g++ 12 at -O3 misreports such
// concatenations as overlapping copies (-Wrestrict, GCC bug 105329).
std::string Endpoint::to_string() const {
  if (host.find(':') != std::string::npos) {
    return fmt::format("[{}]:{}", host, port);
  }
  return fmt::format("{}:{}", host, port);
}

SocketAddress::SocketAddress(const sockaddr* address, socklen_t length) {
  if (length > sizeof storage_) {
    throw std::invalid_argument("socket address longer than sockaddr_storage");
  }
  std::memcpy(&storage_, address, length);
  length_ = length;
}

const sockaddr* SocketAddress::get() const noexcept {
  return reinterpret_cast<const sockaddr*>(&storage_);
}

sockaddr* SocketAddress::get() noexcept { return reinterpret_cast<sockaddr*>(&storage_); }

void SocketAddress::reset_for_receive() noexcept {
  storage_ = {};
  length_ = sizeof storage_;
}

std::uint16_t SocketAddress::port() const noexcept {
  // The port is stored in network byte order (big-endian); ntohs converts it.
  switch (family()) {
    case AF_INET:
      return ntohs(reinterpret_cast<const sockaddr_in*>(&storage_)->sin_port);
    case AF_INET6:
      return ntohs(reinterpret_cast<const sockaddr_in6*>(&storage_)->sin6_port);
    default:
      return 0;
  }
}

std::string SocketAddress::host() const {
  std::array<char, INET6_ADDRSTRLEN> text{};
  const void* raw = nullptr;
  switch (family()) {
    case AF_INET:
      raw = &reinterpret_cast<const sockaddr_in*>(&storage_)->sin_addr;
      break;
    case AF_INET6:
      raw = &reinterpret_cast<const sockaddr_in6*>(&storage_)->sin6_addr;
      break;
    default:
      return "";
  }
  if (::inet_ntop(family(), raw, text.data(), text.size()) == nullptr) {
    throw os_error("inet_ntop");
  }
  return text.data();
}

std::string SocketAddress::to_string() const {
  switch (family()) {
    case AF_INET:
      return fmt::format("{}:{}", host(), port());
    case AF_INET6:
      return fmt::format("[{}]:{}", host(), port());
    case AF_UNIX:
      return "(unix)";
    case AF_UNSPEC:
      return "(none)";
    default:
      return fmt::format("(family {})", family());
  }
}

bool operator==(const SocketAddress& a, const SocketAddress& b) noexcept {
  if (a.family() != b.family() || a.port() != b.port()) {
    return false;
  }
  if (a.family() == AF_INET) {
    return reinterpret_cast<const sockaddr_in*>(&a.storage_)->sin_addr.s_addr ==
           reinterpret_cast<const sockaddr_in*>(&b.storage_)->sin_addr.s_addr;
  }
  if (a.family() == AF_INET6) {
    return std::memcmp(&reinterpret_cast<const sockaddr_in6*>(&a.storage_)->sin6_addr,
                       &reinterpret_cast<const sockaddr_in6*>(&b.storage_)->sin6_addr,
                       sizeof(in6_addr)) == 0;
  }
  return a.length_ == b.length_ && std::memcmp(&a.storage_, &b.storage_, a.length_) == 0;
}

SocketAddress SocketAddress::local_of(int fd) {
  SocketAddress address;
  address.reset_for_receive();
  if (::getsockname(fd, address.get(), address.length_ptr()) != 0) {
    throw os_error("getsockname");
  }
  return address;
}

SocketAddress SocketAddress::peer_of(int fd) {
  SocketAddress address;
  address.reset_for_receive();
  if (::getpeername(fd, address.get(), address.length_ptr()) != 0) {
    throw os_error("getpeername");
  }
  return address;
}

const std::error_category& resolver_category() noexcept {
  static const ResolverCategory category;
  return category;
}

std::vector<SocketAddress> resolve(const Endpoint& endpoint, int socket_type) {
  addrinfo hints{};
  hints.ai_family = AF_UNSPEC;         // IPv4 or IPv6, whichever the host has
  hints.ai_socktype = socket_type;
  hints.ai_flags = AI_NUMERICSERV;     // the port is a number, never a service name
  const std::string port = std::to_string(endpoint.port);
  addrinfo* raw = nullptr;
  const int status = ::getaddrinfo(endpoint.host.c_str(), port.c_str(), &hints, &raw);
  if (status != 0) {
    // EAI_SYSTEM means "look at errno" instead of an EAI_* code.
    if (status == EAI_SYSTEM) {
      throw os_error("resolve " + endpoint.to_string());
    }
    throw std::system_error(status, resolver_category(), "resolve " + endpoint.to_string());
  }
  const std::unique_ptr<addrinfo, AddrinfoDeleter> list(raw);
  std::vector<SocketAddress> addresses;
  for (const addrinfo* entry = list.get(); entry != nullptr; entry = entry->ai_next) {
    addresses.emplace_back(entry->ai_addr, entry->ai_addrlen);
  }
  return addresses;
}

}  // namespace lab
