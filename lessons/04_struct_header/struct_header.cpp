// Exercise 04 — write these functions. struct_header.hpp says what each must
// do, and lessons/04_struct_header/README.md walks through them. Grade with:
//   build/default/lab grade 04
#include "struct_header.hpp"

#include "lab/error.hpp"

namespace lab::struct_header {

namespace {
constexpr const char* kLesson = "lessons/04_struct_header";
}  // namespace

HeaderBytes encode_header(const Header& /*header*/) {
  throw NotImplemented("04.1", "encode and decode the header", kLesson);
}

Header decode_header(std::span<const std::uint8_t, kHeaderSize> /*bytes*/, std::uint32_t /*max_payload*/) {
  throw NotImplemented("04.1", "encode and decode the header", kLesson);
}

std::string encode_file_info(const FileInfo& /*info*/) {
  throw NotImplemented("04.1", "encode and decode the header", kLesson);
}

FileInfo decode_file_info(std::string_view /*payload*/) {
  throw NotImplemented("04.1", "encode and decode the header", kLesson);
}

void send_frame(const Fd& /*socket*/, std::uint8_t /*type*/, std::string_view /*payload*/) {
  throw NotImplemented("04.2", "send_frame and recv_frame", kLesson);
}

std::optional<Frame> recv_frame(const Fd& /*socket*/, std::uint32_t /*max_payload*/) {
  throw NotImplemented("04.2", "send_frame and recv_frame", kLesson);
}

Download download_file(const Fd& /*connection*/, std::string_view /*name*/,
                       const std::filesystem::path& /*directory*/) {
  throw NotImplemented("04.3", "the verified download", kLesson);
}

}  // namespace lab::struct_header
