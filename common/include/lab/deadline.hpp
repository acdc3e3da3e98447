// How long one client may hold a server that serves one client at a time.
//
// Such a server is only as fast as its slowest client: while it waits for
// one, every other client waits in the listen backlog. So it bounds each
// client twice:
//   idle     the longest silence (or the longest a reply may wait for the
//            client to read it: a client that does not read is as stuck);
//   request  the longest one request may take from its first byte to the
//            end of its reply, so that a client trickling one byte at a
//            time, never silent for long, is dropped as well.
//
//   lab::add_deadline_options(spec, {10s, 30s});        // --idle-timeout, --request-timeout
//   lab::ClientClock clock(client->socket, lab::deadline_options(args));
//   clock.wait_readable();   // TimeoutError once a deadline has passed
//   clock.request_started(); ... clock.request_done();
#pragma once

#include <chrono>
#include <cstdint>
#include <optional>
#include <span>

#include "lab/fd.hpp"
#include "lab/frame.hpp"
#include "lab/program.hpp"

namespace lab {

struct ClientDeadlines {
  std::chrono::milliseconds idle{10'000};
  std::chrono::milliseconds request{30'000};
};

// --idle-timeout SECONDS and --request-timeout SECONDS (decimals allowed:
// "0.5"; 0 means no limit), with `defaults`.
void add_deadline_options(ProgramSpec& spec, ClientDeadlines defaults = {});
[[nodiscard]] ClientDeadlines deadline_options(const Args& args);

// The SO_RCVTIMEO and SO_SNDTIMEO of `socket`, e.g. of a listener: on Linux
// an accepted socket inherits them, so every read and every write of every
// conversation gives up after `timeout` (EAGAIN). Zero: no limit.
void set_io_timeouts(const Fd& socket, std::chrono::milliseconds timeout);

// One client's deadlines. The constructor sets the socket's send timeout to
// the idle deadline, so a reply the client never reads fails with a
// TimeoutError instead of blocking the server.
class ClientClock {
 public:
  ClientClock(const Fd& socket, ClientDeadlines deadlines);

  // Waits until the client has sent something. Throws TimeoutError once it
  // was silent for the idle deadline or the request under way has run out
  // of time, StopRequested on a stop (SIGINT/SIGTERM).
  void wait_readable() const;
  // The first byte of a request has come: its clock starts (unless running).
  void request_started();
  // Its reply is sent: the next request gets a clock of its own.
  void request_done() noexcept { request_deadline_.reset(); }
  // Throws TimeoutError if the request under way has run out of time.
  void check() const;

 private:
  int socket_;
  ClientDeadlines deadlines_;
  std::optional<std::chrono::steady_clock::time_point> request_deadline_;
};

// lab::read_exact and lab::recv_frame under a clock: each read waits with
// clock.wait_readable() first, so one message trickled a byte at a time
// cannot outlast the request deadline (a socket timeout alone restarts at
// every byte). The first byte starts the request's clock. Returns false /
// nullopt on a clean end before the first byte; throws as those do, and
// TimeoutError or StopRequested as wait_readable does.
bool read_exact(const Fd& socket, ClientClock& clock, std::span<std::uint8_t> buffer);
std::optional<Frame> recv_frame(const Fd& socket, ClientClock& clock,
                                std::uint32_t max_payload = kMaxFramePayload);

}  // namespace lab
