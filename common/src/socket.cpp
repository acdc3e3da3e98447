#include "lab/socket.hpp"

#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <sys/time.h>

#include <cerrno>
#include <functional>

#include "lab/error.hpp"

namespace lab {

namespace {

// Tries each resolved address in turn, as getaddrinfo(3) advises, and keeps
// the first socket for which `set_up` succeeds. The error of the last address
// tried is the one reported.
Fd first_that_works(const Endpoint& endpoint, int socket_type,
                    const std::function<bool(const Fd&, const SocketAddress&)>& set_up,
                    const char* call) {
  int last_error = 0;
  std::string last_address = endpoint.to_string();
  for (const SocketAddress& address : resolve(endpoint, socket_type)) {
    Fd socket{::socket(address.family(), socket_type | SOCK_CLOEXEC, 0)};
    if (!socket) {
      last_error = errno;
      last_address = address.to_string();
      continue;
    }
    if (set_up(socket, address)) {
      return socket;
    }
    last_error = errno;
    last_address = address.to_string();
  }
  throw os_error(last_error, std::string(call) + " " + last_address);
}

void enable_option(const Fd& socket, int level, int option, const char* name) {
  const int on = 1;
  if (::setsockopt(socket.get(), level, option, &on, sizeof on) != 0) {
    throw os_error(std::string("setsockopt ") + name);
  }
}

}  // namespace

Fd tcp_listen(const Endpoint& endpoint, int backlog) {
  return first_that_works(
      endpoint, SOCK_STREAM,
      [backlog](const Fd& socket, const SocketAddress& address) {
        enable_option(socket, SOL_SOCKET, SO_REUSEADDR, "SO_REUSEADDR");
        if (address.family() == AF_INET6) {
          // "[::]" then means IPv6 only, the same on every system; IPv4 clients
          // use an IPv4 listener.
          enable_option(socket, IPPROTO_IPV6, IPV6_V6ONLY, "IPV6_V6ONLY");
        }
        return ::bind(socket.get(), address.get(), address.length()) == 0 &&
               ::listen(socket.get(), backlog) == 0;
      },
      "bind");
}

Fd tcp_connect(const Endpoint& endpoint) {
  return first_that_works(
      endpoint, SOCK_STREAM,
      [](const Fd& socket, const SocketAddress& address) {
        if (::connect(socket.get(), address.get(), address.length()) == 0) {
          return true;
        }
        if (errno != EINTR) {
          return false;
        }
        // connect(2) was interrupted by a signal: the handshake goes on in the
        // background and connect must not simply be called again. Stop if the
        // signal asked for it; otherwise wait until the socket is writable and
        // read the outcome from SO_ERROR.
        throw_if_stop_requested();
        pollfd entry{socket.get(), POLLOUT, 0};
        while (::poll(&entry, 1, -1) < 0) {
          if (errno != EINTR) {
            return false;
          }
          throw_if_stop_requested();
        }
        int error = 0;
        socklen_t length = sizeof error;
        if (::getsockopt(socket.get(), SOL_SOCKET, SO_ERROR, &error, &length) != 0) {
          return false;
        }
        errno = error;
        return error == 0;
      },
      "connect");
}

Fd udp_bind(const Endpoint& endpoint) {
  return first_that_works(
      endpoint, SOCK_DGRAM,
      [](const Fd& socket, const SocketAddress& address) {
        if (address.family() == AF_INET6) {
          enable_option(socket, IPPROTO_IPV6, IPV6_V6ONLY, "IPV6_V6ONLY");
        }
        return ::bind(socket.get(), address.get(), address.length()) == 0;
      },
      "bind");
}

Fd udp_socket(int family) {
  Fd socket{::socket(family, SOCK_DGRAM | SOCK_CLOEXEC, 0)};
  if (!socket) {
    throw os_error("socket");
  }
  return socket;
}

std::optional<Connection> accept_client(const Fd& listener, const StopSignal& stop) {
  for (;;) {
    try {
      wait_readable(listener.get(), stop);
    } catch (const StopRequested&) {
      return std::nullopt;
    }
    Connection connection;
    connection.peer.reset_for_receive();
    connection.socket.reset(::accept4(listener.get(), connection.peer.get(),
                                      connection.peer.length_ptr(), SOCK_CLOEXEC));
    if (connection.socket) {
      return connection;
    }
    // accept(2): a connection may be aborted between poll and accept; also
    // retry the errors Linux passes on from the new socket (see "Error handling").
    if (errno == EINTR || errno == ECONNABORTED || errno == EAGAIN || errno == EPROTO) {
      continue;
    }
    throw os_error("accept");
  }
}

void set_receive_timeout(const Fd& socket, std::chrono::milliseconds timeout) {
  timeval value{};
  value.tv_sec = static_cast<time_t>(timeout.count() / 1000);
  value.tv_usec = static_cast<suseconds_t>((timeout.count() % 1000) * 1000);
  if (::setsockopt(socket.get(), SOL_SOCKET, SO_RCVTIMEO, &value, sizeof value) != 0) {
    throw os_error("setsockopt SO_RCVTIMEO");
  }
}

}  // namespace lab
