#include "lab/collect.hpp"

#include <fcntl.h>
#include <poll.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <cerrno>
#include <cstdint>
#include <limits>

#include "lab/error.hpp"

namespace lab {

namespace {

// One output stream of the child and the text kept of it.
struct Stream {
  Fd* pipe;
  std::string* text;
};

// poll(2) skips an entry whose descriptor is negative: a closed pipe.
pollfd entry_for(const Fd& fd, short events) {
  return {fd ? fd.get() : -1, events, 0};
}

}  // namespace

CollectedOutput collect_output(Child& child, const CollectOptions& options) {
  CollectedOutput result;
  std::string_view unsent = options.input;
  Fd& input = child.input();
  if (input && unsent.empty()) {
    input.reset();  // end of input at once
  }
  if (input) {
    // Our end of the pipe only (the child's end is a separate open file):
    // a write then never waits for room, it writes what fits, and the poll
    // below stays the one place that waits.
    const int flags = ::fcntl(input.get(), F_GETFL);
    if (flags < 0 || ::fcntl(input.get(), F_SETFL, flags | O_NONBLOCK) != 0) {
      throw os_error("fcntl O_NONBLOCK on a child's stdin");
    }
  }
  // Both output pipes are read as data arrives. Reading one to its end
  // before the other would deadlock once the child fills the other pipe
  // (64 KiB) and blocks writing to it.
  std::array<Stream, 2> streams{{{&child.output(), &result.out}, {&child.errors(), &result.err}}};
  const auto deadline = Clock::now() + options.time_limit;

  while (input || *streams[0].pipe || *streams[1].pipe) {
    const auto left = std::chrono::ceil<std::chrono::milliseconds>(deadline - Clock::now());
    if (left.count() <= 0) {
      result.timed_out = true;
      return result;
    }
    std::array<pollfd, 4> entries{
        entry_for(*streams[0].pipe, POLLIN), entry_for(*streams[1].pipe, POLLIN),
        entry_for(input, POLLOUT),
        pollfd{options.stop != nullptr ? options.stop->fd() : -1, POLLIN, 0}};
    // poll(2) takes an int of milliseconds: a longer limit waits in steps.
    const auto wait = std::min<std::int64_t>(left.count(), std::numeric_limits<int>::max());
    if (::poll(entries.data(), entries.size(), static_cast<int>(wait)) < 0) {
      if (errno == EINTR) {
        continue;  // a stop that a signal requested shows on the stop's descriptor
      }
      throw os_error("poll");
    }
    if (entries[3].revents != 0) {
      result.stopped = true;
      return result;
    }
    for (std::size_t i = 0; i < streams.size(); ++i) {
      if (entries[i].revents == 0) {
        continue;
      }
      Stream& stream = streams[i];
      std::array<char, 8192> chunk{};
      const ssize_t got = ::read(stream.pipe->get(), chunk.data(), chunk.size());
      if (got < 0) {
        if (errno == EINTR || errno == EAGAIN) {
          continue;
        }
        throw os_error("read a child's output");
      }
      if (got == 0) {
        stream.pipe->reset();  // end of stream: the child closed it, or ended
        continue;
      }
      const std::size_t room =
          options.max_output - std::min(options.max_output, stream.text->size());
      const auto size = static_cast<std::size_t>(got);
      stream.text->append(chunk.data(), std::min(size, room));
      if (size > room) {
        result.output_capped = true;
        if (options.stop_when_capped) {
          return result;
        }
      }
    }
    if (entries[2].revents != 0) {
      // POLLOUT: room in the pipe; POLLERR: the child closed its end. The
      // write tells which, and writes at most what fits (non-blocking).
      const ssize_t written = ::write(input.get(), unsent.data(), unsent.size());
      if (written >= 0) {
        unsent.remove_prefix(static_cast<std::size_t>(written));
      } else if (errno == EPIPE) {
        // The child ended, or closed its stdin, without reading it all: its
        // status and output say what that means.
        unsent = {};
      } else if (errno != EINTR && errno != EAGAIN) {
        throw os_error("write to a child's stdin");
      }
      if (unsent.empty()) {
        input.reset();  // the child sees end of input
      }
    }
  }
  return result;
}

}  // namespace lab
