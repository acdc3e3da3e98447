// SHA-256 (FIPS 180-4): a 32-byte fingerprint of any byte string.
//
// Lesson 04 uses it to check that a downloaded file arrived intact; lesson 05
// builds HMAC-SHA256 on top of it. common/src/sha256.cpp is written for
// reading: the standard, step by step, in plain C++. That version is also
// the fallback; on a CPU with SHA instructions (x86 SHA extensions, ARMv8
// SHA-2) the same class runs them instead, chosen once at run time, and
// hashes about as fast as OpenSSL (sha256_x86.cpp, sha256_arm.cpp). Still,
// use a crypto library (OpenSSL, libsodium) in production code: it is
// reviewed, and does much more than one hash.
//
//   lab::Sha256 hasher;
//   hasher.update(first_chunk);
//   hasher.update(second_chunk);
//   std::string hex = lab::to_hex(hasher.finish());
//
// or in one go: lab::to_hex(lab::sha256("abc")) == "ba7816bf...".
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <span>
#include <string>
#include <string_view>

namespace lab {

class Sha256 {
 public:
  static constexpr std::size_t kDigestSize = 32;  // bytes of output
  static constexpr std::size_t kBlockSize = 64;   // bytes the compression eats at a time
  using Digest = std::array<std::uint8_t, kDigestSize>;

  Sha256() noexcept { reset(); }

  // Feeds more of the message. Chunks may be any size, including 0: hashing
  // "ab" then "c" gives the same digest as hashing "abc".
  void update(std::span<const std::uint8_t> bytes) noexcept;
  void update(std::string_view bytes) noexcept;

  // Pads the message, returns its digest, and resets the hasher so that it
  // can hash a new message from the start.
  [[nodiscard]] Digest finish() noexcept;

  // Forgets everything fed so far.
  void reset() noexcept;

 private:
  // Runs the compression function over whole blocks (a multiple of 64 bytes).
  void compress(std::span<const std::uint8_t> blocks) noexcept;

  std::array<std::uint32_t, 8> state_{};
  std::array<std::uint8_t, kBlockSize> pending_{};  // a partial block, waiting for more bytes
  std::size_t pending_size_ = 0;
  std::uint64_t message_bytes_ = 0;  // the padding records the message length
};

// The digest of `bytes` in one call.
[[nodiscard]] Sha256::Digest sha256(std::string_view bytes) noexcept;

// Lower-case hexadecimal, two digits per byte: {0xba, 0x78} -> "ba78".
[[nodiscard]] std::string to_hex(std::span<const std::uint8_t> bytes);

}  // namespace lab
