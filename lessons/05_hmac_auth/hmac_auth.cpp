// Exercise 05 — write these functions. hmac_auth.hpp says what each must
// do, and lessons/05_hmac_auth/README.md walks through them. Grade with:
//   build/default/lab grade 05
#include "hmac_auth.hpp"

#include "lab/error.hpp"

namespace lab::hmac_auth {

namespace {
constexpr const char* kLesson = "lessons/05_hmac_auth";
}  // namespace

Mac hmac_sha256(Bytes /*key*/, Bytes /*message*/) {
  throw NotImplemented("05.1", "HMAC-SHA256", kLesson);
}

bool authenticate(const Fd& /*connection*/, Bytes /*key*/) {
  throw NotImplemented("05.2", "the client's answer", kLesson);
}

bool constant_time_equal(Bytes /*a*/, Bytes /*b*/) {
  throw NotImplemented("05.3", "the server's verification", kLesson);
}

Nonce make_nonce() {
  throw NotImplemented("05.3", "the server's verification", kLesson);
}

Verdict challenge_client(const Fd& /*connection*/, Bytes /*key*/, std::chrono::milliseconds /*timeout*/,
                         const StopSignal& /*stop*/) {
  throw NotImplemented("05.3", "the server's verification", kLesson);
}

Mac server_proof(Bytes /*key*/, const Nonce& /*client_nonce*/) {
  throw NotImplemented("05.4", "mutual authentication", kLesson);
}

bool verify_server(const Fd& /*connection*/, Bytes /*key*/) {
  throw NotImplemented("05.4", "mutual authentication", kLesson);
}

}  // namespace lab::hmac_auth
