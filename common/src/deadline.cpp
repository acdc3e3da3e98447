#include "lab/deadline.hpp"

#include <sys/socket.h>
#include <sys/time.h>

#include <algorithm>
#include <charconv>
#include <cmath>
#include <string>

#include "lab/error.hpp"
#include "lab/io.hpp"
#include "lab/stop.hpp"

namespace lab {

namespace {

constexpr double kLongestSeconds = 86'400;

std::string seconds_text(std::chrono::milliseconds value) {
  return value.count() % 1000 == 0 ? std::to_string(value.count() / 1000)
                                   : fmt::format("{:.3g}", static_cast<double>(value.count()) / 1000);
}

std::chrono::milliseconds seconds_option(const Args& args, std::string_view name) {
  const std::string& text = args.get(name);
  double seconds = -1;
  const char* end = text.data() + text.size();
  const auto [stop, error] = std::from_chars(text.data(), end, seconds);
  if (text.empty() || error != std::errc{} || stop != end || !(seconds >= 0) || seconds > kLongestSeconds) {
    throw UsageError(fmt::format("--{} must be a number of seconds from 0 to {}, not '{}'", name,
                                 kLongestSeconds, text));
  }
  return std::chrono::milliseconds(static_cast<long long>(std::llround(seconds * 1000)));
}

void set_timeout_option(int socket, int option, std::chrono::milliseconds timeout, const char* name) {
  timeval value{};
  value.tv_sec = static_cast<time_t>(timeout.count() / 1000);
  value.tv_usec = static_cast<suseconds_t>((timeout.count() % 1000) * 1000);
  if (::setsockopt(socket, SOL_SOCKET, option, &value, sizeof value) != 0) {
    throw os_error(std::string("setsockopt ") + name);
  }
}

}  // namespace

void add_deadline_options(ProgramSpec& spec, ClientDeadlines defaults) {
  spec.options.push_back({"idle-timeout", "SECONDS",
                          "drop a client that sends nothing, or reads nothing, for this long (0: never)",
                          seconds_text(defaults.idle)});
  spec.options.push_back({"request-timeout", "SECONDS",
                          "drop a client whose request takes longer than this, however busy (0: never)",
                          seconds_text(defaults.request)});
}

ClientDeadlines deadline_options(const Args& args) {
  return {seconds_option(args, "idle-timeout"), seconds_option(args, "request-timeout")};
}

void set_io_timeouts(const Fd& socket, std::chrono::milliseconds timeout) {
  set_timeout_option(socket.get(), SO_RCVTIMEO, timeout, "SO_RCVTIMEO");
  set_timeout_option(socket.get(), SO_SNDTIMEO, timeout, "SO_SNDTIMEO");
}

ClientClock::ClientClock(const Fd& socket, ClientDeadlines deadlines)
    : socket_(socket.get()), deadlines_(deadlines) {
  set_timeout_option(socket_, SO_SNDTIMEO, deadlines_.idle, "SO_SNDTIMEO");
}

void ClientClock::wait_readable() const {
  std::optional<std::chrono::milliseconds> wait;
  bool request_limits = false;
  if (deadlines_.idle.count() > 0) {
    wait = deadlines_.idle;
  }
  if (request_deadline_) {
    const auto left = std::chrono::ceil<std::chrono::milliseconds>(*request_deadline_ - Clock::now());
    if (!wait || left < *wait) {
      wait = std::max(left, std::chrono::milliseconds(0));
      request_limits = true;
    }
  }
  if (lab::wait_readable(socket_, process_stop(), wait)) {
    return;
  }
  if (request_limits) {
    throw TimeoutError(fmt::format("request timeout: not done within {} s", seconds_text(deadlines_.request)));
  }
  throw TimeoutError(fmt::format("idle timeout: nothing received for {} s", seconds_text(deadlines_.idle)));
}

void ClientClock::request_started() {
  if (!request_deadline_ && deadlines_.request.count() > 0) {
    request_deadline_ = Clock::now() + deadlines_.request;
  }
}

void ClientClock::check() const {
  if (request_deadline_ && Clock::now() >= *request_deadline_) {
    throw TimeoutError(fmt::format("request timeout: not done within {} s", seconds_text(deadlines_.request)));
  }
}

bool read_exact(const Fd& socket, ClientClock& clock, std::span<std::uint8_t> buffer) {
  std::size_t filled = 0;
  while (filled < buffer.size()) {
    clock.wait_readable();
    const auto chunk = read_some(socket, buffer.size() - filled);
    if (!chunk) {
      if (filled == 0) {
        return false;
      }
      throw ProtocolError(fmt::format("connection closed after {} of {} bytes", filled, buffer.size()));
    }
    clock.request_started();
    std::copy(chunk->begin(), chunk->end(), buffer.begin() + static_cast<std::ptrdiff_t>(filled));
    filled += chunk->size();
  }
  return true;
}

std::optional<Frame> recv_frame(const Fd& socket, ClientClock& clock, std::uint32_t max_payload) {
  FrameHeaderBytes header_bytes{};
  if (!read_exact(socket, clock, header_bytes)) {
    return std::nullopt;
  }
  // The length is checked against max_payload here, before anything is allocated.
  const FrameHeader header = decode_frame_header(header_bytes, max_payload);
  Frame frame{header.type, std::string(header.length, '\0')};
  if (header.length > 0 &&
      !read_exact(socket, clock, std::span(reinterpret_cast<std::uint8_t*>(frame.payload.data()), header.length))) {
    throw ProtocolError(fmt::format("connection closed after the header of a {}-byte frame", header.length));
  }
  return frame;
}

}  // namespace lab
