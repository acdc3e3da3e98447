// Setting sockets up: TCP listen/connect/accept, UDP bind. Errors name the call and the address.
#pragma once

#include <sys/socket.h>

#include <chrono>
#include <optional>

#include "lab/endpoint.hpp"
#include "lab/fd.hpp"
#include "lab/forked.hpp"
#include "lab/stop.hpp"

namespace lab {

// A listening TCP socket on `endpoint` (port 0: the kernel picks a free port;
// read it back with SocketAddress::local_of). SO_REUSEADDR is set so that a
// restarted server can bind while old connections sit in TIME_WAIT.
// Errors read "bind 127.0.0.1:9002: Address already in use".
//
// The backlog is the queue of connections the kernel has completed for us
// and we have not accepted yet. When it is full, Linux drops the client's
// final ACK: the client believes it is connected while the server never
// sees it. A burst of a thousand clients must fit, so the default is
// SOMAXCONN (listen(2) silently caps it at /proc/sys/net/core/somaxconn).
constexpr int kListenBacklog = SOMAXCONN;
Fd tcp_listen(const Endpoint& endpoint, int backlog = kListenBacklog);

// A TCP connection to the first address of `endpoint` that accepts.
// Errors read "connect 127.0.0.1:9002: Connection refused".
Fd tcp_connect(const Endpoint& endpoint);

// A UDP socket bound to `endpoint`.
Fd udp_bind(const Endpoint& endpoint);

// An unbound UDP socket of `family` (AF_INET, AF_INET6), for a client: the
// kernel binds it to an ephemeral port on its first sendto.
Fd udp_socket(int family);

struct Connection {
  Fd socket;
  SocketAddress peer;
};

// Waits for the next client on `listener`. Returns nullopt once `stop` is
// requested. Retries what accept(2) says to retry: EINTR, and ECONNABORTED (a
// client that reset the connection while it waited in the backlog).
// Running out of descriptors or memory (EMFILE, ENFILE, ENOBUFS, ENOMEM) is
// not the end of the server either: it says so on stderr, waits a little
// (kAcceptBackoff, still answering a stop) and tries again; the waiting
// client stays in the backlog and is served once something was freed.
constexpr std::chrono::milliseconds kAcceptBackoff{100};
std::optional<Connection> accept_client(const Fd& listener, const StopSignal& stop);

// The same for a forking server: while it waits it also reaps `children`
// the moment they end (it polls their pidfds), so no finished child stays a
// zombie until the next client comes.
std::optional<Connection> accept_client(const Fd& listener, const StopSignal& stop,
                                        ForkedChildren& children);

// SO_RCVTIMEO: a blocking read on `socket` gives up after `timeout`, and the
// I/O helpers then throw TimeoutError. Zero means no limit.
void set_receive_timeout(const Fd& socket, std::chrono::milliseconds timeout);

}  // namespace lab
