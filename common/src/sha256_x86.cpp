// The SHA-256 compression function on the x86 SHA extensions.
//
// Intel and AMD CPUs since about 2017 (Goldmont, Zen, Ice Lake) have three
// instructions made for SHA-256, working on 128-bit SSE registers of four
// 32-bit lanes:
//   sha256rnds2  two rounds of the compression (steps 2-3 of FIPS 180-4
//                6.2.2): the whole round function, a..h, in hardware;
//   sha256msg1   the sigma0 half of four message schedule words;
//   sha256msg2   the sigma1 half of four message schedule words.
// The plain C++ version (sha256.cpp) spends about a dozen instructions per
// round on rotations, xors and adds; here one instruction does two rounds.
//
// The rest of the lab is built for any x86-64 CPU, so these instructions may
// not be used everywhere: only the functions marked kSha256Target are
// compiled for them (GCC and Clang's per-function target attribute), and
// x86_sha256_engine() hands them out only after asking the CPU (cpuid) that
// it really has them. Running them on a CPU without them would kill the
// program with SIGILL.
#include "sha256_engines.hpp"

#if defined(__x86_64__) || defined(__i386__)
#define LAB_SHA256_X86 1
#include <cpuid.h>
#include <immintrin.h>
#else
#define LAB_SHA256_X86 0
#endif

namespace lab::detail {

#if LAB_SHA256_X86
namespace {

// SHA for the three instructions; SSE4.1 (which includes SSSE3) for the byte
// shuffle and the lane alignment used around them. Every CPU with SHA has
// SSE4.1, but we ask for both rather than assume.
#define LAB_SHA256_TARGET __attribute__((target("sha,sse4.1")))

// cpuid: leaf 1 reports SSE4.1 in ECX bit 19; leaf 7 (sub-leaf 0) reports
// the SHA extensions in EBX bit 29 (Intel SDM vol. 2A, "CPUID").
bool cpu_has_sha_extensions() noexcept {
  constexpr unsigned kLeaf1EcxSse41 = 1U << 19;
  constexpr unsigned kLeaf7EbxSha = 1U << 29;
  unsigned eax = 0, ebx = 0, ecx = 0, edx = 0;
  // Both helpers return 0 when the CPU does not have the leaf at all.
  if (__get_cpuid(1, &eax, &ebx, &ecx, &edx) == 0 || (ecx & kLeaf1EcxSse41) == 0) {
    return false;
  }
  if (__get_cpuid_count(7, 0, &eax, &ebx, &ecx, &edx) == 0) {
    return false;
  }
  return (ebx & kLeaf7EbxSha) != 0;
}

// _mm_loadu/_mm_storeu accept any alignment; the casts only tell them the
// width. (__m128i may alias any type, so this is well defined.)
LAB_SHA256_TARGET __m128i load_lanes(const void* from) noexcept {
  return _mm_loadu_si128(static_cast<const __m128i*>(from));
}
LAB_SHA256_TARGET void store_lanes(void* to, __m128i lanes) noexcept {
  _mm_storeu_si128(static_cast<__m128i*>(to), lanes);
}

// Four message words W[i..i+3] from 16 bytes of the block. The message is
// big-endian and x86 is little-endian, so reverse the bytes in each 32-bit
// lane with one byte shuffle (pshufb): output byte n takes input byte mask[n].
LAB_SHA256_TARGET __m128i load_big_endian_words(const std::uint8_t* bytes) noexcept {
  const __m128i reverse_each_word =
      _mm_setr_epi8(3, 2, 1, 0, 7, 6, 5, 4, 11, 10, 9, 8, 15, 14, 13, 12);
  return _mm_shuffle_epi8(load_lanes(bytes), reverse_each_word);
}

// The next four schedule words W[t..t+3] from the sixteen before them, held
// four per register, oldest first: w0 = W[t-16..t-13] ... w3 = W[t-4..t-1].
//   W[t] = sigma1(W[t-2]) + W[t-7] + sigma0(W[t-15]) + W[t-16]
LAB_SHA256_TARGET __m128i next_four_words(__m128i w0, __m128i w1, __m128i w2, __m128i w3) noexcept {
  // sha256msg1: lane i = W[t-16+i] + sigma0(W[t-15+i]).
  const __m128i with_sigma0 = _mm_sha256msg1_epu32(w0, w1);
  // W[t-7+i] for i = 0..3 straddles two registers: lanes 1-3 of w2 and lane
  // 0 of w3. palignr shifts the 32-byte pair w3:w2 right by one lane.
  const __m128i seven_back = _mm_alignr_epi8(w3, w2, 4);
  // sha256msg2 adds sigma1(W[t-2+i]). For lanes 2 and 3 that word is W[t] or
  // W[t+1], being computed right here: the instruction finishes lanes 0 and
  // 1 first and feeds them back, which is why it takes w3 and not W[t-2..].
  return _mm_sha256msg2_epu32(_mm_add_epi32(with_sigma0, seven_back), w3);
}

// Rounds t..t+3. sha256rnds2 wants the eight working variables split into
// two registers, (A, B, E, F) and (C, D, G, H), each listed from the highest
// lane down. It does two rounds with the two low lanes of its third operand
// (W[t] + K[t], W[t+1] + K[t+1]) and returns the new (A, B, E, F). It does
// not return the new (C, D, G, H) because after two rounds they simply are
// the old A, B, E, F (c takes b, b takes a, ...). So each call's result goes
// into the other register, and after two calls they are back in place.
LAB_SHA256_TARGET void four_rounds(__m128i& abef, __m128i& cdgh, __m128i words,
                                   std::size_t t) noexcept {
  const __m128i words_plus_constants = _mm_add_epi32(words, load_lanes(&kSha256RoundConstants[t]));
  // Rounds t and t+1; now `cdgh` holds the new A, B, E, F.
  cdgh = _mm_sha256rnds2_epu32(cdgh, abef, words_plus_constants);
  // Rounds t+2 and t+3, with lanes 2 and 3 moved down; now both are back in place.
  const __m128i upper_two = _mm_shuffle_epi32(words_plus_constants, 0x0e);
  abef = _mm_sha256rnds2_epu32(abef, cdgh, upper_two);
}

LAB_SHA256_TARGET void compress_x86(Sha256State& state, const std::uint8_t* blocks,
                                    std::size_t block_count) noexcept {
  // The state is H0..H7 = a..h in memory, so it loads as (lowest lane first)
  // abcd = [a b c d] and efgh = [e f g h]. unpack pairs up the 64-bit halves
  // ([a b e f], [c d g h]) and shuffle 0x1b reverses the four lanes, giving
  // [f e b a] and [h g d c]: A, B, E, F and C, D, G, H from the top lane down.
  const __m128i abcd = load_lanes(&state[0]);
  const __m128i efgh = load_lanes(&state[4]);
  __m128i abef = _mm_shuffle_epi32(_mm_unpacklo_epi64(abcd, efgh), 0x1b);
  __m128i cdgh = _mm_shuffle_epi32(_mm_unpackhi_epi64(abcd, efgh), 0x1b);

  for (; block_count > 0; --block_count, blocks += 64) {
    const __m128i abef_before = abef;
    const __m128i cdgh_before = cdgh;

    // The sixteen words of the block, then the schedule four words at a
    // time, each computed just before it is needed and the oldest dropped.
    __m128i w0 = load_big_endian_words(blocks);
    __m128i w1 = load_big_endian_words(blocks + 16);
    __m128i w2 = load_big_endian_words(blocks + 32);
    __m128i w3 = load_big_endian_words(blocks + 48);
    for (std::size_t t = 0; t < 64; t += 4) {
      four_rounds(abef, cdgh, w0, t);
      // Slide the window on four words. The schedule ends at W[63], so the
      // last three steps bring in nothing new (zeros, never used).
      const __m128i next = t + 16 < 64 ? next_four_words(w0, w1, w2, w3) : _mm_setzero_si128();
      w0 = w1;
      w1 = w2;
      w2 = w3;
      w3 = next;
    }

    // FIPS 180-4 6.2.2 step 4: add the block's result to the state.
    abef = _mm_add_epi32(abef, abef_before);
    cdgh = _mm_add_epi32(cdgh, cdgh_before);
  }

  // Back to a..h: reverse the lanes ([a b e f], [c d g h]) and take the
  // 64-bit halves apart again.
  abef = _mm_shuffle_epi32(abef, 0x1b);
  cdgh = _mm_shuffle_epi32(cdgh, 0x1b);
  store_lanes(&state[0], _mm_unpacklo_epi64(abef, cdgh));
  store_lanes(&state[4], _mm_unpackhi_epi64(abef, cdgh));
}

#undef LAB_SHA256_TARGET

constexpr Sha256Engine kX86Engine{"x86 SHA extensions", compress_x86};

}  // namespace

const Sha256Engine* x86_sha256_engine() noexcept {
  static const bool supported = cpu_has_sha_extensions();  // cpuid is slow-ish: ask once
  return supported ? &kX86Engine : nullptr;
}

#else

const Sha256Engine* x86_sha256_engine() noexcept {
  return nullptr;
}

#endif

}  // namespace lab::detail
