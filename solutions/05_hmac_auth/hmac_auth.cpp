// Reference solution of exercise 05 (lessons/05_hmac_auth/hmac_auth.hpp).
#include "hmac_auth.hpp"

#include <sys/random.h>
#include <sys/socket.h>

#include <algorithm>
#include <cerrno>
#include <string>
#include <vector>

#include "lab/error.hpp"
#include "lab/frame.hpp"
#include "lab/io.hpp"
#include "lab/text.hpp"

namespace lab::hmac_auth {

namespace {

constexpr std::size_t kBlockSize = Sha256::kBlockSize;  // B in RFC 2104

std::string_view chars_of(Bytes bytes) {
  return {reinterpret_cast<const char*>(bytes.data()), bytes.size()};
}

// The verdict "NO" to a client we are about to drop. It may already be gone
// (EPIPE, ECONNRESET): that changes nothing, so a failure is not an error.
void refuse_quietly(const Fd& connection) {
  try {
    write_all(connection, kRefused);
  } catch (const std::system_error&) {
  }
}

}  // namespace

Mac hmac_sha256(Bytes key, Bytes message) {
  // K0: the key, or its digest if longer than a block, padded with zeros.
  std::array<std::uint8_t, kBlockSize> padded_key{};
  if (key.size() > kBlockSize) {
    Sha256 hasher;
    hasher.update(key);
    const Mac digest = hasher.finish();
    std::copy(digest.begin(), digest.end(), padded_key.begin());
  } else {
    std::copy(key.begin(), key.end(), padded_key.begin());
  }

  std::array<std::uint8_t, kBlockSize> inner_pad{};
  std::array<std::uint8_t, kBlockSize> outer_pad{};
  for (std::size_t i = 0; i < kBlockSize; ++i) {
    inner_pad[i] = static_cast<std::uint8_t>(padded_key[i] ^ 0x36);
    outer_pad[i] = static_cast<std::uint8_t>(padded_key[i] ^ 0x5c);
  }

  // The message goes into the inner hash only. The outer hash over the
  // inner digest is what defeats length extension: an attacker who extends
  // the inner hash still cannot compute the outer one without the key.
  Sha256 inner;
  inner.update(inner_pad);
  inner.update(message);
  const Mac inner_digest = inner.finish();

  Sha256 outer;
  outer.update(outer_pad);
  outer.update(inner_digest);
  return outer.finish();
}

bool authenticate(const Fd& connection, Bytes key) {
  Nonce nonce{};
  // read_exact throws ProtocolError itself if the stream ends part way.
  if (!read_exact(connection, std::span<std::uint8_t>(nonce))) {
    throw ProtocolError("the server closed the connection before sending its nonce");
  }
  const Mac answer = hmac_sha256(key, nonce);
  write_all(connection, answer);

  const auto verdict = read_exact(connection, kAccepted.size());
  if (!verdict) {
    throw ProtocolError("the server closed the connection without a verdict");
  }
  if (*verdict == kAccepted) {
    return true;
  }
  if (*verdict == kRefused) {
    return false;
  }
  throw ProtocolError("the server's verdict was " + preview(*verdict) + ", neither \"OK\" nor \"NO\"");
}

bool constant_time_equal(Bytes a, Bytes b) {
  // The lengths are public (an answer is always 32 bytes), so returning
  // early on a length mismatch gives nothing away.
  if (a.size() != b.size()) {
    return false;
  }
  // No branch depends on the bytes: every byte is visited, and the
  // differences are ORed together. volatile keeps the compiler from
  // turning the loop back into an early exit.
  volatile std::uint8_t difference = 0;
  for (std::size_t i = 0; i < a.size(); ++i) {
    difference = static_cast<std::uint8_t>(difference | (a[i] ^ b[i]));
  }
  return difference == 0;
}

Nonce make_nonce() {
  Nonce nonce{};
  std::size_t filled = 0;
  while (filled < nonce.size()) {
    // getrandom(2): the kernel's CSPRNG, no file to open. Flags 0 blocks
    // only until the pool is initialised at boot, never afterwards.
    const ssize_t got = ::getrandom(nonce.data() + filled, nonce.size() - filled, 0);
    if (got < 0) {
      if (errno == EINTR) {
        continue;
      }
      throw os_error("getrandom");
    }
    filled += static_cast<std::size_t>(got);
  }
  return nonce;
}

Verdict challenge_client(const Fd& connection, Bytes key, std::chrono::milliseconds timeout,
                         const StopSignal& stop) {
  const Nonce nonce = make_nonce();
  write_all(connection, nonce);

  // One deadline for the whole answer: a per-read timeout would let a
  // client that sends one byte at a time hold the server for ever.
  const auto deadline = Clock::now() + timeout;
  Mac answer{};
  std::size_t received = 0;
  while (received < answer.size()) {
    const auto left = std::chrono::ceil<std::chrono::milliseconds>(deadline - Clock::now());
    if (left.count() <= 0 || !wait_readable(connection.get(), stop, left)) {
      refuse_quietly(connection);
      return Verdict::timed_out;
    }
    const auto chunk = read_some(connection, answer.size() - received);
    if (!chunk) {
      return Verdict::closed_early;
    }
    std::copy(chunk->begin(), chunk->end(), answer.begin() + static_cast<std::ptrdiff_t>(received));
    received += chunk->size();
  }

  // The client must wait for the verdict before sending anything else. A
  // byte already waiting means it did not: peek without taking it, and
  // without waiting for one.
  std::uint8_t extra = 0;
  const ssize_t peeked = ::recv(connection.get(), &extra, 1, MSG_PEEK | MSG_DONTWAIT);
  if (peeked > 0) {
    refuse_quietly(connection);
    return Verdict::too_long;
  }
  if (peeked < 0 && errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR) {
    throw os_error("recv");
  }

  if (!constant_time_equal(answer, hmac_sha256(key, nonce))) {
    refuse_quietly(connection);
    return Verdict::wrong_answer;
  }
  write_all(connection, kAccepted);
  return Verdict::accepted;
}

Mac server_proof(Bytes key, const Nonce& client_nonce) {
  std::vector<std::uint8_t> message(kServerProofLabel.begin(), kServerProofLabel.end());
  message.insert(message.end(), client_nonce.begin(), client_nonce.end());
  return hmac_sha256(key, message);
}

bool verify_server(const Fd& connection, Bytes key) {
  const Nonce nonce = make_nonce();
  send_frame(connection, kTypeChallenge, chars_of(nonce));
  // A proof is 32 bytes: refuse a longer claim before reading it.
  const auto frame = recv_frame(connection, kMacSize);
  if (!frame) {
    throw ProtocolError("the server closed the connection instead of proving it knows the key");
  }
  if (frame->type != kTypeProof || frame->payload.size() != kMacSize) {
    throw ProtocolError("expected a proof frame (type 3, 32 bytes), got type " +
                        std::to_string(frame->type) + " with " +
                        std::to_string(frame->payload.size()) + " bytes");
  }
  return constant_time_equal(bytes_of(frame->payload), server_proof(key, nonce));
}

}  // namespace lab::hmac_auth
