#include <doctest/doctest.h>

#include <stdexcept>
#include <string>
#include <thread>

#include "lab/error.hpp"
#include "lab/frame.hpp"
#include "lab/io.hpp"
#include "lab/testing.hpp"

namespace {

std::string bytes_of(const lab::FrameHeaderBytes& header) {
  return std::string(reinterpret_cast<const char*>(header.data()), header.size());
}

lab::FrameHeaderBytes header_from(std::string_view text) {
  REQUIRE(text.size() == lab::kFrameHeaderSize);
  lab::FrameHeaderBytes bytes{};
  for (std::size_t i = 0; i < bytes.size(); ++i) {
    bytes[i] = static_cast<std::uint8_t>(text[i]);
  }
  return bytes;
}

}  // namespace

TEST_CASE("encode_frame_header writes magic, version, type and a big-endian length") {
  const auto bytes = lab::encode_frame_header({7, 0x01020304});
  CHECK(bytes_of(bytes) == std::string("LF\x01\x07\x01\x02\x03\x04", 8));
  CHECK(bytes_of(lab::encode_frame_header({0, 0})) == std::string("LF\x01\x00\x00\x00\x00\x00", 8));
  CHECK(bytes_of(lab::encode_frame_header({255, 0xffffffff})) ==
        std::string("LF\x01\xff\xff\xff\xff\xff", 8));
}

TEST_CASE("decode_frame_header reads back what encode wrote") {
  for (const std::uint32_t length : {0U, 1U, 255U, 256U, 65536U, lab::kMaxFramePayload}) {
    const lab::FrameHeader header{42, length};
    CHECK(lab::decode_frame_header(lab::encode_frame_header(header)) == header);
  }
}

TEST_CASE("decode_frame_header refuses a bad magic, a bad version and an oversize length") {
  CHECK_THROWS_WITH_AS(static_cast<void>(lab::decode_frame_header(header_from(std::string("GET / HT", 8)))),
                       doctest::Contains("bad frame magic"), lab::ProtocolError);
  CHECK_THROWS_WITH_AS(static_cast<void>(lab::decode_frame_header(header_from(std::string("LF\x02\x01\x00\x00\x00\x00", 8)))),
                       doctest::Contains("version 2"), lab::ProtocolError);
  // A 4 GiB claim is refused from the header alone.
  CHECK_THROWS_WITH_AS(static_cast<void>(lab::decode_frame_header(lab::encode_frame_header({1, 0xffffffff}))),
                       doctest::Contains("4294967295 bytes is over the limit"), lab::ProtocolError);
  CHECK_THROWS_AS(static_cast<void>(lab::decode_frame_header(lab::encode_frame_header({1, 11}), 10)),
                  lab::ProtocolError);
  CHECK(lab::decode_frame_header(lab::encode_frame_header({1, 10}), 10).length == 10);
}

TEST_CASE("send_frame and recv_frame carry frames in order, then nullopt at a clean end") {
  auto [a, b] = lab::testing::socket_pair();
  const std::string big(300'000, 'x');
  std::jthread writer([&, &a = a] {
    lab::send_frame(a, 1, "hello");
    lab::send_frame(a, 2, "");
    lab::send_frame(a, 3, big);
    a.reset();
  });
  auto first = lab::recv_frame(b);
  REQUIRE(first);
  CHECK(first->type == 1);
  CHECK(first->payload == "hello");
  auto second = lab::recv_frame(b);
  REQUIRE(second);
  CHECK(second->type == 2);
  CHECK(second->payload.empty());
  auto third = lab::recv_frame(b);
  REQUIRE(third);
  CHECK(third->type == 3);
  CHECK(third->payload == big);
  writer.join();
  CHECK_FALSE(lab::recv_frame(b).has_value());
}

TEST_CASE("recv_frame refuses a 4 GiB length without waiting for (or allocating) the payload") {
  auto [a, b] = lab::testing::socket_pair();
  lab::write_all(a, bytes_of(lab::encode_frame_header({1, 0xffffffff})));
  CHECK_THROWS_WITH_AS(lab::recv_frame(b), doctest::Contains("over the limit"), lab::ProtocolError);
}

TEST_CASE("recv_frame throws ProtocolError on a stream that ends inside the header or the payload") {
  {
    auto [a, b] = lab::testing::socket_pair();
    lab::write_all(a, std::string_view("LF\x01", 3));
    a.reset();
    CHECK_THROWS_AS(lab::recv_frame(b), lab::ProtocolError);
  }
  {
    auto [a, b] = lab::testing::socket_pair();
    lab::write_all(a, bytes_of(lab::encode_frame_header({1, 10})));
    lab::write_all(a, std::string_view("abc"));
    a.reset();
    CHECK_THROWS_AS(lab::recv_frame(b), lab::ProtocolError);
  }
  {
    auto [a, b] = lab::testing::socket_pair();
    lab::write_all(a, bytes_of(lab::encode_frame_header({1, 10})));
    a.reset();
    CHECK_THROWS_WITH_AS(lab::recv_frame(b), doctest::Contains("before its 10-byte payload"),
                         lab::ProtocolError);
  }
}

TEST_CASE("send_frame refuses a payload over the limit, sending nothing") {
  auto [a, b] = lab::testing::socket_pair();
  const std::string too_big(lab::kMaxFramePayload + 1, 'x');
  CHECK_THROWS_AS(lab::send_frame(a, 1, too_big), std::length_error);
  lab::send_frame(a, 9, "after");
  auto frame = lab::recv_frame(b);
  REQUIRE(frame);
  CHECK(frame->type == 9);
  CHECK(frame->payload == "after");
}
