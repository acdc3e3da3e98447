// Lesson 01 — UDP. The functions you write in udp.cpp (exercises 01.1–01.3).
// The reference answers are in solutions/01_udp/udp.cpp: look only after trying.
#pragma once

#include <chrono>
#include <optional>
#include <string>
#include <string_view>

#include "lab/endpoint.hpp"
#include "lab/fd.hpp"

namespace lab::udp {

// ---- Exercise 01.1: socket addresses from text and back -------------------
//
// parse_address("127.0.0.1:9001") is an AF_INET address, port 9001;
// parse_address("[::1]:9001") is an AF_INET6 address. Numeric addresses
// only: turning a name like "localhost" into addresses is the resolver's job
// (getaddrinfo), not this function's. Use inet_pton(3) and htons(3).
// Throws std::invalid_argument, quoting the text, for anything else: no port,
// a port outside 0..65535, an IPv6 address without brackets, a name.
SocketAddress parse_address(std::string_view text);

// format_address of an AF_INET address is "127.0.0.1:9001", of an AF_INET6
// address "[::1]:9001". Use inet_ntop(3) and ntohs(3). Throws
// std::invalid_argument for other families.
std::string format_address(const SocketAddress& address);

// ---- Exercise 01.2: the uppercase reply -----------------------------------
//
// The payload with ASCII 'a'..'z' turned to 'A'..'Z' and every other byte
// unchanged (UTF-8 bytes, 0x00 and 0xff included).
std::string uppercase(std::string_view payload);

// What the server received: the payload and who sent it.
struct Datagram {
  std::string payload;
  SocketAddress sender;
};

// Receives one datagram on the bound UDP socket and sends the uppercase
// reply back to the address it came from. Any size from 0 to 65507 bytes
// (the largest UDP payload over IPv4) comes back whole. Returns what it
// received, for the server's log.
Datagram serve_one(const Fd& socket);

// ---- Exercise 01.3: request with timeout and retry ------------------------
//
// UDP does not retransmit: a lost request or reply is simply gone. So a
// client waits a while for the reply and, if none comes, sends again.
struct RetryPolicy {
  std::chrono::milliseconds timeout{1000};  // how long to wait for each reply
  int tries = 3;                            // how many times to send at most
};

// Sends `payload` to `server` and returns the reply. Waits up to
// policy.timeout for it; on timeout sends again, at most policy.tries times
// in all; returns nullopt if no reply came. Only a datagram from `server`
// counts as the reply: anything from another address is ignored. A reply
// left over from an earlier request (one that came late, or twice) must not
// be taken for this request's reply.
std::optional<std::string> request(const Fd& socket, const SocketAddress& server,
                                   std::string_view payload, const RetryPolicy& policy);

}  // namespace lab::udp
