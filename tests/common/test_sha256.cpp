#include <doctest/doctest.h>

#include <cstdint>
#include <string>
#include <vector>

#include "lab/sha256.hpp"

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

std::string hex_of(std::string_view message) { return lab::to_hex(lab::sha256(message)); }

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

TEST_CASE("to_hex writes two lower-case digits per byte, and nothing for no bytes") {
  const std::vector<std::uint8_t> bytes = {0x00, 0x0f, 0xa0, 0xff};
  CHECK(lab::to_hex(bytes) == "000fa0ff");
  CHECK(lab::to_hex(std::span<const std::uint8_t>{}).empty());
}
