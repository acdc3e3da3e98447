// The SHA-256 compression function on the ARMv8 SHA-2 instructions.
//
// 64-bit ARM CPUs with the "crypto" extension (most phones, the Raspberry
// Pi 5, Apple and cloud ARM servers) have four SHA-256 instructions working
// on 128-bit NEON registers of four 32-bit lanes:
//   sha256h, sha256h2   four rounds: the new a..d and the new e..h;
//   sha256su0, su1      four words of the message schedule.
// Compiled only for aarch64 Linux, and used only after the kernel's
// hardware-capability bits say the CPU has SHA-2 (getauxval(AT_HWCAP)).
//
// The compilers differ in how one function may use an extension the rest of
// the build does not: GCC takes a per-function target("+crypto"); Clang
// before version 16 declares the intrinsics only when the whole build
// targets it (-march=armv8-a+crypto, which defines __ARM_FEATURE_SHA2). So
// with Clang this engine exists in such a build only; elsewhere the portable
// engine is used.
#include "sha256_engines.hpp"

#if defined(__aarch64__) && defined(__linux__) && defined(__ARM_FEATURE_SHA2)
#define LAB_SHA256_ARM 1
#define LAB_SHA256_TARGET
#elif defined(__aarch64__) && defined(__linux__) && !defined(__clang__)
#define LAB_SHA256_ARM 1
#define LAB_SHA256_TARGET __attribute__((target("+crypto")))
#else
#define LAB_SHA256_ARM 0
#endif

#if LAB_SHA256_ARM
#include <arm_neon.h>
#include <asm/hwcap.h>
#include <sys/auxv.h>
#endif

namespace lab::detail {

#if LAB_SHA256_ARM
namespace {

// Four message words from 16 bytes of the block: the message is big-endian,
// the CPU little-endian, so reverse the bytes within each 32-bit word.
LAB_SHA256_TARGET uint32x4_t load_big_endian_words(const std::uint8_t* bytes) noexcept {
  return vreinterpretq_u32_u8(vrev32q_u8(vld1q_u8(bytes)));
}

LAB_SHA256_TARGET void compress_arm(Sha256State& state, const std::uint8_t* blocks,
                                    std::size_t block_count) noexcept {
  // Unlike x86, the instructions take a..d and e..h in their natural order.
  uint32x4_t abcd = vld1q_u32(&state[0]);
  uint32x4_t efgh = vld1q_u32(&state[4]);

  for (; block_count > 0; --block_count, blocks += 64) {
    const uint32x4_t abcd_before = abcd;
    const uint32x4_t efgh_before = efgh;

    // The last sixteen schedule words, four per register, oldest first.
    uint32x4_t w0 = load_big_endian_words(blocks);
    uint32x4_t w1 = load_big_endian_words(blocks + 16);
    uint32x4_t w2 = load_big_endian_words(blocks + 32);
    uint32x4_t w3 = load_big_endian_words(blocks + 48);
    for (std::size_t t = 0; t < 64; t += 4) {
      const uint32x4_t words_plus_constants = vaddq_u32(w0, vld1q_u32(&kSha256RoundConstants[t]));
      // sha256h gives the new a..d and sha256h2 the new e..h; both need the
      // a..d from before these four rounds.
      const uint32x4_t abcd_old = abcd;
      abcd = vsha256hq_u32(abcd, efgh, words_plus_constants);
      efgh = vsha256h2q_u32(efgh, abcd_old, words_plus_constants);

      // W[t+16..t+19]: su0 adds sigma0 of the words after w0's, su1 adds
      // W[t-7..] and sigma1. The schedule ends at W[63].
      const uint32x4_t next =
          t + 16 < 64 ? vsha256su1q_u32(vsha256su0q_u32(w0, w1), w2, w3) : vdupq_n_u32(0);
      w0 = w1;
      w1 = w2;
      w2 = w3;
      w3 = next;
    }

    abcd = vaddq_u32(abcd, abcd_before);
    efgh = vaddq_u32(efgh, efgh_before);
  }

  vst1q_u32(&state[0], abcd);
  vst1q_u32(&state[4], efgh);
}

constexpr Sha256Engine kArmEngine{"ARMv8 SHA-2 instructions", compress_arm};

}  // namespace

const Sha256Engine* arm_sha256_engine() noexcept {
  // The kernel reports what the CPU can do in the auxiliary vector: the
  // documented way to ask on Linux (the CPU's ID registers are privileged).
  static const bool supported = (::getauxval(AT_HWCAP) & HWCAP_SHA2) != 0;
  return supported ? &kArmEngine : nullptr;
}

#else

const Sha256Engine* arm_sha256_engine() noexcept {
  return nullptr;
}

#endif

#undef LAB_SHA256_TARGET
#undef LAB_SHA256_ARM

}  // namespace lab::detail
