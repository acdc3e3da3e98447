#include "lab/frame.hpp"

#include <fmt/core.h>

#include <stdexcept>

#include "lab/error.hpp"
#include "lab/io.hpp"

namespace lab {

static_assert(kFrameHeaderSize == 2 + 1 + 1 + 4, "magic, version, type, length");

FrameHeaderBytes encode_frame_header(const FrameHeader& header) noexcept {
  // Shifts, not memcpy of a struct: a struct has the machine's byte order
  // and may have padding, so its bytes differ between machines.
  FrameHeaderBytes bytes{};
  bytes[0] = static_cast<std::uint8_t>(kFrameMagic >> 8);
  bytes[1] = static_cast<std::uint8_t>(kFrameMagic & 0xff);
  bytes[2] = kFrameVersion;
  bytes[3] = header.type;
  bytes[4] = static_cast<std::uint8_t>(header.length >> 24);
  bytes[5] = static_cast<std::uint8_t>((header.length >> 16) & 0xff);
  bytes[6] = static_cast<std::uint8_t>((header.length >> 8) & 0xff);
  bytes[7] = static_cast<std::uint8_t>(header.length & 0xff);
  return bytes;
}

FrameHeader decode_frame_header(std::span<const std::uint8_t, kFrameHeaderSize> bytes,
                                std::uint32_t max_payload) {
  const auto magic = static_cast<std::uint16_t>((bytes[0] << 8) | bytes[1]);
  if (magic != kFrameMagic) {
    throw ProtocolError(fmt::format("bad frame magic 0x{:04x} (expected 0x{:04x}, \"LF\"): "
                                    "the peer does not speak this protocol",
                                    magic, kFrameMagic));
  }
  if (bytes[2] != kFrameVersion) {
    throw ProtocolError(fmt::format("unsupported frame version {} (expected {})", bytes[2], kFrameVersion));
  }
  FrameHeader header;
  header.type = bytes[3];
  header.length = (std::uint32_t{bytes[4]} << 24) | (std::uint32_t{bytes[5]} << 16) |
                  (std::uint32_t{bytes[6]} << 8) | std::uint32_t{bytes[7]};
  // The check that matters: refuse before anyone allocates `length` bytes.
  if (header.length > max_payload) {
    throw ProtocolError(fmt::format("frame payload of {} bytes is over the limit of {} bytes",
                                    header.length, max_payload));
  }
  return header;
}

void send_frame(const Fd& fd, std::uint8_t type, std::string_view payload) {
  if (payload.size() > kMaxFramePayload) {
    throw std::length_error(fmt::format("frame payload of {} bytes is over the limit of {} bytes",
                                        payload.size(), kMaxFramePayload));
  }
  const FrameHeaderBytes header = encode_frame_header({type, static_cast<std::uint32_t>(payload.size())});
  // One buffer, one write_all: two small writes would let Nagle's algorithm
  // hold the payload back waiting for the header's ACK (lesson 03).
  std::string wire(reinterpret_cast<const char*>(header.data()), header.size());
  wire.append(payload);
  write_all(fd, wire);
}

std::optional<Frame> recv_frame(const Fd& fd, std::uint32_t max_payload) {
  FrameHeaderBytes bytes{};
  // read_exact: false on a clean end before the first byte; ProtocolError
  // if the stream ends inside the header.
  if (!read_exact(fd, std::span<std::uint8_t>(bytes))) {
    return std::nullopt;
  }
  const FrameHeader header = decode_frame_header(bytes, max_payload);
  Frame frame;
  frame.type = header.type;
  frame.payload.resize(header.length);  // safe now: length <= max_payload
  const bool filled = read_exact(
      fd, std::span<std::uint8_t>(reinterpret_cast<std::uint8_t*>(frame.payload.data()), frame.payload.size()));
  if (!filled) {
    throw ProtocolError(fmt::format("connection closed after a frame header, before its {}-byte payload",
                                    header.length));
  }
  return frame;
}

}  // namespace lab
