// Inside lab::Sha256: the compression functions it can run, and which one.
//
// Not part of the lab's public headers. lab::Sha256 (sha256.cpp) does the
// buffering and the padding; an "engine" does the heavy part, FIPS 180-4
// section 6.2.2, on whole 64-byte blocks. There are three:
//   - portable   plain C++, the readable reference (sha256.cpp);
//   - x86 SHA    the SHA extensions of Intel and AMD CPUs (sha256_x86.cpp);
//   - ARMv8 SHA2 the SHA-2 instructions of 64-bit ARM CPUs (sha256_arm.cpp).
// The first call picks the fastest one this CPU can run; the tests and the
// benchmark pick one explicitly with ScopedSha256Engine.
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <string_view>

namespace lab::detail {

// FIPS 180-4 4.2.2: the first 32 bits of the fractional parts of the cube
// roots of the first 64 primes ("nothing up my sleeve" numbers). Aligned so
// that a vector engine can load four of them at a time.
alignas(16) inline constexpr std::array<std::uint32_t, 64> kSha256RoundConstants = {
    0x428a2f98, 0x71374491, 0xb5c0fbcf, 0xe9b5dba5, 0x3956c25b, 0x59f111f1, 0x923f82a4, 0xab1c5ed5,
    0xd807aa98, 0x12835b01, 0x243185be, 0x550c7dc3, 0x72be5d74, 0x80deb1fe, 0x9bdc06a7, 0xc19bf174,
    0xe49b69c1, 0xefbe4786, 0x0fc19dc6, 0x240ca1cc, 0x2de92c6f, 0x4a7484aa, 0x5cb0a9dc, 0x76f988da,
    0x983e5152, 0xa831c66d, 0xb00327c8, 0xbf597fc7, 0xc6e00bf3, 0xd5a79147, 0x06ca6351, 0x14292967,
    0x27b70a85, 0x2e1b2138, 0x4d2c6dfc, 0x53380d13, 0x650a7354, 0x766a0abb, 0x81c2c92e, 0x92722c85,
    0xa2bfe8a1, 0xa81a664b, 0xc24b8b70, 0xc76c51a3, 0xd192e819, 0xd6990624, 0xf40e3585, 0x106aa070,
    0x19a4c116, 0x1e376c08, 0x2748774c, 0x34b0bcb5, 0x391c0cb3, 0x4ed8aa4a, 0x5b9cca4f, 0x682e6ff3,
    0x748f82ee, 0x78a5636f, 0x84c87814, 0x8cc70208, 0x90befffa, 0xa4506ceb, 0xbef9a3f7, 0xc67178f2,
};

// The eight working words H0..H7 (a..h) between blocks.
using Sha256State = std::array<std::uint32_t, 8>;

// Runs the compression function over `block_count` consecutive 64-byte
// blocks starting at `blocks`. Many blocks per call, so that hashing a large
// buffer costs one indirect call, and a vector engine converts the state to
// and from its register layout once per call rather than once per block.
using Sha256Compress = void (*)(Sha256State& state, const std::uint8_t* blocks,
                                std::size_t block_count) noexcept;

struct Sha256Engine {
  std::string_view name;  // for the tests and the benchmark: "portable", "x86 SHA extensions"
  Sha256Compress compress;
};

// The plain C++ engine: every CPU runs it.
[[nodiscard]] const Sha256Engine& portable_sha256_engine() noexcept;

// The hardware engine of this CPU, or nullptr when it has none (or this build
// has none for its architecture). Each asks the CPU once.
[[nodiscard]] const Sha256Engine* x86_sha256_engine() noexcept;
[[nodiscard]] const Sha256Engine* arm_sha256_engine() noexcept;
[[nodiscard]] const Sha256Engine* accelerated_sha256_engine() noexcept;

// The engine every lab::Sha256 uses now: the accelerated one if there is one.
[[nodiscard]] const Sha256Engine& active_sha256_engine() noexcept;

// Makes every lab::Sha256 in the process use `engine` until this object is
// destroyed, then restores the previous one. For the tests and the benchmark,
// which compare the engines; nothing else should need it.
class ScopedSha256Engine {
 public:
  explicit ScopedSha256Engine(const Sha256Engine& engine) noexcept;
  ~ScopedSha256Engine();
  ScopedSha256Engine(const ScopedSha256Engine&) = delete;
  ScopedSha256Engine& operator=(const ScopedSha256Engine&) = delete;

 private:
  const Sha256Engine* previous_;
};

}  // namespace lab::detail
