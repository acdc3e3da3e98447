// Reference solution of exercise 01 (lessons/01_udp/udp.hpp).
#include "udp.hpp"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>

#include <array>
#include <cerrno>
#include <charconv>
#include <stdexcept>

#include "lab/error.hpp"
#include "lab/stop.hpp"

namespace lab::udp {

namespace {

using Clock = std::chrono::steady_clock;

// The largest UDP payload: 65535 (IPv4's total length field) - 20 (IPv4
// header) - 8 (UDP header) = 65507. Over IPv6 the header does not count, so
// up to 65527. A buffer of 65536 bytes holds any datagram whole.
constexpr std::size_t kBufferSize = 65536;

[[noreturn]] void invalid(std::string_view text, std::string_view why) {
  throw std::invalid_argument("bad address '" + std::string(text) + "': " + std::string(why));
}

std::uint16_t to_port(std::string_view text, std::string_view digits) {
  unsigned value = 0;
  const char* end = digits.data() + digits.size();
  const auto [stop, error] = std::from_chars(digits.data(), end, value);
  // from_chars accepts no sign and no spaces, which is what we want.
  if (digits.empty() || error != std::errc{} || stop != end || value > 65535) {
    invalid(text, "the port must be a number from 0 to 65535");
  }
  return static_cast<std::uint16_t>(value);
}

}  // namespace

SocketAddress parse_address(std::string_view text) {
  std::string host;
  std::string_view port;
  if (!text.empty() && text.front() == '[') {
    const auto close = text.find("]:");
    if (close == std::string_view::npos) {
      invalid(text, "write an IPv6 address as [ADDRESS]:PORT");
    }
    host = std::string(text.substr(1, close - 1));
    port = text.substr(close + 2);
    sockaddr_in6 address{};
    address.sin6_family = AF_INET6;
    address.sin6_port = htons(to_port(text, port));  // network byte order on the wire
    if (::inet_pton(AF_INET6, host.c_str(), &address.sin6_addr) != 1) {
      invalid(text, "not a numeric IPv6 address");
    }
    return SocketAddress(reinterpret_cast<const sockaddr*>(&address), sizeof address);
  }
  const auto colon = text.find(':');
  if (colon == std::string_view::npos) {
    invalid(text, "the port is missing (write ADDRESS:PORT)");
  }
  if (text.find(':', colon + 1) != std::string_view::npos) {
    invalid(text, "an IPv6 address needs brackets: [::1]:9001");
  }
  host = std::string(text.substr(0, colon));
  port = text.substr(colon + 1);
  sockaddr_in address{};
  address.sin_family = AF_INET;
  address.sin_port = htons(to_port(text, port));
  // inet_pton, unlike inet_aton, accepts only the four-number dotted form.
  if (::inet_pton(AF_INET, host.c_str(), &address.sin_addr) != 1) {
    invalid(text, "not a numeric IPv4 address (names need resolving first)");
  }
  return SocketAddress(reinterpret_cast<const sockaddr*>(&address), sizeof address);
}

std::string format_address(const SocketAddress& address) {
  std::array<char, INET6_ADDRSTRLEN> host{};
  if (address.family() == AF_INET) {
    const auto* in4 = reinterpret_cast<const sockaddr_in*>(address.get());
    ::inet_ntop(AF_INET, &in4->sin_addr, host.data(), host.size());
    return std::string(host.data()) + ":" + std::to_string(ntohs(in4->sin_port));
  }
  if (address.family() == AF_INET6) {
    const auto* in6 = reinterpret_cast<const sockaddr_in6*>(address.get());
    ::inet_ntop(AF_INET6, &in6->sin6_addr, host.data(), host.size());
    return "[" + std::string(host.data()) + "]:" + std::to_string(ntohs(in6->sin6_port));
  }
  throw std::invalid_argument("format_address: not an IPv4 or IPv6 address (family " +
                              std::to_string(address.family()) + ")");
}

std::string uppercase(std::string_view payload) {
  std::string reply(payload);
  for (char& c : reply) {
    // Not std::toupper: it depends on the locale and is undefined for
    // negative chars (bytes >= 0x80 on most platforms).
    if (c >= 'a' && c <= 'z') {
      c = static_cast<char>(c - 'a' + 'A');
    }
  }
  return reply;
}

Datagram serve_one(const Fd& socket) {
  std::string buffer(kBufferSize, '\0');
  Datagram datagram;
  ssize_t received = 0;
  for (;;) {
    datagram.sender.reset_for_receive();
    received = ::recvfrom(socket.get(), buffer.data(), buffer.size(), 0, datagram.sender.get(),
                          datagram.sender.length_ptr());
    if (received >= 0 || errno != EINTR) {
      break;
    }
    throw_if_stop_requested();  // EINTR: stop if asked to, else try again
  }
  if (received < 0) {
    throw os_error("recvfrom");
  }
  datagram.payload.assign(buffer.data(), static_cast<std::size_t>(received));
  const std::string reply = uppercase(datagram.payload);
  // One datagram in, one datagram out: sendto sends it whole or fails.
  ssize_t sent = 0;
  for (;;) {
    sent = ::sendto(socket.get(), reply.data(), reply.size(), 0, datagram.sender.get(),
                    datagram.sender.length());
    if (sent >= 0 || errno != EINTR) {
      break;
    }
    throw_if_stop_requested();
  }
  if (sent < 0) {
    throw os_error("sendto " + datagram.sender.to_string());
  }
  return datagram;
}

std::optional<std::string> request(const Fd& socket, const SocketAddress& server,
                                   std::string_view payload, const RetryPolicy& policy) {
  std::string buffer(kBufferSize, '\0');
  SocketAddress from;
  // Throw away anything already queued: a reply to an earlier request that
  // came late or twice would otherwise be read as the reply to this one.
  for (;;) {
    from.reset_for_receive();
    const ssize_t stale = ::recvfrom(socket.get(), buffer.data(), buffer.size(), MSG_DONTWAIT,
                                     from.get(), from.length_ptr());
    if (stale < 0 && errno != EINTR) {
      break;  // EAGAIN: the queue is empty
    }
  }
  for (int attempt = 0; attempt < policy.tries; ++attempt) {
    if (::sendto(socket.get(), payload.data(), payload.size(), 0, server.get(), server.length()) <
        0) {
      if (errno == EINTR) {
        throw_if_stop_requested();  // Ctrl-C: stop now, not after every try has timed out
        --attempt;
        continue;
      }
      throw os_error("sendto " + server.to_string());
    }
    // One deadline per try: a stray datagram from elsewhere does not give us more time.
    const auto deadline = Clock::now() + policy.timeout;
    for (;;) {
      const auto left = std::chrono::ceil<std::chrono::milliseconds>(deadline - Clock::now());
      if (left.count() <= 0) {
        break;
      }
      pollfd entry{socket.get(), POLLIN, 0};
      const int ready = ::poll(&entry, 1, static_cast<int>(left.count()));
      if (ready < 0 && errno != EINTR) {
        throw os_error("poll");
      }
      if (ready < 0) {
        throw_if_stop_requested();
        continue;
      }
      if (ready == 0) {
        continue;
      }
      from.reset_for_receive();
      const ssize_t received = ::recvfrom(socket.get(), buffer.data(), buffer.size(), MSG_DONTWAIT,
                                          from.get(), from.length_ptr());
      if (received < 0) {
        if (errno == EINTR || errno == EAGAIN) {
          continue;
        }
        // On Linux an ICMP "port unreachable" may surface here as
        // ECONNREFUSED: nobody listens there. Count it as a lost try.
        if (errno == ECONNREFUSED) {
          continue;
        }
        throw os_error("recvfrom");
      }
      if (from == server) {
        return std::string(buffer.data(), static_cast<std::size_t>(received));
      }
      // From someone else: not our reply. Keep waiting until the deadline.
    }
  }
  return std::nullopt;
}

}  // namespace lab::udp
