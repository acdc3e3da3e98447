// Exercise 01 — write these functions. udp.hpp says what each must do, and
// lessons/01_udp/README.md walks through them. Grade with:
//   build/default/lab grade 01
#include "udp.hpp"

#include "lab/error.hpp"

namespace lab::udp {

namespace {
constexpr const char* kLesson = "lessons/01_udp";
}  // namespace

SocketAddress parse_address(std::string_view /*text*/) {
  throw NotImplemented("01.1", "socket addresses from text and back", kLesson);
}

std::string format_address(const SocketAddress& /*address*/) {
  throw NotImplemented("01.1", "socket addresses from text and back", kLesson);
}

std::string uppercase(std::string_view /*payload*/) {
  throw NotImplemented("01.2", "the uppercase reply", kLesson);
}

Datagram serve_one(const Fd& /*socket*/) {
  throw NotImplemented("01.2", "the uppercase reply", kLesson);
}

std::optional<std::string> request(const Fd& /*socket*/, const SocketAddress& /*server*/,
                                   std::string_view /*payload*/, const RetryPolicy& /*policy*/) {
  throw NotImplemented("01.3", "request with timeout and retry", kLesson);
}

}  // namespace lab::udp
