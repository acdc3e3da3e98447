// Setting sockets up: TCP listen/connect/accept, UDP bind. Errors name the call and the address.
#pragma once

#include <optional>

#include "lab/endpoint.hpp"
#include "lab/fd.hpp"
#include "lab/stop.hpp"

namespace lab {

// A listening TCP socket on `endpoint` (port 0: the kernel picks a free port;
// read it back with SocketAddress::local_of). SO_REUSEADDR is set so that a
// restarted server can bind while old connections sit in TIME_WAIT.
// Errors read "bind 127.0.0.1:9002: Address already in use".
Fd tcp_listen(const Endpoint& endpoint, int backlog = 64);

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
std::optional<Connection> accept_client(const Fd& listener, const StopSignal& stop);

// SO_RCVTIMEO: a blocking read on `socket` gives up after `timeout`, and the
// I/O helpers then throw TimeoutError. Zero means no limit.
void set_receive_timeout(const Fd& socket, std::chrono::milliseconds timeout);

}  // namespace lab
