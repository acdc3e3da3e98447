// Lesson 05 — HMAC client authentication. The functions you write in
// hmac_auth.cpp (exercises 05.1–05.4). The reference answers are in
// solutions/05_hmac_auth/hmac_auth.cpp: look only after trying.
//
// The protocol (README.md draws it, with a worked hex example):
//   1. the server sends 32 random bytes, the nonce;
//   2. the client sends 32 bytes, HMAC-SHA256(key, nonce);
//   3. the server sends "OK" and the conversation goes on in frames
//      (lab/frame.hpp), or "NO" and closes.
#pragma once

#include <array>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <span>
#include <string_view>

#include "lab/fd.hpp"
#include "lab/sha256.hpp"
#include "lab/stop.hpp"

namespace lab::hmac_auth {

using Bytes = std::span<const std::uint8_t>;

inline constexpr std::size_t kNonceSize = 32;
inline constexpr std::size_t kMacSize = Sha256::kDigestSize;  // 32: the answer's size
using Nonce = std::array<std::uint8_t, kNonceSize>;
using Mac = Sha256::Digest;

// The server's verdict, 2 bytes each, no terminator.
inline constexpr std::string_view kAccepted = "OK";
inline constexpr std::string_view kRefused = "NO";

// Frame types after "OK" (the type byte of lab/frame.hpp's header).
inline constexpr std::uint8_t kTypeText = 1;       // comes back upper-cased, same type
inline constexpr std::uint8_t kTypeChallenge = 2;  // 05.4: 32-byte client nonce
inline constexpr std::uint8_t kTypeProof = 3;      // 05.4: the server's 32-byte answer to it

// 05.4: the server's proof is an HMAC of this label followed by the
// client's nonce. The label makes it a different message from any client
// answer (an HMAC of exactly 32 bytes), so nobody can get one by asking a
// client (the "reflection attack", README).
inline constexpr std::string_view kServerProofLabel = "lab05 server proof";

// How a challenge ended, for the server's log and for the tests.
enum class Verdict {
  accepted,      // the right 32 bytes: "OK" was sent
  wrong_answer,  // 32 bytes, not the right ones: "NO" was sent
  too_long,      // more than 32 bytes before the verdict: "NO" was sent
  timed_out,     // the whole answer did not arrive in time: "NO" was sent
  closed_early,  // the client closed before 32 bytes: nothing sent
};

inline std::string_view to_string(Verdict verdict) {
  switch (verdict) {
    case Verdict::accepted: return "accepted";
    case Verdict::wrong_answer: return "wrong answer";
    case Verdict::too_long: return "answer longer than 32 bytes";
    case Verdict::timed_out: return "no complete answer in time";
    case Verdict::closed_early: return "closed before answering";
  }
  return "?";
}

// Text as the bytes it is made of: bytes_of("abc") is {0x61, 0x62, 0x63}.
inline Bytes bytes_of(std::string_view text) {
  return {reinterpret_cast<const std::uint8_t*>(text.data()), text.size()};
}

// ---- Exercise 05.1: HMAC-SHA256 --------------------------------------------
//
// RFC 2104 with SHA-256 (block size B = 64 bytes), using lab::Sha256:
//   K0 = the key padded with zero bytes to 64 bytes; a key LONGER than 64
//        bytes is first replaced by its SHA-256 (32 bytes), then padded;
//   HMAC = SHA256( (K0 xor 0x5c...) || SHA256( (K0 xor 0x36...) || message ) )
// Any key length works, including 0. Check yourself against RFC 4231.
Mac hmac_sha256(Bytes key, Bytes message);

// ---- Exercise 05.2: the client's answer ------------------------------------
//
// The client's side of the handshake on a connected socket: read exactly
// the 32-byte nonce, send exactly the 32 bytes HMAC-SHA256(key, nonce),
// then read the 2-byte verdict. Returns true for "OK", false for "NO".
// Send nothing else. Throws lab::ProtocolError if the server closes before
// the whole nonce or the verdict arrived, or sends a verdict that is neither
// "OK" nor "NO". (lab::read_exact and lab::write_all do the looping.)
bool authenticate(const Fd& connection, Bytes key);

// ---- Exercise 05.3: the server's verification ------------------------------
//
// True if a and b have the same length and the same bytes. Its running time
// must not depend on WHERE they differ: look at every byte, whatever you
// have found, and combine the differences (OR of XORs) instead of returning
// at the first one. An early return tells an attacker, by the time it takes,
// how many leading bytes of a guess were right.
bool constant_time_equal(Bytes a, Bytes b);

// 32 bytes from getrandom(2): a fresh, unpredictable nonce for each
// connection. getrandom may return fewer bytes than asked, or fail with
// EINTR: loop. Throws std::system_error if it fails otherwise.
Nonce make_nonce();

// The server's side of the handshake: send a fresh nonce, then wait for the
// client's 32-byte answer. The WHOLE answer must arrive within `timeout` of
// the nonce being sent: a client that sends 31 bytes and stalls, or one byte
// a second, must not hold the server longer (use one deadline and
// lab::wait_readable with what is left of it, not a fresh timeout per read).
// Then:
//   - more bytes already waiting after the 32 (peek: recv with
//     MSG_PEEK | MSG_DONTWAIT) -> too_long: the client must wait for the verdict;
//   - compare with HMAC-SHA256(key, nonce) using constant_time_equal;
//   - send "OK" (accepted) or "NO" (wrong_answer, too_long, timed_out);
//     send nothing if the client closed before 32 bytes (closed_early).
// A stop request while waiting throws lab::StopRequested (wait_readable does).
Verdict challenge_client(const Fd& connection, Bytes key, std::chrono::milliseconds timeout,
                         const StopSignal& stop);

// ---- Exercise 05.4 (extension): mutual authentication -----------------------
//
// So far only the client proves it knows the key; a fake server would get
// the client's messages. After "OK", a client that wants proof sends one
// frame {kTypeChallenge, its own 32-byte nonce}; the server answers with one
// frame {kTypeProof, server_proof(key, that nonce)}.

// HMAC-SHA256(key, kServerProofLabel followed by the 32 nonce bytes).
Mac server_proof(Bytes key, const Nonce& client_nonce);

// The client's side, right after authenticate returned true: send a
// challenge frame with a fresh nonce, receive one frame, and return true
// only if it is a kTypeProof frame whose 32-byte payload equals
// server_proof(key, nonce) (compared in constant time). Returns false for a
// wrong proof; throws ProtocolError if the server closes instead or sends a
// frame of another type or size. Send nothing more either way.
bool verify_server(const Fd& connection, Bytes key);

}  // namespace lab::hmac_auth
