// Exercise 13 — write these functions. http.hpp says what each must do, and
// lessons/13_http/README.md walks through them. Grade with:
//   build/default/lab grade 13
#include "http.hpp"

#include "lab/error.hpp"

namespace lab::http {

namespace {
constexpr const char* kLesson = "lessons/13_http";
}  // namespace

Url parse_url(std::string_view /*url*/) {
  throw NotImplemented("13.1", "the request a client sends", kLesson);
}

std::string build_request(const RequestSpec& /*request*/) {
  throw NotImplemented("13.1", "the request a client sends", kLesson);
}

std::optional<RequestHead> read_request_head(ByteReader& /*reader*/, const Limits& /*limits*/) {
  throw NotImplemented("13.2", "the start line and the header fields", kLesson);
}

ResponseHead read_response_head(ByteReader& /*reader*/, const Limits& /*limits*/) {
  throw NotImplemented("13.2", "the start line and the header fields", kLesson);
}

Framing request_framing(const RequestHead& /*head*/) {
  throw NotImplemented("13.3", "where the body ends, and reading it", kLesson);
}

Framing response_framing(const ResponseHead& /*head*/, std::string_view /*request_method*/) {
  throw NotImplemented("13.3", "where the body ends, and reading it", kLesson);
}

std::uint64_t read_body(ByteReader& /*reader*/, const Framing& /*framing*/, std::uint64_t /*max_body*/,
                        const std::function<void(std::string_view)>& /*sink*/) {
  throw NotImplemented("13.3", "where the body ends, and reading it", kLesson);
}

}  // namespace lab::http
