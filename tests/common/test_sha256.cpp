#include <doctest/doctest.h>

#include <algorithm>
#include <cstdint>
#include <random>
#include <string>
#include <vector>

#include "lab/sha256.hpp"
#include "sha256_engines.hpp"  // common/src: the engines behind lab::Sha256

namespace {

// The FIPS 180-4 example messages (NIST "Examples with Intermediate Values",
// SHA-256) and their digests.
constexpr std::string_view kAbcDigest =
    "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad";
constexpr std::string_view kEmptyDigest =
    "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";
constexpr std::string_view kTwoBlockMessage =
    "abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq";
constexpr std::string_view kTwoBlockDigest =
    "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1";
constexpr std::string_view kFourBlockMessage =
    "abcdefghbcdefghicdefghijdefghijkefghijklfghijklmghijklmnhijklmnoijklmnopjklmnopqklmnopqrlmnopq"
    "rsmnopqrstnopqrstu";
constexpr std::string_view kFourBlockDigest =
    "cf5b16a778af8380036ce59e7b0492370b249b11e8f07a51afac45037afee9d1";
constexpr std::string_view kMillionADigest =
    "cdc76e5c9914fb9281a1c7e284d73e67f1809a48a497200e046d39ccc7112cd0";

// A 130-byte message (two full blocks and a tail) that is not all one letter,
// so a byte hashed twice or skipped changes the digest.
std::string pattern_130() {
  std::string message(130, '\0');
  for (std::size_t i = 0; i < message.size(); ++i) {
    message[i] = static_cast<char>((i * 7 + 3) & 0xff);
  }
  return message;
}
constexpr std::string_view kPattern130Digest =
    "4d5e47a2e8510a314576c238f6ff19d389d3ef3aaaca8b2e530263a5d15741da";

std::string hex_of(std::string_view message) {
  return lab::to_hex(lab::sha256(message));
}

using lab::detail::Sha256Engine;

// The engines this machine can run: the portable one always, the hardware
// one when the CPU has it. Says so when it has not, so that a green run on
// such a machine is not mistaken for a test of the fast path.
std::vector<const Sha256Engine*> engines_here() {
  std::vector<const Sha256Engine*> engines = {&lab::detail::portable_sha256_engine()};
  if (const Sha256Engine* accelerated = lab::detail::accelerated_sha256_engine()) {
    engines.push_back(accelerated);
  } else {
    MESSAGE(
        "this CPU has no SHA-256 instructions lab::Sha256 can use: testing the portable engine "
        "only");
  }
  return engines;
}

// Bytes from a fixed-seed generator: the same "random" messages on every run
// and every standard library (mt19937_64's output is defined by the standard;
// the distributions are not, so none is used).
class RepeatableRandom {
 public:
  std::uint64_t below(std::uint64_t bound) { return generator_() % bound; }
  std::string bytes(std::size_t size) {
    std::string message(size, '\0');
    for (char& byte : message) {
      byte = static_cast<char>(generator_() & 0xff);
    }
    return message;
  }

 private:
  std::mt19937_64 generator_{20240229};
};

// `message` fed to a hasher in pieces cut at up to four random points.
std::string hex_of_random_pieces(std::string_view message, RepeatableRandom& random) {
  std::vector<std::size_t> cuts = {0, message.size()};
  const std::uint64_t cut_count = random.below(5);
  for (std::uint64_t i = 0; i < cut_count; ++i) {
    cuts.push_back(static_cast<std::size_t>(random.below(message.size() + 1)));
  }
  std::sort(cuts.begin(), cuts.end());
  lab::Sha256 hasher;
  for (std::size_t i = 0; i + 1 < cuts.size(); ++i) {
    hasher.update(message.substr(cuts[i], cuts[i + 1] - cuts[i]));
  }
  return lab::to_hex(hasher.finish());
}

}  // namespace

TEST_CASE("sha256 of \"abc\" is the FIPS 180-4 one-block example") {
  CHECK(hex_of("abc") == kAbcDigest);
}

TEST_CASE("sha256 of the empty string is the known digest (padding only)") {
  CHECK(hex_of("") == kEmptyDigest);
  lab::Sha256 hasher;
  hasher.update(std::string_view{});
  CHECK(lab::to_hex(hasher.finish()) == kEmptyDigest);
}

TEST_CASE("sha256 of the 448-bit message is the FIPS 180-4 two-block example") {
  // 56 bytes: the length field no longer fits after the 0x80 byte, so the
  // padding needs a second block.
  REQUIRE(kTwoBlockMessage.size() == 56);
  CHECK(hex_of(kTwoBlockMessage) == kTwoBlockDigest);
}

TEST_CASE("sha256 of one million 'a' fed in 1000-byte chunks is the FIPS 180-4 example") {
  const std::string chunk(1000, 'a');
  lab::Sha256 hasher;
  for (int i = 0; i < 1000; ++i) {
    hasher.update(chunk);
  }
  CHECK(lab::to_hex(hasher.finish()) == kMillionADigest);
  CHECK(hex_of(std::string(1'000'000, 'a')) == kMillionADigest);
}

TEST_CASE("sha256 of messages 55, 56, 63, 64 and 65 bytes long (each padding case)") {
  // 55: 0x80 and the length just fit; 56..63: the length spills into a new
  // block; 64: a whole block, then a padding block; 65: one byte over.
  const std::vector<std::pair<std::size_t, std::string_view>> cases = {
      {55, "9f4390f8d30c2dd92ec9f095b65e2b9ae9b0a925a5258e241c9f1e910f734318"},
      {56, "b35439a4ac6f0948b6d6f9e3c6af0f5f590ce20f1bde7090ef7970686ec6738a"},
      {63, "7d3e74a05d7db15bce4ad9ec0658ea98e3f06eeecf16b4c6fff2da457ddc2f34"},
      {64, "ffe054fe7ae0cb6dc65c3af9b61d5209f439851db43d0ba5997337df154668eb"},
      {65, "635361c48bb9eab14198e76ea8ab7f1a41685d6ad62aa9146d301d4f17eb0ae0"},
  };
  for (const auto& entry : cases) {
    INFO("message: " << entry.first << " x 'a'");
    CHECK(hex_of(std::string(entry.first, 'a')) == entry.second);
  }
}

TEST_CASE("sha256 gives the same digest when the input is split at 55, 56, 63, 64 or 65 bytes") {
  const std::string message = pattern_130();
  REQUIRE(hex_of(message) == kPattern130Digest);
  const std::string_view view = message;
  for (const std::size_t split : {55U, 56U, 63U, 64U, 65U}) {
    INFO("split after " << split << " bytes");
    lab::Sha256 hasher;
    hasher.update(view.substr(0, split));
    hasher.update(view.substr(split));
    CHECK(lab::to_hex(hasher.finish()) == kPattern130Digest);
  }
  // The same splits of the two-block FIPS message (56 bytes): the second
  // part is short or empty.
  for (const std::size_t split : {55U, 56U}) {
    INFO("448-bit message split after " << split << " bytes");
    lab::Sha256 hasher;
    hasher.update(kTwoBlockMessage.substr(0, split));
    hasher.update(kTwoBlockMessage.substr(split));
    CHECK(lab::to_hex(hasher.finish()) == kTwoBlockDigest);
  }
}

TEST_CASE("sha256 fed one byte at a time, and as a byte span, matches the one-shot digest") {
  const std::string message = pattern_130();
  lab::Sha256 by_char;
  for (const char c : message) {
    by_char.update(std::string_view(&c, 1));
  }
  CHECK(lab::to_hex(by_char.finish()) == kPattern130Digest);

  std::vector<std::uint8_t> bytes(message.begin(), message.end());
  lab::Sha256 by_span;
  by_span.update(std::span<const std::uint8_t>(bytes).first(64));
  by_span.update(std::span<const std::uint8_t>(bytes).subspan(64));
  CHECK(lab::to_hex(by_span.finish()) == kPattern130Digest);
}

TEST_CASE("Sha256::finish resets the hasher, so it can hash a second message") {
  lab::Sha256 hasher;
  hasher.update("some earlier message");
  (void)hasher.finish();
  hasher.update("abc");
  CHECK(lab::to_hex(hasher.finish()) == kAbcDigest);
  CHECK(lab::to_hex(hasher.finish()) == kEmptyDigest);
}

TEST_CASE("every SHA-256 engine on this machine passes the FIPS 180-4 examples") {
  for (const Sha256Engine* engine : engines_here()) {
    INFO("engine: " << engine->name);
    const lab::detail::ScopedSha256Engine use(*engine);
    CHECK(hex_of("") == kEmptyDigest);
    CHECK(hex_of("abc") == kAbcDigest);
    CHECK(hex_of(kTwoBlockMessage) == kTwoBlockDigest);
    REQUIRE(kFourBlockMessage.size() * 8 == 896);
    CHECK(hex_of(kFourBlockMessage) == kFourBlockDigest);
    CHECK(hex_of(std::string(1'000'000, 'a')) == kMillionADigest);
    // The same million in 1000-byte pieces: most updates start and end
    // part way through a block.
    const std::string chunk(1000, 'a');
    lab::Sha256 hasher;
    for (int i = 0; i < 1000; ++i) {
      hasher.update(chunk);
    }
    CHECK(lab::to_hex(hasher.finish()) == kMillionADigest);
  }
}

TEST_CASE(
    "the accelerated engine agrees with the portable one on random messages cut at random points") {
  const std::vector<const Sha256Engine*> engines = engines_here();
  const Sha256Engine& portable = *engines.front();
  const Sha256Engine& fast = *engines.back();  // the portable one again if there is no other
  RepeatableRandom random;

  // Every length up to 300 bytes (zero to four blocks and each padding
  // case), then a few large ones where one update covers thousands of blocks.
  std::vector<std::size_t> lengths;
  for (std::size_t length = 0; length <= 300; ++length) {
    lengths.push_back(length);
  }
  for (const std::size_t length : {4096U, 65536U + 17U, (1U << 20) + 63U}) {
    lengths.push_back(length);
  }

  for (const std::size_t length : lengths) {
    const std::string message = random.bytes(length);
    std::string expected;
    {
      const lab::detail::ScopedSha256Engine use(portable);
      expected = hex_of(message);
    }
    const lab::detail::ScopedSha256Engine use(fast);
    INFO("engine: " << fast.name << ", message of " << length << " random bytes");
    CHECK(hex_of(message) == expected);
    CHECK(hex_of_random_pieces(message, random) == expected);
  }
}

TEST_CASE(
    "lab::Sha256 uses the accelerated engine when the CPU has one, and the scope restores it") {
  const Sha256Engine* accelerated = lab::detail::accelerated_sha256_engine();
  const Sha256Engine& expected =
      accelerated != nullptr ? *accelerated : lab::detail::portable_sha256_engine();
  CHECK(lab::detail::active_sha256_engine().name == expected.name);
  {
    const lab::detail::ScopedSha256Engine use(lab::detail::portable_sha256_engine());
    CHECK(lab::detail::active_sha256_engine().name == "portable");
  }
  CHECK(lab::detail::active_sha256_engine().name == expected.name);
}

TEST_CASE("to_hex writes two lower-case digits per byte, and nothing for no bytes") {
  const std::vector<std::uint8_t> bytes = {0x00, 0x0f, 0xa0, 0xff};
  CHECK(lab::to_hex(bytes) == "000fa0ff");
  CHECK(lab::to_hex(std::span<const std::uint8_t>{}).empty());
}
