#include "lab/socket.hpp"

#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <sys/time.h>

#include <cerrno>
#include <cstring>
#include <vector>
#include <functional>

#include "lab/error.hpp"
#include "lab/program.hpp"

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

namespace {

bool is_out_of_resources(int error) {
  return error == EMFILE || error == ENFILE || error == ENOBUFS || error == ENOMEM;
}

// Waits until the listener is readable; reaps `children` (if any) whenever
// one of them ends meanwhile. Throws StopRequested.
void wait_for_client(const Fd& listener, const StopSignal& stop, ForkedChildren* children) {
  for (;;) {
    std::vector<pollfd> entries{{listener.get(), POLLIN, 0}, {stop.fd(), POLLIN, 0}};
    if (children != nullptr) {
      for (const int pidfd : children->pidfds()) {
        entries.push_back({pidfd, POLLIN, 0});
      }
    }
    if (::poll(entries.data(), entries.size(), -1) < 0) {
      if (errno == EINTR) {
        continue;  // the stop eventfd, not errno, says whether to stop
      }
      throw os_error("poll");
    }
    if (entries[1].revents != 0) {
      throw StopRequested{};
    }
    if (children != nullptr && entries.size() > 2) {
      children->reap_finished();
    }
    if (entries[0].revents != 0) {
      return;
    }
  }
}

std::optional<Connection> accept_next(const Fd& listener, const StopSignal& stop, ForkedChildren* children) {
  bool starved = false;
  for (;;) {
    try {
      wait_for_client(listener, stop, children);
    } catch (const StopRequested&) {
      return std::nullopt;
    }
    Connection connection;
    connection.peer.reset_for_receive();
    connection.socket.reset(::accept4(listener.get(), connection.peer.get(),
                                      connection.peer.length_ptr(), SOCK_CLOEXEC));
    if (connection.socket) {
      if (starved) {
        warn("accept works again");
      }
      return connection;
    }
    // accept(2): a connection may be aborted between poll and accept; also
    // retry the errors Linux passes on from the new socket (see "Error handling").
    const int error = errno;
    if (error == EINTR || error == ECONNABORTED || error == EAGAIN || error == EPROTO) {
      continue;
    }
    if (!is_out_of_resources(error)) {
      throw os_error(error, "accept");
    }
    // The client is still in the backlog, so the listener stays readable:
    // retrying at once would spin. Wait until a connection or a child has
    // ended and given back what we lack; only a stop cuts the wait short.
    if (!starved) {
      warn("accept: {} ({}); retrying every {} ms", std::strerror(error), errno_name(error),
           kAcceptBackoff.count());
      starved = true;
    }
    pollfd entry{stop.fd(), POLLIN, 0};
    if (::poll(&entry, 1, static_cast<int>(kAcceptBackoff.count())) > 0) {
      return std::nullopt;
    }
    if (children != nullptr) {
      children->reap_finished();
    }
  }
}

}  // namespace

std::optional<Connection> accept_client(const Fd& listener, const StopSignal& stop) {
  return accept_next(listener, stop, nullptr);
}

std::optional<Connection> accept_client(const Fd& listener, const StopSignal& stop,
                                        ForkedChildren& children) {
  return accept_next(listener, stop, &children);
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
