// Lesson 04 — the struct header (报头). The functions you write in
// struct_header.cpp (exercises 04.1–04.3): length-prefixed frames, and a
// file download that is verified before it is kept. The wire format is in
// lessons/04_struct_header/README.md, byte by byte.
// The reference answers are in solutions/04_struct_header/struct_header.cpp:
// look only after trying.
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <optional>
#include <span>
#include <string>
#include <string_view>

#include "lab/error.hpp"
#include "lab/fd.hpp"
#include "lab/sha256.hpp"

namespace lab::struct_header {

// The header: magic "LF", version 1, a type, a payload length.
//   offset 0  2 bytes  magic    0x4C 0x46
//   offset 2  1 byte   version  0x01
//   offset 3  1 byte   type     one of the kType... values below
//   offset 4  4 bytes  length   payload bytes that follow, big-endian
inline constexpr std::uint16_t kMagic = 0x4C46;  // "LF"
inline constexpr std::uint8_t kVersion = 1;
inline constexpr std::size_t kHeaderSize = 8;
// The largest payload anyone accepts by default: 1 MiB. A file travels as
// many kTypeFileData frames of at most kFileChunk bytes.
inline constexpr std::uint32_t kMaxPayload = 1024 * 1024;
inline constexpr std::size_t kFileChunk = 64 * 1024;

// Frame types. Client to server:
inline constexpr std::uint8_t kTypeCommand = 0x01;     // payload: a command name ("date")
inline constexpr std::uint8_t kTypeGet = 0x10;         // payload: a file name
// Server to client:
inline constexpr std::uint8_t kTypeStdout = 0x02;      // payload: the command's stdout
inline constexpr std::uint8_t kTypeStderr = 0x03;      // payload: the command's stderr
inline constexpr std::uint8_t kTypeExitStatus = 0x04;  // payload: 4 bytes, see the README
inline constexpr std::uint8_t kTypeFileInfo = 0x11;    // payload: 40 bytes, FileInfo
inline constexpr std::uint8_t kTypeFileData = 0x12;    // payload: the next bytes of the file
inline constexpr std::uint8_t kTypeError = 0x7F;       // payload: a message for a person

struct Header {
  std::uint8_t type = 0;
  std::uint32_t length = 0;
  friend bool operator==(const Header&, const Header&) = default;
};
using HeaderBytes = std::array<std::uint8_t, kHeaderSize>;

// The kTypeFileInfo payload: the file's size and SHA-256, sent before its data.
//   offset 0   8 bytes  size     big-endian
//   offset 8  32 bytes  sha256   the raw digest (not hex)
inline constexpr std::size_t kFileInfoSize = 8 + Sha256::kDigestSize;
struct FileInfo {
  std::uint64_t size = 0;
  Sha256::Digest sha256{};
  friend bool operator==(const FileInfo&, const FileInfo&) = default;
};

struct Frame {
  std::uint8_t type = 0;
  std::string payload;
};

// ---- Exercise 04.1: encode and decode the header ---------------------------
//
// encode_header: the 8 bytes above. Write each field byte by byte with
// shifts (or htons/htonl into a uint16_t/uint32_t and then copy those), never
// by copying a struct: a struct has your machine's byte order and padding.
HeaderBytes encode_header(const Header& header);

// decode_header: the reverse, with validation. Throw lab::ProtocolError,
// with a message that says what came and what was expected, when:
//   - the magic is not 0x4C46: message contains "bad magic";
//   - the version is not 1: message contains "unsupported version";
//   - length > max_payload: message contains "over the limit".
// This check is the one that matters: it runs before anybody allocates
// `length` bytes, so a peer claiming 4 GiB costs us nothing.
Header decode_header(std::span<const std::uint8_t, kHeaderSize> bytes, std::uint32_t max_payload = kMaxPayload);

// encode_file_info: the 40-byte payload above. decode_file_info throws
// lab::ProtocolError unless the payload is exactly 40 bytes.
std::string encode_file_info(const FileInfo& info);
FileInfo decode_file_info(std::string_view payload);

// ---- Exercise 04.2: send_frame and recv_frame -------------------------------
//
// send_frame: header then payload, everything sent (lab::write_all may do
// the looping). A payload over kMaxPayload throws std::length_error and
// sends nothing. Send header and payload in ONE write (put them in one
// buffer): two small writes would let Nagle's algorithm delay the second.
void send_frame(const Fd& socket, std::uint8_t type, std::string_view payload);

// recv_frame: read exactly kHeaderSize bytes, decode them (with
// max_payload), then read exactly `length` bytes. Returns std::nullopt if the
// stream ended cleanly before the first header byte. Throws
// lab::ProtocolError if it ends anywhere inside the header or the payload,
// or if decode_header refuses the header. lab::read_exact(fd, span) reads
// exactly N bytes for you; never allocate the payload before the check.
std::optional<Frame> recv_frame(const Fd& socket, std::uint32_t max_payload = kMaxPayload);

// ---- Exercise 04.3: the verified download -----------------------------------
//
// A download that went wrong. The message is one line for a person.
class DownloadError : public ProtocolError {
 public:
  using ProtocolError::ProtocolError;
};

struct Download {
  std::filesystem::path path;  // directory / name
  std::uint64_t size = 0;
  std::string sha256_hex;
};

// Downloads file `name` from the server at the other end of `connection`
// into `directory`, and returns what was saved. In order:
//  1. `name` must be a plain file name: not empty, no '/', not "." or "..".
//     Otherwise throw DownloadError before sending anything.
//  2. Send a kTypeGet frame carrying `name`.
//  3. Receive the answer: kTypeError → throw DownloadError containing the
//     server's message; kTypeFileInfo → decode it; end of stream or any
//     other type → DownloadError.
//  4. Create a temporary file in `directory` (mkostemp(3) with O_CLOEXEC on
//     "<directory>/.<name>.part-XXXXXX"). Receive kTypeFileData frames until
//     exactly `size` bytes have come, writing each to the file and feeding
//     it to a lab::Sha256. Never hold the whole file in memory.
//  5. Check: more bytes than announced, a kTypeError frame, or the end of
//     the stream before `size` bytes → DownloadError ("closed after 5 of 10
//     bytes"). A digest that differs from the announced one → DownloadError
//     whose message contains "SHA-256 mismatch".
//  6. Only then: fsync the file, close it, and rename(2) it to
//     directory/name (replacing an older file of that name).
// On ANY failure (these, or a ProtocolError or std::system_error from
// below) the temporary file is removed before the exception leaves: nothing
// is ever left under the final name or a temporary one. A small RAII class
// that unlinks the file in its destructor unless told it was kept does it.
Download download_file(const Fd& connection, std::string_view name, const std::filesystem::path& directory);

}  // namespace lab::struct_header
