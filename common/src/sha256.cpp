// SHA-256 as FIPS 180-4 section 6.2 describes it, step by step.
//
// lab::Sha256 below buffers the message into 64-byte blocks and pads it; the
// compression function that digests the blocks is an "engine"
// (sha256_engines.hpp). The portable engine here is the reference, written
// to be read next to the standard. On a CPU with SHA instructions the same
// work runs in hardware instead (sha256_x86.cpp, sha256_arm.cpp), six to
// eight times faster (tests/common/bench/bench_sha256.cpp measures it): the
// instructions do two or four rounds at a time, where the plain version
// spends a dozen instructions on every round.
#include "lab/sha256.hpp"

#include <algorithm>
#include <atomic>
#include <bit>

#include "sha256_engines.hpp"

namespace lab {
namespace {

using detail::kSha256RoundConstants;

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

// FIPS 180-4 6.2.2, once for each block: the reference every faster
// engine must agree with (tests/common/test_sha256.cpp compares them).
void compress_portable(detail::Sha256State& state, const std::uint8_t* blocks,
                       std::size_t block_count) noexcept {
  for (; block_count > 0; --block_count, blocks += Sha256::kBlockSize) {
    // Step 1: the message schedule, 64 words from the block's 16.
    std::array<std::uint32_t, 64> schedule{};
    for (std::size_t t = 0; t < 16; ++t) {
      schedule[t] = load_big_endian(blocks + 4 * t);
    }
    for (std::size_t t = 16; t < 64; ++t) {
      schedule[t] = small_sigma1(schedule[t - 2]) + schedule[t - 7] +
                    small_sigma0(schedule[t - 15]) + schedule[t - 16];
    }

    // Steps 2-3: 64 rounds over the eight working variables a..h.
    std::uint32_t a = state[0], b = state[1], c = state[2], d = state[3];
    std::uint32_t e = state[4], f = state[5], g = state[6], h = state[7];
    for (std::size_t t = 0; t < 64; ++t) {
      const std::uint32_t t1 =
          h + big_sigma1(e) + choose(e, f, g) + kSha256RoundConstants[t] + schedule[t];
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
    state[0] += a;
    state[1] += b;
    state[2] += c;
    state[3] += d;
    state[4] += e;
    state[5] += f;
    state[6] += g;
    state[7] += h;
  }
}

constexpr detail::Sha256Engine kPortableEngine{"portable", compress_portable};

// The engine lab::Sha256 uses. Chosen on first use rather than when the
// program starts, so that a Sha256 used by another static object's
// constructor still finds it set. Atomic because ScopedSha256Engine may
// change it while other threads hash (they see the old or the new engine,
// each correct).
std::atomic<const detail::Sha256Engine*>& active_engine() noexcept {
  static std::atomic<const detail::Sha256Engine*> active{[] {
    const detail::Sha256Engine* accelerated = detail::accelerated_sha256_engine();
    return accelerated != nullptr ? accelerated : &kPortableEngine;
  }()};
  return active;
}

}  // namespace

namespace detail {

const Sha256Engine& portable_sha256_engine() noexcept {
  return kPortableEngine;
}

const Sha256Engine* accelerated_sha256_engine() noexcept {
  // At most one of them exists in a given build: each is compiled only for
  // its own architecture, and answers nullptr elsewhere.
  if (const Sha256Engine* x86 = x86_sha256_engine()) {
    return x86;
  }
  return arm_sha256_engine();
}

const Sha256Engine& active_sha256_engine() noexcept {
  return *active_engine().load(std::memory_order_relaxed);
}

ScopedSha256Engine::ScopedSha256Engine(const Sha256Engine& engine) noexcept
    : previous_(active_engine().exchange(&engine)) {}

ScopedSha256Engine::~ScopedSha256Engine() {
  active_engine().store(previous_);
}

}  // namespace detail

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
    std::copy_n(bytes.begin(), taken,
                pending_.begin() + static_cast<std::ptrdiff_t>(pending_size_));
    pending_size_ += taken;
    bytes = bytes.subspan(taken);
    if (pending_size_ < kBlockSize) {
      return;
    }
    compress(pending_);
    pending_size_ = 0;
  }

  // Then all the whole blocks straight from the caller's memory, in one call:
  // the engine keeps its state in registers from one block to the next.
  const std::size_t whole_blocks = bytes.size() - bytes.size() % kBlockSize;
  compress(bytes.first(whole_blocks));
  bytes = bytes.subspan(whole_blocks);

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

void Sha256::compress(std::span<const std::uint8_t> blocks) noexcept {
  if (blocks.empty()) {
    return;
  }
  detail::active_sha256_engine().compress(state_, blocks.data(), blocks.size() / kBlockSize);
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
