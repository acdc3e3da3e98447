// Lesson 02 — TCP. The functions you write in tcp.cpp (exercises 02.1–02.3).
// The reference answers are in solutions/02_tcp/tcp.cpp: look only after trying.
#pragma once

#include <cstddef>
#include <optional>
#include <string>
#include <string_view>

#include "lab/fd.hpp"
#include "lab/stop.hpp"

namespace lab::tcp {

// ---- Exercise 02.1: send everything, receive what came --------------------
//
// send(2) may send fewer bytes than asked (a "short write") and a signal may
// interrupt it (EINTR). Loop until every byte is sent. Send with
// MSG_NOSIGNAL: writing to a peer that has gone must fail with EPIPE (throw
// std::system_error), not kill the program with SIGPIPE.
void send_all(const Fd& socket, std::string_view data);

// One recv(2) of at most `max_bytes`: returns what arrived (1 byte or more),
// or nullopt when the peer has closed its side (recv returned 0). On EINTR,
// call lab::throw_if_stop_requested() and try again. Any other error (e.g.
// ECONNRESET) throws std::system_error.
std::optional<std::string> receive_some(const Fd& socket, std::size_t max_bytes = 1024);

// ---- Exercise 02.2: the conversation loop ---------------------------------
//
// The server's side of one conversation: send "Welcome!", then answer each
// chunk received with "Hello, <chunk>!". A trailing "\n" or "\r\n" is not
// part of the name ("Ann\n" gets "Hello, Ann!"). The chunk "exit" (with or
// without the line ending) or the end of the stream ends the conversation.
// Returns how many greetings were sent. Use your send_all and receive_some.
std::size_t converse(const Fd& connection);

// ---- Exercise 02.3: the connection loop ------------------------------------
//
// Accepts clients one after another on `listener` (use lab::accept_client,
// which returns nullopt once `stop` is requested) and holds a conversation
// with each. A client that resets the connection, or leaves at once, must
// not end the loop: catch std::system_error for that one client, say what
// happened, and accept the next. Returns how many conversations were held
// when `stop` is requested.
std::size_t serve(const Fd& listener, const StopSignal& stop);

}  // namespace lab::tcp
