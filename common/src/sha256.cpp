// SHA-256 as FIPS 180-4 section 6.2 describes it, step by step.
#include "lab/sha256.hpp"

#include <algorithm>
#include <bit>

namespace lab {
namespace {

// FIPS 180-4 4.2.2: the first 32 bits of the fractional parts of the cube
// roots of the first 64 primes ("nothing up my sleeve" numbers).
constexpr std::array<std::uint32_t, 64> kRoundConstants = {
    0x428a2f98, 0x71374491, 0xb5c0fbcf, 0xe9b5dba5, 0x3956c25b, 0x59f111f1, 0x923f82a4, 0xab1c5ed5,
    0xd807aa98, 0x12835b01, 0x243185be, 0x550c7dc3, 0x72be5d74, 0x80deb1fe, 0x9bdc06a7, 0xc19bf174,
    0xe49b69c1, 0xefbe4786, 0x0fc19dc6, 0x240ca1cc, 0x2de92c6f, 0x4a7484aa, 0x5cb0a9dc, 0x76f988da,
    0x983e5152, 0xa831c66d, 0xb00327c8, 0xbf597fc7, 0xc6e00bf3, 0xd5a79147, 0x06ca6351, 0x14292967,
    0x27b70a85, 0x2e1b2138, 0x4d2c6dfc, 0x53380d13, 0x650a7354, 0x766a0abb, 0x81c2c92e, 0x92722c85,
    0xa2bfe8a1, 0xa81a664b, 0xc24b8b70, 0xc76c51a3, 0xd192e819, 0xd6990624, 0xf40e3585, 0x106aa070,
    0x19a4c116, 0x1e376c08, 0x2748774c, 0x34b0bcb5, 0x391c0cb3, 0x4ed8aa4a, 0x5b9cca4f, 0x682e6ff3,
    0x748f82ee, 0x78a5636f, 0x84c87814, 0x8cc70208, 0x90befffa, 0xa4506ceb, 0xbef9a3f7, 0xc67178f2,
};

// FIPS 180-4 5.3.3: the first 32 bits of the fractional parts of the square
// roots of the first 8 primes.
constexpr std::array<std::uint32_t, 8> kInitialState = {
    0x6a09e667, 0xbb67ae85, 0x3c6ef372, 0xa54ff53a, 0x510e527f, 0x9b05688c, 0x1f83d9ab, 0x5be0cd19,
};

// The message is read as big-endian 32-bit words, whatever the machine's own
// byte order: build each word from its bytes rather than casting a pointer.
std::uint32_t load_big_endian(const std::uint8_t* bytes) noexcept {
  return (std::uint32_t{bytes[0]} << 24) | (std::uint32_t{bytes[1]} << 16) |
         (std::uint32_t{bytes[2]} << 8) | std::uint32_t{bytes[3]};
}

// FIPS 180-4 4.1.2: the six logical functions.
std::uint32_t choose(std::uint32_t x, std::uint32_t y, std::uint32_t z) noexcept {
  return (x & y) ^ (~x & z);
}
std::uint32_t majority(std::uint32_t x, std::uint32_t y, std::uint32_t z) noexcept {
  return (x & y) ^ (x & z) ^ (y & z);
}
std::uint32_t big_sigma0(std::uint32_t x) noexcept {
  return std::rotr(x, 2) ^ std::rotr(x, 13) ^ std::rotr(x, 22);
}
std::uint32_t big_sigma1(std::uint32_t x) noexcept {
  return std::rotr(x, 6) ^ std::rotr(x, 11) ^ std::rotr(x, 25);
}
std::uint32_t small_sigma0(std::uint32_t x) noexcept {
  return std::rotr(x, 7) ^ std::rotr(x, 18) ^ (x >> 3);
}
std::uint32_t small_sigma1(std::uint32_t x) noexcept {
  return std::rotr(x, 17) ^ std::rotr(x, 19) ^ (x >> 10);
}

}  // namespace

void Sha256::reset() noexcept {
  state_ = kInitialState;
  pending_size_ = 0;
  message_bytes_ = 0;
}

void Sha256::update(std::string_view bytes) noexcept {
  // unsigned char may alias any object, so viewing the characters as bytes
  // is well defined and copies nothing.
  update(std::span(reinterpret_cast<const std::uint8_t*>(bytes.data()), bytes.size()));
}

void Sha256::update(std::span<const std::uint8_t> bytes) noexcept {
  message_bytes_ += bytes.size();

  // First top up a partial block left over from the previous call.
  if (pending_size_ > 0) {
    const std::size_t taken = std::min(kBlockSize - pending_size_, bytes.size());
    std::copy_n(bytes.begin(), taken, pending_.begin() + static_cast<std::ptrdiff_t>(pending_size_));
    pending_size_ += taken;
    bytes = bytes.subspan(taken);
    if (pending_size_ < kBlockSize) {
      return;
    }
    compress(pending_);
    pending_size_ = 0;
  }

  // Then whole blocks straight from the caller's memory.
  while (bytes.size() >= kBlockSize) {
    compress(bytes.first<kBlockSize>());
    bytes = bytes.subspan(kBlockSize);
  }

  // Keep the tail for next time.
  std::copy(bytes.begin(), bytes.end(), pending_.begin());
  pending_size_ = bytes.size();
}

Sha256::Digest Sha256::finish() noexcept {
  // FIPS 180-4 5.1.1: append a 1 bit, then 0 bits until 8 bytes short of a
  // block boundary, then the message length in bits as a big-endian 64-bit
  // number. If fewer than 9 bytes of the block are free (pending_size_ > 55),
  // the length spills into one more block.
  const std::uint64_t message_bits = message_bytes_ * 8;
  pending_[pending_size_++] = 0x80;
  if (pending_size_ > kBlockSize - 8) {
    std::fill(pending_.begin() + static_cast<std::ptrdiff_t>(pending_size_), pending_.end(), 0);
    compress(pending_);
    pending_size_ = 0;
  }
  std::fill(pending_.begin() + static_cast<std::ptrdiff_t>(pending_size_), pending_.end() - 8, 0);
  for (std::size_t i = 0; i < 8; ++i) {
    pending_[kBlockSize - 1 - i] = static_cast<std::uint8_t>(message_bits >> (8 * i));
  }
  compress(pending_);

  Digest digest{};
  for (std::size_t word = 0; word < state_.size(); ++word) {
    for (std::size_t byte = 0; byte < 4; ++byte) {
      digest[word * 4 + byte] = static_cast<std::uint8_t>(state_[word] >> (24 - 8 * byte));
    }
  }
  reset();
  return digest;
}

void Sha256::compress(std::span<const std::uint8_t, kBlockSize> block) noexcept {
  // FIPS 180-4 6.2.2 step 1: the message schedule, 64 words from 16.
  std::array<std::uint32_t, 64> schedule{};
  for (std::size_t t = 0; t < 16; ++t) {
    schedule[t] = load_big_endian(block.data() + 4 * t);
  }
  for (std::size_t t = 16; t < 64; ++t) {
    schedule[t] = small_sigma1(schedule[t - 2]) + schedule[t - 7] + small_sigma0(schedule[t - 15]) +
                  schedule[t - 16];
  }

  // Steps 2-3: 64 rounds over the eight working variables a..h.
  std::uint32_t a = state_[0], b = state_[1], c = state_[2], d = state_[3];
  std::uint32_t e = state_[4], f = state_[5], g = state_[6], h = state_[7];
  for (std::size_t t = 0; t < 64; ++t) {
    const std::uint32_t t1 = h + big_sigma1(e) + choose(e, f, g) + kRoundConstants[t] + schedule[t];
    const std::uint32_t t2 = big_sigma0(a) + majority(a, b, c);
    h = g;
    g = f;
    f = e;
    e = d + t1;
    d = c;
    c = b;
    b = a;
    a = t1 + t2;
  }

  // Step 4: add this block's result into the running state (all arithmetic
  // is modulo 2^32, which unsigned overflow gives us for free).
  state_[0] += a;
  state_[1] += b;
  state_[2] += c;
  state_[3] += d;
  state_[4] += e;
  state_[5] += f;
  state_[6] += g;
  state_[7] += h;
}

Sha256::Digest sha256(std::string_view bytes) noexcept {
  Sha256 hasher;
  hasher.update(bytes);
  return hasher.finish();
}

std::string to_hex(std::span<const std::uint8_t> bytes) {
  constexpr std::string_view kDigits = "0123456789abcdef";
  std::string hex;
  hex.reserve(bytes.size() * 2);
  for (const std::uint8_t byte : bytes) {
    hex += kDigits[byte >> 4];
    hex += kDigits[byte & 0x0f];
  }
  return hex;
}

}  // namespace lab
