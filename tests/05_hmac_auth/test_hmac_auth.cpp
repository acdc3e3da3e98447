// Graded tests of lesson 05 (lessons/05_hmac_auth/hmac_auth.hpp), and
// end-to-end tests of its server and client. Built twice: against the
// student's hmac_auth.cpp (label "grade") and against solutions/05_hmac_auth
// (label "reference").
#include <doctest/doctest.h>
#include <fcntl.h>
#include <signal.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <sys/random.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <bit>
#include <cerrno>
#include <cstring>
#include <filesystem>
#include <future>
#include <set>
#include <system_error>
#include <thread>
#include <vector>

#include "hmac_auth.hpp"
#include "key.hpp"
#include "lab/frame.hpp"
#include "lab/io.hpp"
#include "lab/socket.hpp"
#include "lab/testing.hpp"

using namespace std::chrono_literals;
using lab::Endpoint;
using lab::Fd;
namespace auth = lab::hmac_auth;
using auth::Mac;
using auth::Nonce;
using auth::Verdict;

namespace {

const std::string kServer = std::string(LAB_PROGRAM_DIR) + "/server";
const std::string kClient = std::string(LAB_PROGRAM_DIR) + "/client";

// The README's worked example (also checked with Python's hmac module and
// `openssl dgst -sha256 -hmac` when it was written).
constexpr std::string_view kExampleKey = "my shared secret";
constexpr std::string_view kExampleAnswer =
    "cb4eeac8a0998f863a5944da563a1da450f3c1909cfc8ac20b2f3e23ba8485e0";
Nonce example_nonce() {
  Nonce nonce{};
  for (std::size_t i = 0; i < nonce.size(); ++i) {
    nonce[i] = static_cast<std::uint8_t>(i);  // 00 01 02 ... 1f
  }
  return nonce;
}

std::vector<std::uint8_t> from_hex(std::string_view hex) {
  REQUIRE(hex.size() % 2 == 0);
  const auto digit = [](char c) {
    return c <= '9' ? c - '0' : c - 'a' + 10;
  };
  std::vector<std::uint8_t> bytes;
  for (std::size_t i = 0; i < hex.size(); i += 2) {
    bytes.push_back(static_cast<std::uint8_t>(digit(hex[i]) * 16 + digit(hex[i + 1])));
  }
  return bytes;
}

std::vector<std::uint8_t> repeated(std::uint8_t byte, std::size_t count) {
  return std::vector<std::uint8_t>(count, byte);
}

std::string hex(auth::Bytes bytes) { return lab::to_hex(bytes); }

std::string_view chars_of(auth::Bytes bytes) {
  return {reinterpret_cast<const char*>(bytes.data()), bytes.size()};
}

// The first `count` bytes, to send a truncated answer.
std::string first_bytes(auth::Bytes bytes, std::size_t count) {
  return std::string(chars_of(bytes.first(count)));
}

// The tests' own HMAC-SHA256 (RFC 2104), so that checking the student's
// server never relies on the student's hmac_sha256.
Mac reference_hmac(auth::Bytes key, auth::Bytes message) {
  std::array<std::uint8_t, 64> block{};
  if (key.size() > block.size()) {
    lab::Sha256 long_key;
    long_key.update(key);
    const Mac digest = long_key.finish();
    std::copy(digest.begin(), digest.end(), block.begin());
  } else {
    std::copy(key.begin(), key.end(), block.begin());
  }
  lab::Sha256 inner;
  lab::Sha256 outer;
  for (auto& byte : block) {
    byte ^= 0x36;
  }
  inner.update(block);
  inner.update(message);
  const Mac inner_digest = inner.finish();
  for (auto& byte : block) {
    byte ^= 0x36 ^ 0x5c;
  }
  outer.update(block);
  outer.update(inner_digest);
  return outer.finish();
}

Mac reference_answer(std::string_view key, const Nonce& nonce) {
  return reference_hmac(auth::bytes_of(key), nonce);
}

// A connected TCP pair over loopback: {client side, server side}.
std::pair<Fd, Fd> tcp_pair() {
  const Fd listener = lab::tcp_listen(Endpoint{"127.0.0.1", 0});
  Fd client = lab::tcp_connect(Endpoint{"127.0.0.1", lab::SocketAddress::local_of(listener.get()).port()});
  lab::StopSignal never;
  auto accepted = lab::accept_client(listener, never);
  REQUIRE(accepted);
  return {std::move(client), std::move(accepted->socket)};
}

void reset_connection(Fd& socket) {
  const linger abort_on_close{1, 0};  // close sends RST, not FIN
  REQUIRE(::setsockopt(socket.get(), SOL_SOCKET, SO_LINGER, &abort_on_close, sizeof abort_on_close) == 0);
  socket.reset();
}

// Everything until the peer closes (at most 4 KiB, at most 3 s). A server
// that closes with bytes of ours still unread makes the kernel send a reset
// (RST) instead of a normal close: the bytes sent before it still arrive,
// and the reset counts as the end here.
std::string read_rest(const Fd& socket) {
  lab::set_receive_timeout(socket, 3000ms);
  std::string data;
  while (data.size() < 4096) {
    std::optional<std::string> chunk;
    try {
      chunk = lab::read_some(socket, 4096 - data.size());
    } catch (const std::system_error& error) {
      if (error.code() == std::errc::connection_reset) {
        break;
      }
      throw;
    }
    if (!chunk) {
      break;
    }
    data += *chunk;
  }
  return data;
}

using lab::testing::outcome;

// The student's challenge_client on its own thread, on one end of a
// loopback TCP connection; the test plays the client on the other end.
class Challenge {
 public:
  explicit Challenge(std::string_view key, std::chrono::milliseconds timeout = 3000ms) : key_(key) {
    auto [client, server] = tcp_pair();
    client_ = std::move(client);
    server_ = std::move(server);
    lab::set_receive_timeout(client_, 3000ms);
    result_ = std::async(std::launch::async, [this, timeout] {
      try {
        return auth::challenge_client(server_, auth::bytes_of(key_), timeout, stop_);
      } catch (...) {
        ::shutdown(server_.get(), SHUT_RDWR);  // the test's reads end at once
        throw;
      }
    });
  }
  ~Challenge() {
    if (result_.valid() && result_.wait_for(0s) != std::future_status::ready) {
      stop_.request();
      ::shutdown(server_.get(), SHUT_RDWR);
      result_.wait();
    }
  }
  Challenge(const Challenge&) = delete;
  Challenge& operator=(const Challenge&) = delete;

  [[nodiscard]] Fd& client() { return client_; }
  std::string describe() { return outcome(result_); }
  void request_stop() { stop_.request(); }

  // The 32-byte nonce the server must send first.
  Nonce read_nonce() {
    Nonce nonce{};
    bool complete = false;
    try {
      complete = lab::read_exact(client_, std::span<std::uint8_t>(nonce));
    } catch (const std::exception& error) {
      FAIL("expected a 32-byte nonce, but the read failed: ", std::string(error.what()), "; ", describe());
    }
    REQUIRE_MESSAGE(complete, "expected a 32-byte nonce, but the connection ended; ", describe());
    return nonce;
  }

  // What challenge_client returned (rethrows what it threw); fails after 5 s.
  Verdict verdict() {
    REQUIRE_MESSAGE(result_.wait_for(5s) == std::future_status::ready,
                    "challenge_client did not return within 5 s");
    return result_.get();
  }

  // After the verdict: close the server's end, as the server does, and
  // return what the server sent after the nonce.
  std::string sent_after_nonce() {
    server_.reset();
    return read_rest(client_);
  }

 private:
  std::string key_;
  Fd client_;
  Fd server_;
  lab::StopSignal stop_;
  std::future<Verdict> result_;
};

// A temporary directory, removed with everything in it.
class TempDir : public lab::testing::TempDir {
 public:
  TempDir() : lab::testing::TempDir("lab05") {}
  // Writes `content` to a file named `name` with permissions `mode`.
  std::string file(const std::string& name, std::string_view content, mode_t mode = 0600) {
    const std::string file_path = (path() / name).string();
    const Fd file{::open(file_path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, mode)};
    REQUIRE(file);
    lab::write_all(file, content);
    REQUIRE(::fchmod(file.get(), mode) == 0);  // the umask may have removed bits
    return file_path;
  }
};

constexpr std::string_view kKey = "the lab's test key \x01\x02\xff";
constexpr std::string_view kWrongKey = "the lab's test key \x01\x02\xfe";

std::vector<std::string> server_args(const std::string& key_file,
                                     std::chrono::milliseconds answer_timeout = 3000ms) {
  return {"--key-file", key_file, "--answer-ms", std::to_string(answer_timeout.count())};
}

lab::testing::ProgramResult run_client(const lab::testing::ServerProcess& server,
                                       std::vector<std::string> extra, const std::string& input = "",
                                       const lab::SpawnOptions& options = {}) {
  std::vector<std::string> argv{kClient, "--port", std::to_string(server.port())};
  argv.insert(argv.end(), extra.begin(), extra.end());
  return lab::testing::run(argv, input, 5s, options);
}

std::size_t count_lines(const std::string& text) {
  return static_cast<std::size_t>(std::count(text.begin(), text.end(), '\n'));
}

bool contains(const std::string& text, std::string_view part) {
  return text.find(part) != std::string::npos;
}

}  // namespace

// ---- 05.1 ------------------------------------------------------------------

TEST_CASE("05.1 hmac_sha256 matches RFC 4231 test cases 1 to 4") {
  struct Case {
    std::vector<std::uint8_t> key;
    std::vector<std::uint8_t> data;
    std::string_view expected;
  };
  const std::string_view jefe_data = "what do ya want for nothing?";
  std::vector<std::uint8_t> key4;
  for (std::uint8_t i = 1; i <= 25; ++i) {
    key4.push_back(i);
  }
  const std::vector<Case> cases = {
      {repeated(0x0b, 20), from_hex("4869205468657265"),  // "Hi There"
       "b0344c61d8db38535ca8afceaf0bf12b881dc200c9833da726e9376c2e32cff7"},
      {from_hex("4a656665"),  // "Jefe"
       std::vector<std::uint8_t>(jefe_data.begin(), jefe_data.end()),
       "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"},
      {repeated(0xaa, 20), repeated(0xdd, 50),
       "773ea91e36800e46854db8ebd09181a72959098b3ef8c122d9635514ced565fe"},
      {key4, repeated(0xcd, 50), "82558a389a443c0ea4cc819899f2083a85f0faa3e578f8077a2e3ff46729665b"},
  };
  for (std::size_t i = 0; i < cases.size(); ++i) {
    INFO("RFC 4231 test case ", i + 1);
    CHECK(hex(auth::hmac_sha256(cases[i].key, cases[i].data)) == cases[i].expected);
  }
}

TEST_CASE("05.1 hmac_sha256 matches RFC 4231 test case 5 (output truncated to 128 bits)") {
  const Mac mac = auth::hmac_sha256(repeated(0x0c, 20), auth::bytes_of("Test With Truncation"));
  CHECK(hex(std::span(mac).first(16)) == "a3b6167473100ee06e0c796c2955552b");
}

TEST_CASE("05.1 hmac_sha256 matches RFC 4231 test cases 6 and 7 (a 131-byte key is hashed first)") {
  const auto key = repeated(0xaa, 131);
  CHECK(hex(auth::hmac_sha256(key, auth::bytes_of("Test Using Larger Than Block-Size Key - Hash Key First"))) ==
        "60e431591ee0b67f0d8a26aacbf5b77f8e0bc6213728c5140546040f0ee37f54");
  CHECK(hex(auth::hmac_sha256(
            key, auth::bytes_of("This is a test using a larger than block-size key and a larger than "
                                "block-size data. The key needs to be hashed before being used by the "
                                "HMAC algorithm."))) ==
        "9b09ffa71b942fcb27635fbcd5b0e944bfdc63644f0713938a7f51535c3a35e2");
}

TEST_CASE("05.1 hmac_sha256 uses a 64-byte key as it is and hashes a 65-byte key") {
  std::vector<std::uint8_t> key(65);
  for (std::size_t i = 0; i < key.size(); ++i) {
    key[i] = static_cast<std::uint8_t>(i);
  }
  const auto message = auth::bytes_of("block-size key");
  CHECK_MESSAGE(hex(auth::hmac_sha256(std::span(key).first(64), message)) ==
                    "1dad230598e011a4e4eabc6c8da8f55ef9a66a8881d1e16e23ea116ae28231ec",
                "a key of exactly 64 bytes (one block) is used as it is, not hashed");
  CHECK_MESSAGE(hex(auth::hmac_sha256(key, message)) ==
                    "d0b754c1861695b26bca3bd3a8581ef73f46ba28ada969cf73dbdb39d991eb2d",
                "a key of 65 bytes is longer than a block: it is replaced by its SHA-256");
}

TEST_CASE("05.1 hmac_sha256 of an empty key and message, and the README's worked example") {
  CHECK(hex(auth::hmac_sha256({}, {})) == "b613679a0814d9ec772f95d778c35fc5ff1697c493715653c6c712144292c5ad");
  const Nonce nonce = example_nonce();
  CHECK(hex(auth::hmac_sha256(auth::bytes_of(kExampleKey), nonce)) == kExampleAnswer);
}

TEST_CASE("05.1 hmac_sha256 is not the Python course's sha256(key + message)") {
  const Mac mac = auth::hmac_sha256(auth::bytes_of("Jefe"), auth::bytes_of("what do ya want for nothing?"));
  const std::string naive = lab::to_hex(lab::sha256("Jefewhat do ya want for nothing?"));
  CHECK(hex(mac) != naive);
  CHECK(hex(mac) == "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843");
}

// ---- 05.2 ------------------------------------------------------------------

TEST_CASE("05.2 authenticate sends exactly HMAC-SHA256(key, nonce) and returns true on OK") {
  auto [client, server] = lab::testing::socket_pair();
  const Nonce nonce = example_nonce();
  // The whole server side fits in the socket buffer: nonce, then verdict.
  lab::write_all(server, nonce);
  lab::write_all(server, auth::kAccepted);
  const bool accepted = auth::authenticate(client, auth::bytes_of(kExampleKey));
  CHECK(accepted);
  ::shutdown(client.get(), SHUT_WR);
  const std::string sent = read_rest(server);
  CHECK_MESSAGE(sent.size() == 32, "the answer is exactly 32 raw bytes (not hex, no newline); got ",
                sent.size());
  CHECK(lab::to_hex(std::span(reinterpret_cast<const std::uint8_t*>(sent.data()), sent.size())) ==
        kExampleAnswer);
}

TEST_CASE("05.2 authenticate returns false when the server says NO") {
  auto [client, server] = lab::testing::socket_pair();
  lab::write_all(server, example_nonce());
  lab::write_all(server, auth::kRefused);
  const bool accepted = auth::authenticate(client, auth::bytes_of("not the key"));
  CHECK_FALSE(accepted);
  ::shutdown(client.get(), SHUT_WR);
  const std::string sent = read_rest(server);
  CHECK(sent.size() == 32);
}

TEST_CASE("05.2 authenticate reads a nonce that arrives one byte at a time") {
  auto [client, server] = lab::testing::socket_pair();
  const Nonce nonce = example_nonce();
  auto trickle = std::async(std::launch::async, [&server = server, nonce] {
    for (const std::uint8_t byte : nonce) {
      lab::write_all(server, std::span(&byte, 1));
      std::this_thread::sleep_for(2ms);  // separate arrivals: each recv sees one byte
    }
    lab::write_all(server, auth::kAccepted);
  });
  bool accepted = false;
  try {
    accepted = auth::authenticate(client, auth::bytes_of(kExampleKey));
  } catch (...) {
    trickle.wait();
    throw;
  }
  trickle.get();
  CHECK(accepted);
  ::shutdown(client.get(), SHUT_WR);
  const std::string sent = read_rest(server);
  CHECK(lab::to_hex(auth::bytes_of(sent)) == kExampleAnswer);
}

TEST_CASE("05.2 authenticate throws ProtocolError when the server closes during the nonce") {
  for (const std::size_t sent : {0U, 10U, 31U}) {
    INFO("the server sent ", sent, " of 32 nonce bytes, then closed");
    auto [client, server] = lab::testing::socket_pair();
    const Nonce nonce = example_nonce();
    lab::write_all(server, std::span(nonce).first(sent));
    server.reset();
    CHECK_THROWS_AS((void)auth::authenticate(client, auth::bytes_of(kExampleKey)), lab::ProtocolError);
  }
}

TEST_CASE("05.2 authenticate throws ProtocolError for a verdict that is not OK or NO, or none") {
  for (const std::string verdict : {"ok", "OX", "N", ""}) {
    INFO("the server's verdict: \"", verdict, "\", then close");
    auto [client, server] = lab::testing::socket_pair();
    lab::write_all(server, example_nonce());
    lab::write_all(server, verdict);
    ::shutdown(server.get(), SHUT_WR);  // the client can still send its answer
    CHECK_THROWS_AS((void)auth::authenticate(client, auth::bytes_of(kExampleKey)), lab::ProtocolError);
  }
}

TEST_CASE("05.2 the key file's exact bytes are the key, a trailing newline included") {
  TempDir dir;
  const std::string path = dir.file("key", "secret\n");
  const auth::Key key = auth::load_key(path);
  auto [client, server] = lab::testing::socket_pair();
  lab::write_all(server, example_nonce());
  lab::write_all(server, auth::kAccepted);
  const bool accepted = auth::authenticate(client, key.bytes());
  CHECK(accepted);
  ::shutdown(client.get(), SHUT_WR);
  CHECK(lab::to_hex(auth::bytes_of(read_rest(server))) ==
        "b646f7f611c549b8e0933dd2b3e4c9eeb4a94b5b05b14399f9998e2c9e9f1ebf");
}


// ---- 05.3: what the tests put between make_nonce and the kernel ------------

namespace {

// getrandom as make_nonce sees it. Defined here, it takes the place of the C
// library's for this test program only (the linker prefers a definition in
// the program). Normally it asks the kernel; while `scripted` is set it first
// fails with EINTR, then hands out at most 5 bytes per call, numbered 1, 2,
// 3, ... so the test can tell where each byte landed.
std::atomic<bool> scripted_getrandom{false};
std::atomic<int> scripted_calls{0};
std::atomic<int> scripted_next_byte{1};

}  // namespace

extern "C" ssize_t getrandom(void* buffer, std::size_t length, unsigned int flags) {
  if (!scripted_getrandom.load()) {
    return ::syscall(SYS_getrandom, buffer, length, flags);
  }
  if (scripted_calls.fetch_add(1) == 0) {
    errno = EINTR;
    return -1;
  }
  const std::size_t given = std::min<std::size_t>(length, 5);
  auto* bytes = static_cast<std::uint8_t*>(buffer);
  for (std::size_t i = 0; i < given; ++i) {
    bytes[i] = static_cast<std::uint8_t>(scripted_next_byte.fetch_add(1));
  }
  return static_cast<ssize_t>(given);
}

namespace {

// Which bytes does constant_time_equal look at? One input lies across two
// memory pages, the far one without any access rights: touching it faults,
// the handler notes it and opens the page, and the read goes on. A function
// that stops at the first difference never touches the far page.
std::atomic<char*> guarded_page{nullptr};
std::atomic<bool> guarded_page_touched{false};
std::size_t guarded_page_size = 0;

void on_guarded_page_fault(int, siginfo_t* info, void*) {
  char* const page = guarded_page.load();
  char* const address = static_cast<char*>(info->si_addr);
  if (page != nullptr && address >= page && address < page + guarded_page_size) {
    guarded_page_touched.store(true);
    ::mprotect(page, guarded_page_size, PROT_READ);  // the faulting read is retried and succeeds
    return;
  }
  ::signal(SIGSEGV, SIG_DFL);  // another fault: a real crash, reported as one
}

// Calls constant_time_equal(a, b) with b in two pages of which `far` (0 or
// 1) has no access; returns whether it read that page. `a` is 2 pages long.
bool reads_guarded_half(const std::vector<std::uint8_t>& a, int far) {
  const auto page = static_cast<std::size_t>(::sysconf(_SC_PAGESIZE));
  void* const mapped = ::mmap(nullptr, 2 * page, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  REQUIRE(mapped != MAP_FAILED);
  auto* const b = static_cast<std::uint8_t*>(mapped);
  std::copy(a.begin(), a.end(), b);
  // The difference is in the half that stays readable, at its far end from
  // the guarded half: an early exit stops there.
  if (far == 1) {
    b[0] ^= 0x01;
  } else {
    b[2 * page - 1] ^= 0x01;
  }
  char* const guarded = static_cast<char*>(mapped) + static_cast<std::size_t>(far) * page;
  guarded_page_size = page;
  guarded_page_touched.store(false);
  guarded_page.store(guarded);
  REQUIRE(::mprotect(guarded, page, PROT_NONE) == 0);
  struct sigaction handler{};
  handler.sa_sigaction = on_guarded_page_fault;
  handler.sa_flags = SA_SIGINFO;
  sigemptyset(&handler.sa_mask);
  struct sigaction previous{};
  REQUIRE(::sigaction(SIGSEGV, &handler, &previous) == 0);
  bool equal = true;
  try {
    equal = auth::constant_time_equal(a, std::span<const std::uint8_t>(b, 2 * page));
  } catch (...) {
    ::sigaction(SIGSEGV, &previous, nullptr);
    guarded_page.store(nullptr);
    ::munmap(mapped, 2 * page);
    throw;
  }
  ::sigaction(SIGSEGV, &previous, nullptr);
  guarded_page.store(nullptr);
  ::munmap(mapped, 2 * page);
  CHECK_FALSE(equal);
  return guarded_page_touched.load();
}

}  // namespace

// ---- 05.3 ------------------------------------------------------------------

TEST_CASE("05.3 constant_time_equal: equal is true, and the first or the last byte differing is false") {
  const Mac a = reference_answer("key", example_nonce());
  Mac first = a;
  first[0] ^= 0x01;
  Mac last = a;
  last[31] ^= 0x80;
  CHECK(auth::constant_time_equal(a, a));
  CHECK(auth::constant_time_equal(a, Mac(a)));
  CHECK_FALSE(auth::constant_time_equal(a, first));
  CHECK_FALSE(auth::constant_time_equal(first, a));
  CHECK_FALSE(auth::constant_time_equal(a, last));
  CHECK_FALSE(auth::constant_time_equal(last, a));
}

TEST_CASE("05.3 constant_time_equal: inputs of different lengths are never equal") {
  const Mac a = reference_answer("key", example_nonce());
  const auto all = std::span<const std::uint8_t>(a);
  CHECK_FALSE(auth::constant_time_equal(all, all.first(31)));
  CHECK_FALSE(auth::constant_time_equal(all.first(31), all));
  CHECK_FALSE(auth::constant_time_equal(all, {}));
  CHECK_FALSE(auth::constant_time_equal({}, all.first(1)));
  CHECK(auth::constant_time_equal({}, {}));
}

TEST_CASE("05.3 constant_time_equal notices one flipped bit in any byte") {
  const Mac a = reference_answer("key", example_nonce());
  for (std::size_t i = 0; i < a.size(); ++i) {
    for (int bit = 0; bit < 8; ++bit) {
      Mac b = a;
      b[i] = static_cast<std::uint8_t>(b[i] ^ (1U << bit));
      if (auth::constant_time_equal(a, b)) {
        FAIL("byte ", i, " bit ", bit, " differs, but constant_time_equal said equal");
      }
    }
  }
}

TEST_CASE("05.3 constant_time_equal reads every byte, even after a difference at either end") {
  const auto page = static_cast<std::size_t>(::sysconf(_SC_PAGESIZE));
  std::vector<std::uint8_t> a(2 * page);
  for (std::size_t i = 0; i < a.size(); ++i) {
    a[i] = static_cast<std::uint8_t>(i * 7 + 3);
  }
  // The first byte differs: a loop from the front that returns there, or
  // memcmp, never reads the second page.
  CHECK_MESSAGE(reads_guarded_half(a, 1),
                "the first byte differs and the rest was never read: the time tells where a guess went wrong");
  // The last byte differs: the same, for a loop from the back.
  CHECK_MESSAGE(reads_guarded_half(a, 0),
                "the last byte differs and the rest was never read: the time tells where a guess went wrong");
}

TEST_CASE("05.3 make_nonce retries EINTR and loops until getrandom has given all 32 bytes") {
  scripted_calls.store(0);
  scripted_next_byte.store(1);
  scripted_getrandom.store(true);
  Nonce nonce{};
  std::string failure;
  try {
    nonce = auth::make_nonce();
  } catch (const std::exception& error) {
    failure = error.what();
  }
  scripted_getrandom.store(false);
  REQUIRE_MESSAGE(failure.empty(), "getrandom failed once with EINTR and make_nonce threw: ", failure);
  Nonce expected{};
  for (std::size_t i = 0; i < expected.size(); ++i) {
    expected[i] = static_cast<std::uint8_t>(i + 1);
  }
  CHECK_MESSAGE(nonce == expected,
                "getrandom gave 5 bytes per call (numbered 1, 2, 3, ...); the nonce should hold bytes 1 to 32 in "
                "order, got ", hex(nonce));
  CHECK(scripted_calls.load() == 8);  // EINTR, then 7 calls of up to 5 bytes
}

TEST_CASE("05.3 make_nonce gives 32 random bytes, different every time") {
  std::set<Nonce> seen;
  std::size_t ones = 0;
  const std::size_t count = 1000;
  for (std::size_t i = 0; i < count; ++i) {
    const Nonce nonce = auth::make_nonce();
    for (const std::uint8_t byte : nonce) {
      ones += static_cast<std::size_t>(std::popcount(byte));
    }
    seen.insert(nonce);
  }
  CHECK_MESSAGE(seen.size() == count, "a nonce repeated: an old answer would be accepted again");
  // Random bits are ones half of the time: 128000 of 256000, give or take
  // a few hundred. A counter, a clock or mostly-zero bytes are far off.
  CHECK(ones > 120'000);
  CHECK(ones < 136'000);
}

TEST_CASE("05.3 challenge_client accepts the right answer, says OK and nothing else") {
  Challenge server(kKey);
  const Nonce nonce = server.read_nonce();
  lab::write_all(server.client(), reference_answer(kKey, nonce));
  CHECK(server.verdict() == Verdict::accepted);
  CHECK(server.sent_after_nonce() == "OK");
}

TEST_CASE("05.3 challenge_client refuses an answer made with the wrong key: NO") {
  Challenge server(kKey);
  const Nonce nonce = server.read_nonce();
  lab::write_all(server.client(), reference_answer(kWrongKey, nonce));
  CHECK(server.verdict() == Verdict::wrong_answer);
  CHECK(server.sent_after_nonce() == "NO");
}

TEST_CASE("05.3 challenge_client refuses an old answer replayed on a new connection") {
  const int fds_before = lab::testing::open_fd_count();
  Mac recorded{};
  Nonce first_nonce{};
  {
    Challenge first(kKey);
    first_nonce = first.read_nonce();
    recorded = reference_answer(kKey, first_nonce);
    lab::write_all(first.client(), recorded);
    REQUIRE(first.verdict() == Verdict::accepted);
  }
  {
    Challenge second(kKey);
    const Nonce second_nonce = second.read_nonce();
    CHECK_MESSAGE(second_nonce != first_nonce, "the same nonce twice: a recorded answer would work again");
    lab::write_all(second.client(), recorded);
    CHECK(second.verdict() == Verdict::wrong_answer);
    CHECK(second.sent_after_nonce() == "NO");
  }
  CHECK_MESSAGE(lab::testing::open_fd_count() == fds_before, "challenge_client leaked a descriptor");
}

TEST_CASE("05.3 challenge_client: a truncated answer then close is closed_early, with no reply") {
  Challenge server(kKey);
  const Nonce nonce = server.read_nonce();
  const Mac answer = reference_answer(kKey, nonce);
  lab::write_all(server.client(), std::span(answer).first(20));
  ::shutdown(server.client().get(), SHUT_WR);
  CHECK(server.verdict() == Verdict::closed_early);
  CHECK(server.sent_after_nonce().empty());
}

TEST_CASE("05.3 challenge_client refuses an over-long answer even if its first 32 bytes are right") {
  Challenge server(kKey);
  const Nonce nonce = server.read_nonce();
  const Mac answer = reference_answer(kKey, nonce);
  std::string too_long(chars_of(answer));
  too_long += '\n';  // one write: the 33 bytes arrive together
  lab::write_all(server.client(), too_long);
  CHECK(server.verdict() == Verdict::too_long);
  CHECK(server.sent_after_nonce() == "NO");
}

TEST_CASE("05.3 challenge_client drops a silent client, and one that sends 31 bytes, after the timeout") {
  {
    Challenge silent(kKey, 200ms);
    (void)silent.read_nonce();
    CHECK(silent.verdict() == Verdict::timed_out);
    CHECK(silent.sent_after_nonce() == "NO");
  }
  {
    Challenge stalled(kKey, 200ms);
    const Nonce nonce = stalled.read_nonce();
    lab::write_all(stalled.client(), first_bytes(reference_answer(kKey, nonce), 31));
    CHECK(stalled.verdict() == Verdict::timed_out);
    CHECK(stalled.sent_after_nonce() == "NO");
  }
}

TEST_CASE("05.3 challenge_client's timeout is for the whole answer, not for each byte") {
  // The right answer, one byte every 40 ms: about 1.3 s in all, each gap
  // far below the 150 ms limit. Waiting afresh for each byte would accept it.
  Challenge server(kKey, 150ms);
  const Nonce nonce = server.read_nonce();
  for (const std::uint8_t byte : reference_answer(kKey, nonce)) {
    try {
      lab::write_all(server.client(), std::span(&byte, 1));
    } catch (const std::system_error&) {
      break;  // the server closed the connection: fine
    }
    std::this_thread::sleep_for(40ms);
  }
  CHECK(server.verdict() == Verdict::timed_out);
}

TEST_CASE("05.3 challenge_client gives up at once when a stop is requested") {
  Challenge server(kKey, 60'000ms);
  (void)server.read_nonce();  // now it waits for the answer
  server.request_stop();
  CHECK_THROWS_AS((void)server.verdict(), lab::StopRequested);
}

// ---- 05.4 ------------------------------------------------------------------

namespace {

// The student's verify_server on its own thread; the test plays the server.
class Verifier {
 public:
  explicit Verifier(std::string_view key) : key_(key) {
    auto [client, server] = lab::testing::socket_pair();
    client_ = std::move(client);
    server_ = std::move(server);
    lab::set_receive_timeout(server_, 3000ms);
    result_ = std::async(std::launch::async, [this] {
      try {
        return auth::verify_server(client_, auth::bytes_of(key_));
      } catch (...) {
        ::shutdown(client_.get(), SHUT_RDWR);
        throw;
      }
    });
  }
  ~Verifier() {
    if (result_.valid() && result_.wait_for(0s) != std::future_status::ready) {
      ::shutdown(client_.get(), SHUT_RDWR);
      result_.wait();
    }
  }
  Verifier(const Verifier&) = delete;
  Verifier& operator=(const Verifier&) = delete;

  [[nodiscard]] Fd& server() { return server_; }

  // The client's challenge frame: type 2, a 32-byte nonce.
  Nonce read_challenge() {
    std::optional<lab::Frame> frame;
    try {
      frame = lab::recv_frame(server_, 1024);
    } catch (const std::exception& error) {
      FAIL("expected a challenge frame, but the read failed: ", std::string(error.what()), "; ",
           outcome(result_));
    }
    REQUIRE_MESSAGE(frame, "expected a challenge frame, but the connection ended; ", outcome(result_));
    CHECK(static_cast<int>(frame->type) == auth::kTypeChallenge);
    REQUIRE(frame->payload.size() == auth::kNonceSize);
    Nonce nonce{};
    std::copy(frame->payload.begin(), frame->payload.end(), nonce.begin());
    return nonce;
  }

  bool result() {
    REQUIRE_MESSAGE(result_.wait_for(5s) == std::future_status::ready, "verify_server did not return within 5 s");
    return result_.get();
  }

  // After the result: what the client sent after its challenge frame.
  std::string sent_after_challenge() {
    client_.reset();
    return read_rest(server_);
  }

 private:
  std::string key_;
  Fd client_;
  Fd server_;
  std::future<bool> result_;
};

Mac reference_proof(std::string_view key, const Nonce& nonce) {
  std::vector<std::uint8_t> message(auth::kServerProofLabel.begin(), auth::kServerProofLabel.end());
  message.insert(message.end(), nonce.begin(), nonce.end());
  return reference_hmac(auth::bytes_of(key), message);
}

}  // namespace

TEST_CASE("05.4 server_proof is HMAC-SHA256(key, label + nonce), not the client's answer") {
  const Nonce nonce = example_nonce();
  const Mac proof = auth::server_proof(auth::bytes_of(kExampleKey), nonce);
  CHECK(hex(proof) == "deda138a22895bcb58e4e72f033d981bb20c6f8812c6307b980119e9afc886d5");
  CHECK(hex(proof) != kExampleAnswer);
  Nonce other = nonce;
  other[31] ^= 1;
  CHECK(auth::server_proof(auth::bytes_of(kExampleKey), other) != proof);
}

TEST_CASE("05.4 verify_server accepts the right proof and sends one challenge frame, nothing more") {
  Verifier client(kKey);
  const Nonce nonce = client.read_challenge();
  lab::send_frame(client.server(), auth::kTypeProof, chars_of(reference_proof(kKey, nonce)));
  CHECK(client.result());
  CHECK(client.sent_after_challenge().empty());
}

TEST_CASE("05.4 verify_server sends a fresh nonce each time") {
  std::set<Nonce> seen;
  for (int round = 0; round < 3; ++round) {
    Verifier client(kKey);
    const Nonce nonce = client.read_challenge();
    seen.insert(nonce);
    lab::send_frame(client.server(), auth::kTypeProof, chars_of(reference_proof(kKey, nonce)));
    CHECK(client.result());
  }
  CHECK_MESSAGE(seen.size() == 3, "the same challenge twice: a proof recorded once would pass again");
}

TEST_CASE("05.4 verify_server returns false for a wrong key, or a proof of another nonce") {
  {
    Verifier client(kKey);
    const Nonce nonce = client.read_challenge();
    lab::send_frame(client.server(), auth::kTypeProof, chars_of(reference_proof(kWrongKey, nonce)));
    CHECK_FALSE(client.result());
    CHECK(client.sent_after_challenge().empty());
  }
  {
    Verifier client(kKey);
    Nonce nonce = client.read_challenge();
    nonce[0] ^= 0xff;  // a proof recorded for some other challenge
    lab::send_frame(client.server(), auth::kTypeProof, chars_of(reference_proof(kKey, nonce)));
    CHECK_FALSE(client.result());
  }
  {
    // The reflection attack: the client's own answer function applied to
    // its nonce is not the proof.
    Verifier client(kKey);
    const Nonce nonce = client.read_challenge();
    lab::send_frame(client.server(), auth::kTypeProof, chars_of(reference_answer(kKey, nonce)));
    CHECK_FALSE(client.result());
  }
}

TEST_CASE("05.4 verify_server throws ProtocolError for a close, a wrong frame type or size") {
  {
    Verifier client(kKey);
    (void)client.read_challenge();
    client.server().reset();
    CHECK_THROWS_AS((void)client.result(), lab::ProtocolError);
  }
  {
    Verifier client(kKey);
    const Nonce nonce = client.read_challenge();
    lab::send_frame(client.server(), auth::kTypeText, chars_of(reference_proof(kKey, nonce)));
    CHECK_THROWS_AS((void)client.result(), lab::ProtocolError);
  }
  {
    Verifier client(kKey);
    const Nonce nonce = client.read_challenge();
    const Mac proof = reference_proof(kKey, nonce);
    lab::send_frame(client.server(), auth::kTypeProof, chars_of(std::span(proof).first(31)));
    CHECK_THROWS_AS((void)client.result(), lab::ProtocolError);
  }
}

// ---- The pair, end to end --------------------------------------------------

TEST_CASE("05.p pair: the right key authenticates and each message comes back upper-cased") {
  TempDir dir;
  const std::string key_file = dir.file("key", kKey);
  auto server = lab::testing::ServerProcess::start(kServer, server_args(key_file));
  INFO(server.stop_and_describe());
  const auto result = run_client(server, {"--key-file", key_file, "hello, hmac", "second"});
  INFO(result.describe());
  CHECK(result.status.success());
  CHECK(result.out == "authenticated: the server said OK\nHELLO, HMAC\nSECOND\n");
  const auto typed = run_client(server, {"--key-file", key_file}, "from stdin\nexit\nnever sent\n");
  INFO(typed.describe());
  CHECK(typed.out == "authenticated: the server said OK\nFROM STDIN\n");
  CHECK(server.stop() == lab::ExitStatus{0, 0});
  const std::string log = server.rest_of_output();
  CHECK_MESSAGE(contains(log, "stopped"), log);
  CHECK(lab::testing::child_pids().empty());  // server and clients all reaped
}

TEST_CASE("05.p pair: the key from LAB_SECRET works the same, and --key-file wins over it") {
  TempDir dir;
  const std::string wrong_file = dir.file("wrong", kWrongKey);
  lab::SpawnOptions with_secret;
  with_secret.environment = {{"LAB_SECRET", "environment secret"}};
  auto server = lab::testing::ServerProcess::start(kServer, {}, 5s, with_secret);
  INFO(server.stop_and_describe());
  const auto result = run_client(server, {"ping"}, "", with_secret);
  INFO(result.describe());
  CHECK(result.out == "authenticated: the server said OK\nPING\n");
  const auto overridden = run_client(server, {"--key-file", wrong_file, "ping"}, "", with_secret);
  INFO(overridden.describe());
  CHECK(overridden.status.code == 1);
  CHECK(overridden.out.empty());
}

TEST_CASE("05.p pair: a wrong key gets NO and one error line, and the server serves the next client") {
  TempDir dir;
  const std::string key_file = dir.file("key", kKey);
  const std::string wrong_file = dir.file("wrong", kWrongKey);
  auto server = lab::testing::ServerProcess::start(kServer, server_args(key_file));
  INFO(server.stop_and_describe());
  const auto refused = run_client(server, {"--key-file", wrong_file, "hello"});
  INFO(refused.describe());
  CHECK(refused.status.code == 1);
  CHECK(refused.out.empty());
  CHECK(contains(refused.err, "said NO"));
  CHECK(count_lines(refused.err) == 1);
  const auto accepted = run_client(server, {"--key-file", key_file, "next"});
  INFO(accepted.describe());
  CHECK(accepted.out == "authenticated: the server said OK\nNEXT\n");
  CHECK(server.stop() == lab::ExitStatus{0, 0});
  const std::string log = server.rest_of_output();
  CHECK_MESSAGE(contains(log, "refused: wrong answer"), log);
  CHECK_MESSAGE(contains(log, "1 client(s) authenticated, 1 refused"), log);
}

TEST_CASE("05.p pair: an answer captured from one connection and replayed on another gets NO") {
  TempDir dir;
  const std::string key_file = dir.file("key", kKey);
  auto server = lab::testing::ServerProcess::start(kServer, server_args(key_file));
  INFO(server.stop_and_describe());
  Mac captured{};
  Nonce first_nonce{};
  {
    const Fd client = lab::tcp_connect(Endpoint{"127.0.0.1", server.port()});
    lab::set_receive_timeout(client, 3000ms);
    REQUIRE(lab::read_exact(client, std::span<std::uint8_t>(first_nonce)));
    captured = reference_answer(kKey, first_nonce);
    lab::write_all(client, captured);
    CHECK(lab::read_exact(client, 2) == "OK");
  }
  const Fd replayer = lab::tcp_connect(Endpoint{"127.0.0.1", server.port()});
  lab::set_receive_timeout(replayer, 3000ms);
  Nonce second_nonce{};
  REQUIRE(lab::read_exact(replayer, std::span<std::uint8_t>(second_nonce)));
  CHECK(second_nonce != first_nonce);
  lab::write_all(replayer, captured);
  CHECK(read_rest(replayer) == "NO");  // and then the server closes
}

TEST_CASE("05.p pair: silence, a stalled answer, early close, garbage and resets don't stop the server") {
  TempDir dir;
  const std::string key_file = dir.file("key", kKey);
  auto server = lab::testing::ServerProcess::start(kServer, server_args(key_file, 300ms));
  INFO(server.stop_and_describe());
  const Endpoint endpoint{"127.0.0.1", server.port()};
  const auto connect_and_read_nonce = [&endpoint](Nonce& nonce) {
    Fd client = lab::tcp_connect(endpoint);
    lab::set_receive_timeout(client, 3000ms);
    REQUIRE(lab::read_exact(client, std::span<std::uint8_t>(nonce)));
    return client;
  };
  Nonce nonce{};
  {
    const Fd silent = connect_and_read_nonce(nonce);
    CHECK(read_rest(silent) == "NO");  // dropped after 300 ms
  }
  {
    const Fd stalled = connect_and_read_nonce(nonce);
    lab::write_all(stalled, first_bytes(reference_answer(kKey, nonce), 31));
    CHECK(read_rest(stalled) == "NO");
  }
  {
    Fd leaver = connect_and_read_nonce(nonce);
    lab::write_all(leaver, first_bytes(reference_answer(kKey, nonce), 5));
  }
  {
    Fd rude = connect_and_read_nonce(nonce);
    lab::write_all(rude, std::string(100, '\xff'));
    CHECK(read_rest(rude) == "NO");
  }
  {
    Fd resetter = connect_and_read_nonce(nonce);
    reset_connection(resetter);
  }
  {
    // Authenticated, then a frame that is not a frame: only this client goes.
    Fd garbler = connect_and_read_nonce(nonce);
    lab::write_all(garbler, reference_answer(kKey, nonce));
    REQUIRE(lab::read_exact(garbler, 2) == "OK");
    lab::write_all(garbler, "GET / HTTP/1.0\r\n\r\n");
    CHECK(read_rest(garbler).empty());
  }
  const auto result = run_client(server, {"--key-file", key_file, "survivor"});
  INFO(result.describe());
  CHECK(result.out == "authenticated: the server said OK\nSURVIVOR\n");
  CHECK(server.stop() == lab::ExitStatus{0, 0});
  const std::string log = server.rest_of_output();
  CHECK_MESSAGE(contains(log, "refused: no complete answer in time"), log);
  CHECK_MESSAGE(contains(log, "refused: closed before answering"), log);
  CHECK_MESSAGE(contains(log, "dropped: "), log);  // the frame layer names the problem
}

TEST_CASE("05.p pair: an outside client that follows the README byte by byte can chat") {
  // No lab::send_frame here: the frame is written out as the README shows it.
  TempDir dir;
  const std::string key_file = dir.file("key", kExampleKey);
  auto server = lab::testing::ServerProcess::start(kServer, server_args(key_file));
  INFO(server.stop_and_describe());
  const Fd client = lab::tcp_connect(Endpoint{"127.0.0.1", server.port()});
  lab::set_receive_timeout(client, 3000ms);
  Nonce nonce{};
  REQUIRE(lab::read_exact(client, std::span<std::uint8_t>(nonce)));
  lab::write_all(client, reference_answer(kExampleKey, nonce));
  REQUIRE(lab::read_exact(client, 2) == "OK");
  lab::write_all(client, std::string("LF\x01\x01\x00\x00\x00\x05hello", 13));
  CHECK(lab::read_exact(client, 13) == std::string("LF\x01\x01\x00\x00\x00\x05HELLO", 13));
  lab::write_all(client, std::string("LF\x01\x01\x00\x00\x00\x00", 8));  // an empty message
  CHECK(lab::read_exact(client, 8) == std::string("LF\x01\x01\x00\x00\x00\x00", 8));
  ::shutdown(client.get(), SHUT_WR);  // done: the server sees end of stream and closes
  CHECK(read_rest(client).empty());
}

TEST_CASE("05.p pair: the key is never printed, and a key file open to others gets a warning") {
  TempDir dir;
  const std::string secret = "do-not-print-me-7f3a9c";
  const std::string key_file = dir.file("key", secret, 0644);
  auto server = lab::testing::ServerProcess::start(kServer, server_args(key_file));
  INFO(server.stop_and_describe());
  const auto result = run_client(server, {"--key-file", key_file, "hi"});
  INFO(result.describe());
  CHECK(result.out == "authenticated: the server said OK\nHI\n");
  CHECK(contains(result.err, "chmod 600"));
  CHECK(contains(result.err, "0644"));
  const std::string wrong_file = dir.file("wrong", "do-not-print-me-either", 0600);
  const auto refused = run_client(server, {"--key-file", wrong_file, "hi"});
  INFO(refused.describe());
  CHECK_FALSE(contains(refused.err, "chmod"));  // 0600: no warning
  CHECK(server.stop() == lab::ExitStatus{0, 0});
  const std::string server_said = server.rest_of_output() + server.error_output();
  CHECK_MESSAGE(contains(server_said, "chmod 600"), server_said);
  for (const std::string& text : {result.out, result.err, refused.out, refused.err, server_said}) {
    CHECK_FALSE(contains(text, "do-not-print-me"));
  }
}

TEST_CASE("05.p pair: a missing, empty or unreadable key is one clear line, and then the right key works") {
  TempDir dir;
  ::unsetenv("LAB_SECRET");  // this test process's own environment, inherited by the programs
  const auto no_key = lab::testing::run({kServer, "--port", "0"});
  INFO(no_key.describe());
  CHECK(no_key.status.code == 64);
  CHECK(contains(no_key.err, "--key-file"));
  CHECK(count_lines(no_key.err) == 1);
  CHECK_FALSE(contains(no_key.out, "listening"));

  const auto empty = lab::testing::run({kServer, "--port", "0", "--key-file", dir.file("empty", "")});
  INFO(empty.describe());
  CHECK(empty.status.code == 1);
  CHECK(contains(empty.err, "empty"));
  CHECK(count_lines(empty.err) == 1);

  const auto absent = lab::testing::run({kClient, "--port", "1", "--key-file", "/nonexistent/lab05.key"});
  INFO(absent.describe());
  CHECK(absent.status.code == 1);
  CHECK(contains(absent.err, "/nonexistent/lab05.key: No such file or directory"));
  CHECK(count_lines(absent.err) == 1);

  const auto huge = lab::testing::run({kClient, "--port", "1", "--key-file", "/dev/zero"});
  INFO(huge.describe());
  CHECK(huge.status.code == 1);
  CHECK(contains(huge.err, "is it really a key?"));

  lab::SpawnOptions empty_secret;
  empty_secret.environment = {{"LAB_SECRET", ""}};
  const auto blank = lab::testing::run({kClient, "--port", "1"}, "", 5s, empty_secret);
  INFO(blank.describe());
  CHECK(blank.status.code == 64);
  CHECK(contains(blank.err, "LAB_SECRET is empty"));

  const std::string key_file = dir.file("key", kKey);
  auto server = lab::testing::ServerProcess::start(kServer, server_args(key_file));
  INFO(server.stop_and_describe());
  const auto works = run_client(server, {"--key-file", key_file, "ok"});
  INFO(works.describe());
  CHECK(works.out == "authenticated: the server said OK\nOK\n");
}

TEST_CASE("05.p pair: --replay-demo shows OK for the real answer, then NO for its replay") {
  TempDir dir;
  const std::string key_file = dir.file("key", kKey);
  auto server = lab::testing::ServerProcess::start(kServer, server_args(key_file));
  INFO(server.stop_and_describe());
  const auto result = run_client(server, {"--key-file", key_file, "--replay-demo", "hi"});
  INFO(result.describe());
  CHECK(result.status.success());
  CHECK(result.out ==
        "authenticated: the server said OK\nHI\n"
        "replay demo: recorded a legitimate answer; the server said OK\n"
        "replay demo: sent the same answer on a new connection; the server said NO\n");
}

TEST_CASE("05.p pair: SIGTERM stops the server at once while a client keeps it waiting") {
  TempDir dir;
  const std::string key_file = dir.file("key", kKey);
  auto server = lab::testing::ServerProcess::start(kServer, server_args(key_file, 60'000ms));
  INFO(server.stop_and_describe());
  const auto result = run_client(server, {"--key-file", key_file, "first"});
  INFO(result.describe());
  REQUIRE(result.out == "authenticated: the server said OK\nFIRST\n");
  const Fd silent = lab::tcp_connect(Endpoint{"127.0.0.1", server.port()});
  lab::set_receive_timeout(silent, 3000ms);
  Nonce nonce{};
  REQUIRE(lab::read_exact(silent, std::span<std::uint8_t>(nonce)));  // it waits for our answer now
  CHECK(server.stop(3s) == lab::ExitStatus{0, 0});
}

TEST_CASE("05.p pair: SIGTERM in the middle of a conversation still ends with the server's summary") {
  TempDir dir;
  const std::string key_file = dir.file("key", kKey);
  auto server = lab::testing::ServerProcess::start(kServer, server_args(key_file, 60'000ms));
  INFO(server.stop_and_describe());
  const Fd client = lab::tcp_connect(Endpoint{"127.0.0.1", server.port()});
  lab::set_receive_timeout(client, 3000ms);
  Nonce nonce{};
  REQUIRE(lab::read_exact(client, std::span<std::uint8_t>(nonce)));
  lab::write_all(client, reference_answer(kKey, nonce));
  REQUIRE(lab::read_exact(client, 2) == "OK");  // authenticated: the server waits for our frames now
  CHECK(server.stop(3s) == lab::ExitStatus{0, 0});
  const std::string log = server.rest_of_output();
  CHECK_MESSAGE(contains(log, "stopped: 1 client(s) authenticated, 0 refused"), log);
}

TEST_CASE("05.p pair: client --mutual checks the real server's proof, then chats") {
  TempDir dir;
  const std::string key_file = dir.file("key", kKey);
  auto server = lab::testing::ServerProcess::start(kServer, server_args(key_file));
  INFO(server.stop_and_describe());
  const auto result = run_client(server, {"--key-file", key_file, "--mutual", "trust", "verify"});
  INFO(result.describe());
  CHECK(result.status.success());
  CHECK(result.out ==
        "authenticated: the server said OK\nthe server proved it knows the key too\nTRUST\nVERIFY\n");
}

TEST_CASE("05.p pair: client --mutual sends nothing to a fake server that cannot prove the key") {
  // The fake server does not know the key: it says OK to any answer, and
  // sends 32 made-up bytes as its "proof".
  TempDir dir;
  const std::string key_file = dir.file("key", kKey);
  const Fd listener = lab::tcp_listen(Endpoint{"127.0.0.1", 0});
  const std::uint16_t port = lab::SocketAddress::local_of(listener.get()).port();
  lab::StopSignal stop;
  auto fake = std::async(std::launch::async, [&listener, &stop] {
    auto connection = lab::accept_client(listener, stop);
    if (!connection) {
      return std::string("(no client)");
    }
    const Fd& socket = connection->socket;
    lab::set_receive_timeout(socket, 3000ms);
    lab::write_all(socket, example_nonce());
    (void)lab::read_exact(socket, 32);
    lab::write_all(socket, auth::kAccepted);
    const auto challenge = lab::recv_frame(socket, 1024);
    if (!challenge) {
      return std::string("(no challenge)");
    }
    lab::send_frame(socket, auth::kTypeProof, chars_of(repeated(0x42, 32)));
    return lab::read_to_end(socket, 4096);  // what the client sent after the bad proof
  });
  const auto result = lab::testing::run(
      {kClient, "--port", std::to_string(port), "--key-file", key_file, "--mutual", "my secret data"});
  stop.request();
  INFO(result.describe());
  REQUIRE(fake.wait_for(5s) == std::future_status::ready);
  std::string after_proof;
  try {
    after_proof = fake.get();
  } catch (const std::exception& error) {
    FAIL("the fake server's exchange failed: ", std::string(error.what()), "; client: ", result.describe());
  }
  CHECK(result.status.code == 1);
  CHECK(contains(result.err, "could not prove"));
  CHECK_MESSAGE(after_proof.empty(), "the client sent ", after_proof.size(), " bytes to an unproven server");
  CHECK_FALSE(contains(result.out, "MY SECRET DATA"));
}
