// Frames: a fixed-size binary header, then a payload of the length it states.
//
// TCP delivers a stream of bytes with no message boundaries (lesson 03). A
// frame puts them back: the receiver reads exactly 8 header bytes, learns
// from them how long the payload is, checks that length against a maximum,
// and only then allocates and reads exactly that many bytes. This is the
// format lesson 04 teaches (there the student writes it); later lessons use
// this copy. The byte layout, with a hex example, is in
// docs/protocols/frames.md:
//
//   offset 0  2 bytes  magic    0x4C 0x46 ("LF"): "this is a lab frame"
//   offset 2  1 byte   version  1
//   offset 3  1 byte   type     what the payload is; each protocol names its own
//   offset 4  4 bytes  length   payload bytes, unsigned, big-endian (network order)
//
//   constexpr std::uint8_t kTypeText = 1;  // each protocol names its own types
//   lab::send_frame(connection, kTypeText, "hello");
//   while (auto frame = lab::recv_frame(connection)) { ... frame->type, frame->payload ... }
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <string_view>

#include "lab/fd.hpp"

namespace lab {

inline constexpr std::uint16_t kFrameMagic = 0x4C46;  // "LF"
inline constexpr std::uint8_t kFrameVersion = 1;
inline constexpr std::size_t kFrameHeaderSize = 8;
// The largest payload recv_frame accepts unless told otherwise. A peer that
// claims more is refused before a single byte is allocated for it.
inline constexpr std::uint32_t kMaxFramePayload = 1024 * 1024;

using FrameHeaderBytes = std::array<std::uint8_t, kFrameHeaderSize>;

struct FrameHeader {
  std::uint8_t type = 0;
  std::uint32_t length = 0;  // payload bytes that follow the header
  friend bool operator==(const FrameHeader&, const FrameHeader&) = default;
};

struct Frame {
  std::uint8_t type = 0;
  std::string payload;
};

// The 8 header bytes for `header`, each field written byte by byte in
// big-endian order: the same bytes on every machine, whatever its own
// byte order or struct padding.
[[nodiscard]] FrameHeaderBytes encode_frame_header(const FrameHeader& header) noexcept;

// Reads the header back. Throws ProtocolError, saying what was wrong and what
// was expected, if the magic or version is not ours or the length exceeds
// `max_payload`.
[[nodiscard]] FrameHeader decode_frame_header(std::span<const std::uint8_t, kFrameHeaderSize> bytes,
                                              std::uint32_t max_payload = kMaxFramePayload);

// Sends one frame (header and payload in one write_all). Throws
// std::length_error for a payload over kMaxFramePayload: no peer using the
// default limit would accept it. Send errors as in write_all.
void send_frame(const Fd& fd, std::uint8_t type, std::string_view payload);

// Receives one frame. Returns nullopt if the stream ended cleanly before the
// first header byte (the peer is done). Throws ProtocolError for a bad
// header, a length over `max_payload` (checked before allocating), or a
// stream that ends inside the header or the payload.
std::optional<Frame> recv_frame(const Fd& fd, std::uint32_t max_payload = kMaxFramePayload);

}  // namespace lab
