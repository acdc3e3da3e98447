// Graded tests of lesson 04 (lessons/04_struct_header/struct_header.hpp),
// and end-to-end tests of its server and client. Built twice: against the
// student's struct_header.cpp (label "grade") and against
// solutions/04_struct_header (label "reference").
//
// The tests speak to the student's code with the lab's own copy of the
// frame format (common/include/lab/frame.hpp), which is byte for byte the
// format the lesson's README documents.
#include <doctest/doctest.h>
#include <fcntl.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cstdlib>
#include <new>
#include <filesystem>
#include <fstream>
#include <functional>
#include <stdexcept>
#include <string>
#include <system_error>
#include <thread>
#include <vector>

#include "lab/command.hpp"
#include "lab/error.hpp"
#include "lab/frame.hpp"
#include "lab/io.hpp"
#include "lab/sha256.hpp"
#include "lab/socket.hpp"
#include "lab/testing.hpp"
#include "lab/text.hpp"
#include "struct_header.hpp"

using namespace std::chrono_literals;
using lab::Endpoint;
using lab::Fd;
namespace sh = lab::struct_header;
namespace fs = std::filesystem;

// Every operator new of this test program goes through here, so a case can
// ask "what was the largest single allocation while the student's code ran?"
// That tells a length checked before allocating from one checked after, and a
// download that streams from one that holds the whole file, on every run.
namespace {
std::atomic<bool> g_watching_allocations{false};
std::atomic<std::size_t> g_largest_allocation{0};
}  // namespace

void* operator new(std::size_t size) {
  if (g_watching_allocations.load(std::memory_order_relaxed)) {
    std::size_t seen = g_largest_allocation.load(std::memory_order_relaxed);
    while (size > seen && !g_largest_allocation.compare_exchange_weak(seen, size)) {
    }
  }
  if (void* memory = std::malloc(size == 0 ? 1 : size)) {
    return memory;
  }
  throw std::bad_alloc();
}
void operator delete(void* memory) noexcept { std::free(memory); }
void operator delete(void* memory, std::size_t /*size*/) noexcept { std::free(memory); }

namespace {

const std::string kServer = std::string(LAB_PROGRAM_DIR) + "/server";
const std::string kClient = std::string(LAB_PROGRAM_DIR) + "/client";

// The largest single allocation made while it lived.
class LargestAllocation {
 public:
  LargestAllocation() {
    g_largest_allocation = 0;
    g_watching_allocations = true;
  }
  ~LargestAllocation() { g_watching_allocations = false; }
  LargestAllocation(const LargestAllocation&) = delete;
  LargestAllocation& operator=(const LargestAllocation&) = delete;
  [[nodiscard]] std::size_t bytes() const noexcept { return g_largest_allocation.load(); }
};

// The functions the student's struct_header.cpp calls from elsewhere, as
// nm(1) lists its undefined symbols. The lab's own frame functions
// (lab::send_frame and friends, common/src/frame.cpp) answer 04.1 and 04.2:
// an exercise that calls them has not been done.
std::string undefined_symbols_of_exercise() {
  const lab::CommandOutput listing =
      lab::run_command({"nm", "--undefined-only", "--demangle", LAB_EXERCISE_LIBRARY});
  REQUIRE_MESSAGE(listing.status.success(), "nm --undefined-only ", LAB_EXERCISE_LIBRARY, " failed: ", listing.err);
  return listing.out;
}

void check_not_borrowed(const std::vector<std::string>& functions) {
  const std::string symbols = undefined_symbols_of_exercise();
  for (const std::string& function : functions) {
    CHECK_MESSAGE(symbols.find(function + "(") == std::string::npos, "struct_header.cpp calls ", function,
                  " from common/: write this exercise yourself");
  }
}

std::string bytes_of(std::span<const std::uint8_t> bytes) {
  return std::string(reinterpret_cast<const char*>(bytes.data()), bytes.size());
}

sh::HeaderBytes header_from(const std::string& text) {
  REQUIRE(text.size() == sh::kHeaderSize);
  sh::HeaderBytes bytes{};
  std::copy(text.begin(), text.end(), bytes.begin());
  return bytes;
}

std::string hex_of(const std::string& bytes) {
  return lab::to_hex(std::span(reinterpret_cast<const std::uint8_t*>(bytes.data()), bytes.size()));
}

std::string pattern(std::size_t size) {
  std::string data(size, '\0');
  for (std::size_t i = 0; i < size; ++i) {
    data[i] = static_cast<char>((i * 131 + i / 251) & 0xff);
  }
  return data;
}

// Shuts a socket down when the scope ends, so that a writer thread blocked
// on its peer fails with EPIPE instead of keeping a failed test from ending.
// Declare it after the thread: it then runs before the thread is joined.
class ShutdownOnExit {
 public:
  explicit ShutdownOnExit(const Fd& socket) : socket_(socket) {}
  ~ShutdownOnExit() { ::shutdown(socket_.get(), SHUT_RDWR); }
  ShutdownOnExit(const ShutdownOnExit&) = delete;
  ShutdownOnExit& operator=(const ShutdownOnExit&) = delete;

 private:
  const Fd& socket_;
};

// A fresh directory, removed with everything in it at the end of the test.
class TempDir : public lab::testing::TempDir {
 public:
  TempDir() : lab::testing::TempDir("lab04") {}
  void write(const std::string& name, const std::string& content) const {
    std::ofstream(path() / name, std::ios::binary) << content;
  }
  // Every entry, hidden ones included: a leftover ".x.part-123456" counts.
  [[nodiscard]] std::vector<std::string> entries() const {
    std::vector<std::string> names;
    for (const auto& entry : fs::directory_iterator(path())) {
      names.push_back(entry.path().filename().string());
    }
    std::sort(names.begin(), names.end());
    return names;
  }
  [[nodiscard]] std::string entry_list() const {
    std::string text;
    for (const auto& name : entries()) {
      text += (text.empty() ? "" : ", ") + name;
    }
    return "[" + text + "]";
  }

};

std::string read_file(const fs::path& path) {
  std::ifstream in(path, std::ios::binary);
  return std::string(std::istreambuf_iterator<char>(in), {});
}

// A peak resident size of a process, from /proc/PID/status (VmHWM), in KiB.
long peak_memory_kib(pid_t pid) {
  std::ifstream status("/proc/" + std::to_string(pid) + "/status");
  std::string line;
  while (std::getline(status, line)) {
    if (line.rfind("VmHWM:", 0) == 0) {
      return std::stol(line.substr(6));
    }
  }
  FAIL("no VmHWM in /proc/", pid, "/status");
  return 0;
}

long virtual_size_kib(pid_t pid) {
  std::ifstream status("/proc/" + std::to_string(pid) + "/status");
  std::string line;
  while (std::getline(status, line)) {
    if (line.rfind("VmSize:", 0) == 0) {
      return std::stol(line.substr(7));
    }
  }
  return 0;
}

// Caps a process's address space at what it has now plus `headroom`, so that
// an attempt to allocate gigabytes fails at once instead of eating the
// machine. (Relative to the current size, because a sanitizer build
// reserves terabytes of address space up front.)
void limit_address_space(pid_t pid, long headroom_kib) {
  const rlim_t limit = static_cast<rlim_t>(virtual_size_kib(pid) + headroom_kib) * 1024;
  const rlimit cap{limit, limit};
  REQUIRE(::prlimit(pid, RLIMIT_AS, &cap, nullptr) == 0);
}

// A fake server on one end of a socket pair: reads the client's request
// frame, then plays `script` (frames, or raw bytes), then closes. The
// destructor shuts the socket down first, so a client that failed early
// cannot leave the thread blocked.
class FakeServer {
 public:
  using Script = std::function<void(const Fd& socket, const lab::Frame& request)>;
  explicit FakeServer(Script script) {
    auto [client, server] = lab::testing::socket_pair();
    client_ = std::move(client);
    server_ = std::move(server);
    thread_ = std::jthread([this, script = std::move(script)] {
      try {
        const auto request = lab::recv_frame(server_, 4096);
        if (request) {
          request_ = *request;
          script(server_, *request);
        }
      } catch (const std::exception&) {
        // The client went away; nothing to play to.
      }
      ::shutdown(server_.get(), SHUT_RDWR);
    });
  }
  ~FakeServer() {
    ::shutdown(server_.get(), SHUT_RDWR);
    if (thread_.joinable()) {
      thread_.join();
    }
  }
  FakeServer(const FakeServer&) = delete;
  FakeServer& operator=(const FakeServer&) = delete;

  [[nodiscard]] const Fd& client() const { return client_; }
  // What the client asked for; valid once the thread is done.
  lab::Frame request() {
    if (thread_.joinable()) {
      thread_.join();
    }
    return request_;
  }

 private:
  Fd client_;
  Fd server_;
  lab::Frame request_;
  std::jthread thread_;
};

// The file info payload, built by the test itself (not with the student's
// encode_file_info).
std::string file_info_payload(std::uint64_t size, const lab::Sha256::Digest& digest) {
  std::string payload;
  for (int shift = 56; shift >= 0; shift -= 8) {
    payload += static_cast<char>((size >> shift) & 0xff);
  }
  payload += bytes_of(digest);
  return payload;
}

void serve_file(const Fd& socket, const std::string& content) {
  lab::send_frame(socket, sh::kTypeFileInfo, file_info_payload(content.size(), lab::sha256(content)));
  for (std::size_t at = 0; at < content.size(); at += sh::kFileChunk) {
    lab::send_frame(socket, sh::kTypeFileData, std::string_view(content).substr(at, sh::kFileChunk));
  }
}

// Expects download_file to throw DownloadError whose message contains
// `needle`, and returns the message.
std::string expect_download_error(const Fd& connection, const std::string& name, const TempDir& dir,
                                  const std::string& needle) {
  try {
    const sh::Download saved = sh::download_file(connection, name, dir.path());
    FAIL("download_file(", lab::preview(name), ") returned ", saved.path.string(), "; expected a DownloadError with '",
         needle, "'");
  } catch (const sh::DownloadError& error) {
    const std::string message = error.what();
    CHECK_MESSAGE(message.find(needle) != std::string::npos, "expected '", needle, "' in: ", message);
    return message;
  }
  return "";
}

// A connection to the real server, speaking frames with the lab's copy.
Fd connect_to(const lab::testing::ServerProcess& server) {
  Fd connection = lab::tcp_connect(Endpoint{"127.0.0.1", server.port()});
  lab::set_receive_timeout(connection, 5000ms);
  return connection;
}

lab::Frame next_frame(const Fd& connection) {
  auto frame = lab::recv_frame(connection);
  REQUIRE_MESSAGE(frame.has_value(), "the server closed the connection where a frame was expected");
  return std::move(*frame);
}

// After hostile bytes, what the server did: "" if it closed (with or
// without a last error frame), or a description of anything else.
std::string closes_after_error(const Fd& connection, std::string* error_message) {
  try {
    while (auto frame = lab::recv_frame(connection)) {
      if (frame->type != sh::kTypeError) {
        return "a frame of type " + std::to_string(frame->type) + " instead of an error";
      }
      *error_message = frame->payload;
    }
    return "";
  } catch (const lab::TimeoutError&) {
    return "neither an error nor a close within 5 s";
  } catch (const std::system_error&) {
    return "";  // reset: the server closed with our bytes unread
  }
}

std::string asan_options_for_small_peaks() {
  // A sanitizer build keeps freed memory aside for a while (the
  // quarantine), which would look like growth; keep it small.
  const char* existing = std::getenv("ASAN_OPTIONS");
  return std::string(existing != nullptr ? existing : "") + ":quarantine_size_mb=1:thread_local_quarantine_size_kb=64";
}

}  // namespace

// ---- 04.1 ------------------------------------------------------------------

TEST_CASE("04.1 encode_header writes LF, version 1, the type and a big-endian length") {
  CHECK(bytes_of(sh::encode_header({0x10, 5})) == std::string("LF\x01\x10\x00\x00\x00\x05", 8));
  CHECK(bytes_of(sh::encode_header({0x7f, 0x01020304})) == std::string("LF\x01\x7f\x01\x02\x03\x04", 8));
  CHECK(bytes_of(sh::encode_header({0, 0})) == std::string("LF\x01\x00\x00\x00\x00\x00", 8));
  CHECK_MESSAGE(bytes_of(sh::encode_header({1, 0xA1B2C3D4})) == std::string("LF\x01\x01\xa1\xb2\xc3\xd4", 8),
                "a little-endian length would read d4 c3 b2 a1");
}

TEST_CASE("04.1 the header is byte for byte the lab's frame header") {
  for (const std::uint32_t length : {0U, 1U, 255U, 256U, 65535U, 65536U, sh::kMaxPayload, 0xffffffffU}) {
    for (const std::uint8_t type : {sh::kTypeCommand, sh::kTypeFileData, sh::kTypeError}) {
      const auto mine = sh::encode_header({type, length});
      const auto theirs = lab::encode_frame_header({type, length});
      CHECK_MESSAGE(bytes_of(mine) == bytes_of(theirs), "type ", int(type), " length ", length, ": got ",
                    hex_of(bytes_of(mine)), ", expected ", hex_of(bytes_of(theirs)));
    }
  }
}

TEST_CASE("04.1 decode_header reads back every field that encode_header wrote") {
  for (const std::uint32_t length : {0U, 1U, 0x000f00ffU, 4096U, sh::kMaxPayload}) {
    const sh::Header header{sh::kTypeStdout, length};
    const sh::Header back = sh::decode_header(sh::encode_header(header));
    CHECK_MESSAGE(back == header, "length ", length, " came back as type ", int(back.type), " length ", back.length);
  }
  // Decoding does not depend on our encoder: bytes written by hand.
  const sh::Header by_hand = sh::decode_header(header_from(std::string("LF\x01\x12\x00\x01\x00\x00", 8)));
  CHECK(by_hand.type == sh::kTypeFileData);
  CHECK(by_hand.length == 65536);
}

TEST_CASE("04.1 decode_header refuses a bad magic, a bad version and a 4 GiB length") {
  CHECK_THROWS_WITH_AS(static_cast<void>(sh::decode_header(header_from("GET / HT"))), doctest::Contains("bad magic"),
                       lab::ProtocolError);
  CHECK_THROWS_WITH_AS(static_cast<void>(sh::decode_header(header_from(std::string("FL\x01\x01\x00\x00\x00\x00", 8)))),
                       doctest::Contains("bad magic"), lab::ProtocolError);
  CHECK_THROWS_WITH_AS(static_cast<void>(sh::decode_header(header_from(std::string("LF\x02\x01\x00\x00\x00\x00", 8)))),
                       doctest::Contains("unsupported version"), lab::ProtocolError);
  CHECK_THROWS_WITH_AS(static_cast<void>(sh::decode_header(header_from(std::string("LF\x01\x01\xff\xff\xff\xff", 8)))),
                       doctest::Contains("over the limit"), lab::ProtocolError);
}

TEST_CASE("04.1 decode_header accepts exactly max_payload and refuses one byte more") {
  CHECK(sh::decode_header(sh::encode_header({1, 100}), 100).length == 100);
  CHECK_THROWS_WITH_AS(static_cast<void>(sh::decode_header(sh::encode_header({1, 101}), 100)),
                       doctest::Contains("over the limit"), lab::ProtocolError);
  CHECK(sh::decode_header(sh::encode_header({1, sh::kMaxPayload})).length == sh::kMaxPayload);
  CHECK_THROWS_AS(static_cast<void>(sh::decode_header(sh::encode_header({1, sh::kMaxPayload + 1}))),
                  lab::ProtocolError);
  CHECK(sh::decode_header(sh::encode_header({1, 0}), 0).length == 0);
}

TEST_CASE("04.1 file info is a big-endian 8-byte size and the raw 32-byte digest, and back") {
  const sh::FileInfo info{0x0102030405060708ULL, lab::sha256("abc")};
  const std::string payload = sh::encode_file_info(info);
  REQUIRE(payload.size() == 40);
  CHECK(hex_of(payload.substr(0, 8)) == "0102030405060708");
  CHECK(hex_of(payload.substr(8)) == "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
  CHECK(sh::decode_file_info(payload) == info);
  const sh::FileInfo huge{0xffffffffffffffffULL, {}};
  CHECK(sh::decode_file_info(sh::encode_file_info(huge)) == huge);
}

TEST_CASE("04.1 decode_file_info refuses a payload that is not exactly 40 bytes") {
  CHECK_THROWS_AS(static_cast<void>(sh::decode_file_info(std::string(39, '\0'))), lab::ProtocolError);
  CHECK_THROWS_AS(static_cast<void>(sh::decode_file_info(std::string(41, '\0'))), lab::ProtocolError);
  CHECK_THROWS_AS(static_cast<void>(sh::decode_file_info("")), lab::ProtocolError);
  CHECK(sh::decode_file_info(std::string(40, '\0')).size == 0);
}

TEST_CASE("04.1 encode_header and decode_header are this file's own code, not common's frame functions") {
  const sh::HeaderBytes bytes = sh::encode_header({sh::kTypeGet, 3});
  CHECK(sh::decode_header(bytes).length == 3);
  check_not_borrowed({"lab::encode_frame_header", "lab::decode_frame_header"});
}

// ---- 04.2 ------------------------------------------------------------------

TEST_CASE("04.2 send_frame writes the header and the payload, as another implementation reads them") {
  auto [a, b] = lab::testing::socket_pair();
  const std::string big = pattern(300'000);
  std::jthread writer;
  sh::send_frame(a, sh::kTypeCommand, "date");
  sh::send_frame(a, sh::kTypeStdout, "");
  writer = std::jthread([&a = a, &big] {
    try {
      sh::send_frame(a, sh::kTypeFileData, big);
    } catch (...) {
    }
    a.reset();
  });
  const ShutdownOnExit unblock_writer(b);
  auto first = lab::recv_frame(b);
  REQUIRE(first);
  CHECK(first->type == sh::kTypeCommand);
  CHECK(first->payload == "date");
  auto second = lab::recv_frame(b);
  REQUIRE(second);
  CHECK(second->type == sh::kTypeStdout);
  CHECK(second->payload.empty());
  auto third = lab::recv_frame(b);
  REQUIRE(third);
  CHECK(third->type == sh::kTypeFileData);
  CHECK_MESSAGE(third->payload == big, "a 300000-byte payload arrived changed (", third->payload.size(), " bytes)");
  writer.join();
  CHECK_FALSE(lab::recv_frame(b).has_value());
}

TEST_CASE("04.2 recv_frame reads frames in order and returns nullopt at a clean end") {
  auto [a, b] = lab::testing::socket_pair();
  const std::string max(sh::kMaxPayload, 'm');
  std::jthread writer([&a = a, &max] {
    try {
      lab::send_frame(a, sh::kTypeStdout, "one");
      lab::send_frame(a, sh::kTypeStderr, "");
      lab::send_frame(a, sh::kTypeFileData, max);
    } catch (const std::system_error&) {
      // The reader gave up (the test failed); nothing more to send.
    }
    a.reset();
  });
  const ShutdownOnExit unblock_writer(b);
  auto first = sh::recv_frame(b);
  REQUIRE(first);
  CHECK(first->type == sh::kTypeStdout);
  CHECK(first->payload == "one");
  auto second = sh::recv_frame(b);
  REQUIRE(second);
  CHECK(second->type == sh::kTypeStderr);
  CHECK(second->payload.empty());
  auto third = sh::recv_frame(b);
  REQUIRE(third);
  CHECK(third->payload.size() == sh::kMaxPayload);
  CHECK(third->payload == max);
  writer.join();
  CHECK_FALSE(sh::recv_frame(b).has_value());
}

TEST_CASE("04.2 recv_frame reassembles a frame that arrives one byte at a time") {
  auto [a, b] = lab::testing::socket_pair();
  const std::string wire = bytes_of(lab::encode_frame_header({sh::kTypeGet, 9})) + "notes.txt";
  std::jthread writer([&a = a, &wire] {
    for (const char byte : wire) {
      try {
        lab::write_all(a, std::string_view(&byte, 1));
      } catch (const std::system_error&) {
        return;
      }
      std::this_thread::sleep_for(1ms);  // each byte its own read
    }
  });
  auto frame = sh::recv_frame(b);
  REQUIRE(frame);
  CHECK(frame->type == sh::kTypeGet);
  CHECK(frame->payload == "notes.txt");
}

TEST_CASE("04.2 recv_frame refuses a 4 GiB length without allocating it") {
  // Run in a child process whose address space is capped at its current
  // size + 256 MiB: an attempt to allocate 4 GiB fails there, harmlessly.
  auto [a, b] = lab::testing::socket_pair();
  lab::write_all(a, bytes_of(lab::encode_frame_header({sh::kTypeFileData, 0xffffffff})));
  int report[2];
  REQUIRE(::pipe2(report, O_CLOEXEC) == 0);
  const Fd report_read{report[0]};
  Fd report_write{report[1]};
  const pid_t pid = ::fork();
  REQUIRE(pid >= 0);
  if (pid == 0) {
    a.reset();  // the child's copy: if recv_frame waits for the payload, it sees the end
    lab::set_receive_timeout(b, 5000ms);
    const rlim_t limit = static_cast<rlim_t>(virtual_size_kib(::getpid()) + 256 * 1024) * 1024;
    const rlimit cap{limit, limit};
    ::setrlimit(RLIMIT_AS, &cap);
    std::string outcome;
    try {
      static_cast<void>(sh::recv_frame(b));
      outcome = "recv_frame returned a frame";
    } catch (const lab::ProtocolError& error) {
      outcome = std::string("OK ") + error.what();
    } catch (const std::bad_alloc&) {
      outcome = "recv_frame tried to allocate the 4 GiB payload (std::bad_alloc)";
    } catch (const std::exception& error) {
      outcome = error.what();
    }
    ::write(report_write.get(), outcome.data(), outcome.size());
    ::_exit(0);
  }
  report_write.reset();
  a.reset();  // a recv_frame that waits for the payload now sees the end instead
  const std::string outcome = lab::read_to_end(report_read, 4096);
  int status = 0;
  ::waitpid(pid, &status, 0);
  INFO("the child ", lab::ExitStatus::from_wait_status(status).to_string());
  REQUIRE_MESSAGE(outcome.rfind("OK ", 0) == 0, "expected a ProtocolError; got: ", outcome);
  CHECK_MESSAGE(outcome.find("over the limit") != std::string::npos, outcome);
}

TEST_CASE("04.2 recv_frame throws ProtocolError when the stream ends inside the header") {
  for (std::size_t cut = 1; cut < sh::kHeaderSize; ++cut) {
    auto [a, b] = lab::testing::socket_pair();
    lab::write_all(a, bytes_of(lab::encode_frame_header({1, 4})).substr(0, cut));
    a.reset();
    CHECK_THROWS_AS_MESSAGE(sh::recv_frame(b), lab::ProtocolError, "a header cut after ", cut, " bytes");
  }
}

TEST_CASE("04.2 recv_frame throws ProtocolError when the stream ends inside the payload") {
  for (const std::size_t sent : {0U, 1U, 9U}) {
    auto [a, b] = lab::testing::socket_pair();
    lab::write_all(a, bytes_of(lab::encode_frame_header({1, 10})) + std::string(sent, 'p'));
    a.reset();
    CHECK_THROWS_AS_MESSAGE(sh::recv_frame(b), lab::ProtocolError, "a 10-byte payload cut after ", sent, " bytes");
  }
}

TEST_CASE("04.2 recv_frame refuses garbage, and send_frame refuses a payload over the limit") {
  {
    auto [a, b] = lab::testing::socket_pair();
    lab::write_all(a, "GET /index.html HTTP/1.1\r\n\r\n");
    CHECK_THROWS_WITH_AS(sh::recv_frame(b), doctest::Contains("bad magic"), lab::ProtocolError);
  }
  auto [a, b] = lab::testing::socket_pair();
  const std::string too_big(sh::kMaxPayload + 1, 'x');
  CHECK_THROWS_AS(sh::send_frame(a, sh::kTypeFileData, too_big), std::length_error);
  sh::send_frame(a, sh::kTypeStdout, "after");  // nothing of the refused frame went out
  auto frame = lab::recv_frame(b);
  REQUIRE(frame);
  CHECK(frame->type == sh::kTypeStdout);
  CHECK(frame->payload == "after");
}

TEST_CASE("04.2 send_frame puts the header and the payload in one write") {
  // A SOCK_SEQPACKET socket keeps each write a record of its own: one recv
  // returns exactly what one write sent. Two writes would let Nagle's
  // algorithm hold the payload back on TCP.
  int ends[2];
  REQUIRE(::socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, ends) == 0);
  const Fd a{ends[0]};
  const Fd b{ends[1]};
  sh::send_frame(a, sh::kTypeCommand, "uname -a");
  std::string record(256, '\0');
  const ssize_t got = ::recv(b.get(), record.data(), record.size(), MSG_DONTWAIT);
  REQUIRE_MESSAGE(got >= 0, "nothing was sent");
  record.resize(static_cast<std::size_t>(got));
  CHECK_MESSAGE(record.size() == sh::kHeaderSize + 8, "the first write held ", record.size(),
                " bytes, not the 8-byte header and the 8-byte payload together");
}

TEST_CASE("04.2 recv_frame refuses an over-limit length before allocating anything for it") {
  for (const std::uint32_t claimed : {std::uint32_t{1000} + 1, std::uint32_t{1} << 20, std::uint32_t{64} << 20}) {
    auto [a, b] = lab::testing::socket_pair();
    lab::write_all(a, bytes_of(lab::encode_frame_header({sh::kTypeFileData, claimed})));
    a.reset();
    const LargestAllocation largest;
    CHECK_THROWS_WITH_AS(static_cast<void>(sh::recv_frame(b, 1000)), doctest::Contains("over the limit"),
                         lab::ProtocolError);
    CHECK_MESSAGE(largest.bytes() < claimed, "recv_frame allocated ", largest.bytes(), " bytes for a claimed ",
                  claimed, "-byte payload over the limit of 1000 before refusing it");
  }
}

TEST_CASE("04.2 send_frame and recv_frame are this file's own code, not common's frame functions") {
  auto [a, b] = lab::testing::socket_pair();
  sh::send_frame(a, sh::kTypeStdout, "hi");
  a.reset();
  const auto frame = sh::recv_frame(b);
  REQUIRE(frame);
  CHECK(frame->payload == "hi");
  check_not_borrowed({"lab::send_frame", "lab::recv_frame", "lab::encode_frame_header", "lab::decode_frame_header"});
}

// ---- 04.2: the server, end to end (it needs 04.1 and 04.2) -------------------

TEST_CASE("04.p pair: a command's stdout, stderr and exit status come back as separate frames") {
  auto server = lab::testing::ServerProcess::start(kServer);
  INFO(server.stop_and_describe());
  const Fd connection = connect_to(server);
  lab::send_frame(connection, sh::kTypeCommand, "big");
  lab::Frame out = next_frame(connection);
  CHECK(out.type == sh::kTypeStdout);
  CHECK_MESSAGE(out.payload == lab::big_command_output(), "stdout of big: ", lab::preview(out.payload));
  CHECK(next_frame(connection).type == sh::kTypeStderr);
  lab::Frame status = next_frame(connection);
  CHECK(status.type == sh::kTypeExitStatus);
  CHECK(hex_of(status.payload) == "00000000");

  lab::send_frame(connection, sh::kTypeCommand, "missing");
  CHECK(next_frame(connection).payload.empty());
  CHECK(next_frame(connection).payload.find("/nonexistent/no-such-file") != std::string::npos);
  CHECK(hex_of(next_frame(connection).payload) == "00020000");  // exited, status 2

  lab::send_frame(connection, sh::kTypeCommand, "date; rm -rf ~");
  lab::Frame refused = next_frame(connection);
  CHECK(refused.type == sh::kTypeError);
  CHECK(refused.payload.find("allowed: date, uname -a") != std::string::npos);
  lab::send_frame(connection, sh::kTypeCommand, "big");  // the connection still works
  CHECK(next_frame(connection).payload == lab::big_command_output());
}

TEST_CASE("04.p pair: a 4 GiB length claim gets an error, the server stays small and serves the next client") {
  auto server = lab::testing::ServerProcess::start(kServer);
  INFO(server.stop_and_describe());
  // A server that tried to allocate 4 GiB fails at once instead of eating the machine.
  limit_address_space(server.child().pid(), 512 * 1024);
  {
    const Fd hostile = connect_to(server);
    lab::write_all(hostile, bytes_of(lab::encode_frame_header({sh::kTypeGet, 0xffffffff})));
    std::string error;
    const std::string problem = closes_after_error(hostile, &error);
    CHECK_MESSAGE(problem.empty(), problem);
    CHECK_MESSAGE(error.find("over the limit") != std::string::npos, "error frame: ", lab::preview(error));
  }
  const Fd next = connect_to(server);
  lab::send_frame(next, sh::kTypeCommand, "big");
  CHECK(next_frame(next).payload == lab::big_command_output());
  const long peak = peak_memory_kib(server.child().pid());
  CHECK_MESSAGE(peak < 256 * 1024, "the server's peak resident memory reached ", peak, " KiB");
}

TEST_CASE("04.p pair: garbage, a truncated header and a truncated payload cost only their connection") {
  auto server = lab::testing::ServerProcess::start(kServer);
  INFO(server.stop_and_describe());
  {
    const Fd garbage = connect_to(server);
    lab::write_all(garbage, pattern(64));
    std::string error;
    const std::string problem = closes_after_error(garbage, &error);
    CHECK_MESSAGE(problem.empty(), problem);
  }
  {
    Fd cut_header = connect_to(server);
    lab::write_all(cut_header, std::string_view("LF\x01", 3));
    ::shutdown(cut_header.get(), SHUT_WR);
    std::string error;
    CHECK(closes_after_error(cut_header, &error).empty());
  }
  {
    Fd cut_payload = connect_to(server);
    lab::write_all(cut_payload, bytes_of(lab::encode_frame_header({sh::kTypeGet, 100})) + "abc");
    ::shutdown(cut_payload.get(), SHUT_WR);
    std::string error;
    CHECK(closes_after_error(cut_payload, &error).empty());
  }
  {
    const Fd unknown_type = connect_to(server);
    lab::send_frame(unknown_type, 0x55, "?");
    const lab::Frame answer = next_frame(unknown_type);
    CHECK(answer.type == sh::kTypeError);
    CHECK(answer.payload.find("0x55") != std::string::npos);
  }
  const Fd next = connect_to(server);
  lab::send_frame(next, sh::kTypeCommand, "big");
  CHECK(next_frame(next).payload == lab::big_command_output());
  CHECK(server.stop() == lab::ExitStatus{0, 0});
  const std::string log = server.rest_of_output();
  CHECK_MESSAGE(log.find("dropped: bad magic") != std::string::npos, log);
  CHECK_MESSAGE(log.find("dropped: connection closed after 3 of 8 bytes") != std::string::npos, log);
  CHECK_MESSAGE(log.find("dropped: connection closed after 3 of 100 bytes") != std::string::npos, log);
}

TEST_CASE("04.p pair: a silent client is dropped after the idle timeout, and the next one is served") {
  auto server = lab::testing::ServerProcess::start(kServer, {"--idle-timeout", "1"});
  INFO(server.stop_and_describe());
  const Fd silent = connect_to(server);
  const Fd next = connect_to(server);  // waits in the backlog behind the silent one
  lab::send_frame(next, sh::kTypeCommand, "big");
  CHECK(next_frame(next).payload == lab::big_command_output());
  std::string error;
  CHECK(closes_after_error(silent, &error).empty());
  CHECK_MESSAGE(error.find("idle timeout") != std::string::npos, "error frame: ", lab::preview(error));
}

TEST_CASE("04.p pair: the server refuses names that leave its directory or are not regular files") {
  TempDir served;
  TempDir outside;
  served.write("ok.txt", "fine\n");
  outside.write("secret", "do not serve\n");
  fs::create_symlink(outside.path() / "secret", served.path() / "escape");
  fs::create_symlink("../" + outside.path().filename().string() + "/secret", served.path() / "relative-escape");
  fs::create_symlink("ok.txt", served.path() / "alias");
  fs::create_directory(served.path() / "subdir");
  REQUIRE(::mkfifo((served.path() / "fifo").c_str(), 0600) == 0);
  auto server = lab::testing::ServerProcess::start(kServer, {"--dir", served.str()});
  INFO(server.stop_and_describe());
  const Fd connection = connect_to(server);
  const std::vector<std::string> refused = {
      "../" + outside.path().filename().string() + "/secret", outside.str() + "/secret", "/etc/passwd",
      "subdir/../ok.txt", "..", ".", "", "escape", "relative-escape", "subdir", "fifo", "no-such-file"};
  for (const std::string& name : refused) {
    lab::send_frame(connection, sh::kTypeGet, name);
    const lab::Frame answer = next_frame(connection);
    CHECK_MESSAGE(answer.type == sh::kTypeError, "get ", lab::preview(name), " was answered with type ",
                  int(answer.type), ": ", lab::preview(answer.payload));
  }
  // Still serving, on the same connection; a symlink that stays inside is fine.
  for (const std::string name : {"ok.txt", "alias"}) {
    lab::send_frame(connection, sh::kTypeGet, name);
    const lab::Frame info = next_frame(connection);
    REQUIRE_MESSAGE(info.type == sh::kTypeFileInfo, "get ", name, ": ", lab::preview(info.payload));
    CHECK(info.payload == file_info_payload(5, lab::sha256("fine\n")));
    CHECK(next_frame(connection).payload == "fine\n");
  }
}

TEST_CASE("04.p pair: a sparse 4 MiB file streams in chunks, and the server does not grow by its size") {
  constexpr std::uint64_t kSparseSize = 4U << 20;
  TempDir served;
  {
    const Fd file{::open((served.path() / "sparse.bin").c_str(), O_WRONLY | O_CREAT | O_CLOEXEC, 0600)};
    REQUIRE(::ftruncate(file.get(), kSparseSize) == 0);  // holes: no disk space, reads as zeros
  }
  lab::SpawnOptions options;
  options.environment = {{"ASAN_OPTIONS", asan_options_for_small_peaks()}};
  auto server = lab::testing::ServerProcess::start(kServer, {"--dir", served.str()}, 5s, options);
  INFO(server.stop_and_describe());
  const long before = peak_memory_kib(server.child().pid());
  const Fd connection = connect_to(server);
  lab::send_frame(connection, sh::kTypeGet, "sparse.bin");
  const lab::Frame info = next_frame(connection);
  REQUIRE_MESSAGE(info.type == sh::kTypeFileInfo, lab::preview(info.payload));
  CHECK(hex_of(info.payload.substr(0, 8)) == "0000000000400000");
  std::uint64_t received = 0;
  std::size_t frames = 0;
  bool zeros = true;
  while (received < kSparseSize && frames < 100000) {
    const lab::Frame data = next_frame(connection);
    REQUIRE(data.type == sh::kTypeFileData);
    REQUIRE(data.payload.size() <= sh::kMaxPayload);
    zeros = zeros && data.payload.find_first_not_of('\0') == std::string::npos;
    received += data.payload.size();
    ++frames;
  }
  CHECK(received == kSparseSize);
  CHECK(zeros);
  const long growth = peak_memory_kib(server.child().pid()) - before;
#if defined(__SANITIZE_THREAD__)
  // ThreadSanitizer keeps shadow memory, several times the size of every
  // byte the server touches: its 1 MiB buffer alone costs about 5 MiB.
  constexpr long kLimitKib = 8 * 1024;
#else
  constexpr long kLimitKib = 2 * 1024;
#endif
  CHECK_MESSAGE(growth < kLimitKib, "the server's peak memory grew by ", growth, " KiB to send a 4 MiB file");
}

TEST_CASE("04.p pair: the client prints stdout, stderr and the exit status of each command apart") {
  auto server = lab::testing::ServerProcess::start(kServer);
  INFO(server.stop_and_describe());
  const auto result =
      lab::testing::run({kClient, "--port", std::to_string(server.port()), "big", "missing", "big"});
  INFO(result.describe());
  CHECK(result.status.success());
  const std::string one_big = "$ big\n" + lab::big_command_output() +
                              "[exited with status 0, 14000 bytes of stdout, 0 of stderr]\n";
  CHECK(result.out.rfind(one_big, 0) == 0);
  CHECK(result.out.find("$ missing\n[stderr] ls: cannot access") != std::string::npos);
  CHECK(result.out.find("[exited with status 2, 0 bytes of stdout,") != std::string::npos);
  CHECK(result.out.size() > one_big.size());
  CHECK(result.out.substr(result.out.size() - one_big.size()) == one_big);
}

// ---- 04.3 ------------------------------------------------------------------

TEST_CASE("04.3 download_file saves a 1-byte, an empty and a 2 MiB file from the real server, verified") {
  TempDir served;
  TempDir saved;
  const std::string large = pattern(2 << 20);
  served.write("one", "x");
  served.write("empty", "");
  served.write("large.bin", large);
  auto server = lab::testing::ServerProcess::start(kServer, {"--dir", served.str()});
  INFO(server.stop_and_describe());
  const Fd connection = connect_to(server);
  for (const auto& file : std::vector<std::pair<std::string, std::string>>{
           {"one", "x"}, {"empty", ""}, {"large.bin", large}}) {
    const std::string& name = file.first;
    const std::string& content = file.second;
    const sh::Download got = sh::download_file(connection, name, saved.path());
    CHECK(got.path == saved.path() / name);
    CHECK(got.size == content.size());
    // sha256sum is much faster than a debug build of lab::Sha256.
    const lab::CommandOutput sum = lab::run_command({"sha256sum", (served.path() / name).string()});
    CHECK(got.sha256_hex == sum.out.substr(0, 64));
    CHECK_MESSAGE(read_file(saved.path() / name) == content, name, " was saved with different content");
  }
  CHECK(saved.entries() == std::vector<std::string>{"empty", "large.bin", "one"});
}

TEST_CASE("04.3 download_file refuses names with / or .. before sending anything") {
  TempDir saved;
  for (const std::string name : {"", ".", "..", "../escape", "a/b", "/etc/passwd", "dir/"}) {
    auto [client, server] = lab::testing::socket_pair();
    expect_download_error(client, name, saved, "");
    std::string sent;
    ::shutdown(client.get(), SHUT_WR);
    sent = lab::read_to_end(server, 4096);
    CHECK_MESSAGE(sent.empty(), "for ", lab::preview(name), " download_file sent ", lab::preview(sent));
  }
  CHECK(saved.entries().empty());
}

TEST_CASE("04.3 download_file sends a GET frame, and reports the server's refusal in its error") {
  TempDir saved;
  FakeServer fake([](const Fd& socket, const lab::Frame&) {
    lab::send_frame(socket, sh::kTypeError, "no such file: \"report.pdf\"");
  });
  expect_download_error(fake.client(), "report.pdf", saved, "no such file");
  const lab::Frame request = fake.request();
  CHECK(request.type == sh::kTypeGet);
  CHECK(request.payload == "report.pdf");
  CHECK_MESSAGE(saved.entries().empty(), "left behind: ", saved.entry_list());
}

TEST_CASE("04.3 a server that lies about the hash leaves no file, and says SHA-256 mismatch") {
  TempDir saved;
  const std::string content = pattern(200'000);
  FakeServer fake([&content](const Fd& socket, const lab::Frame&) {
    serve_file(socket, content);  // honest so far...
  });
  // ...so build the liar separately: same size, the digest of other bytes.
  FakeServer liar([&content](const Fd& socket, const lab::Frame&) {
    lab::send_frame(socket, sh::kTypeFileInfo, file_info_payload(content.size(), lab::sha256("something else")));
    for (std::size_t at = 0; at < content.size(); at += sh::kFileChunk) {
      lab::send_frame(socket, sh::kTypeFileData, std::string_view(content).substr(at, sh::kFileChunk));
    }
  });
  expect_download_error(liar.client(), "data.bin", saved, "SHA-256 mismatch");
  CHECK_MESSAGE(saved.entries().empty(), "left behind: ", saved.entry_list());
  // The same download from the honest server is kept.
  const sh::Download got = sh::download_file(fake.client(), "data.bin", saved.path());
  CHECK(read_file(got.path) == content);
}

TEST_CASE("04.3 a server that closes early, or claims 4 GiB and stops, leaves no file") {
  TempDir saved;
  const std::string content = pattern(100'000);
  {
    FakeServer early([&content](const Fd& socket, const lab::Frame&) {
      lab::send_frame(socket, sh::kTypeFileInfo, file_info_payload(content.size(), lab::sha256(content)));
      lab::send_frame(socket, sh::kTypeFileData, std::string_view(content).substr(0, 65536));
    });
    expect_download_error(early.client(), "early.bin", saved, "65536 of 100000");
  }
  {
    FakeServer boaster([](const Fd& socket, const lab::Frame&) {
      lab::send_frame(socket, sh::kTypeFileInfo, file_info_payload(4ULL << 30, lab::sha256("")));
      lab::send_frame(socket, sh::kTypeFileData, "tiny");
    });
    expect_download_error(boaster.client(), "huge.iso", saved, "");
  }
  {
    FakeServer mid_frame([&content](const Fd& socket, const lab::Frame&) {
      lab::send_frame(socket, sh::kTypeFileInfo, file_info_payload(content.size(), lab::sha256(content)));
      lab::write_all(socket, bytes_of(lab::encode_frame_header({sh::kTypeFileData, 1000})) + "cut");
    });
    try {
      static_cast<void>(sh::download_file(mid_frame.client(), "cut.bin", saved.path()));
      FAIL("download_file returned for a payload cut after 3 of 1000 bytes");
    } catch (const lab::ProtocolError&) {
      // DownloadError or the ProtocolError of recv_frame: either is right.
    }
  }
  CHECK_MESSAGE(saved.entries().empty(), "left behind: ", saved.entry_list());
}

TEST_CASE("04.3 more data than announced, or an error frame mid-way, leaves no file") {
  TempDir saved;
  {
    FakeServer generous([](const Fd& socket, const lab::Frame&) {
      lab::send_frame(socket, sh::kTypeFileInfo, file_info_payload(4, lab::sha256("four")));
      lab::send_frame(socket, sh::kTypeFileData, "four and more");
    });
    expect_download_error(generous.client(), "four", saved, "");
  }
  {
    FakeServer failing([](const Fd& socket, const lab::Frame&) {
      lab::send_frame(socket, sh::kTypeFileInfo, file_info_payload(100, lab::sha256("")));
      lab::send_frame(socket, sh::kTypeFileData, std::string(50, 'h'));
      lab::send_frame(socket, sh::kTypeError, "the file shrank while it was being sent");
    });
    expect_download_error(failing.client(), "half", saved, "shrank");
  }
  CHECK_MESSAGE(saved.entries().empty(), "left behind: ", saved.entry_list());
}

TEST_CASE("04.3 an existing file is replaced only by a verified download") {
  TempDir saved;
  saved.write("notes.txt", "old notes\n");
  {
    FakeServer liar([](const Fd& socket, const lab::Frame&) {
      lab::send_frame(socket, sh::kTypeFileInfo, file_info_payload(10, lab::sha256("new notes!")));
      lab::send_frame(socket, sh::kTypeFileData, "new notes?");
    });
    expect_download_error(liar.client(), "notes.txt", saved, "SHA-256 mismatch");
  }
  CHECK(read_file(saved.path() / "notes.txt") == "old notes\n");
  CHECK_MESSAGE(saved.entries() == std::vector<std::string>{"notes.txt"}, "left behind: ", saved.entry_list());
  FakeServer honest([](const Fd& socket, const lab::Frame&) { serve_file(socket, "new notes!"); });
  static_cast<void>(sh::download_file(honest.client(), "notes.txt", saved.path()));
  CHECK(read_file(saved.path() / "notes.txt") == "new notes!");
  CHECK(saved.entries() == std::vector<std::string>{"notes.txt"});
}

TEST_CASE("04.3 download_file streams an 8 MiB file: no allocation comes near the file's size") {
  TempDir served;
  TempDir saved;
  const std::size_t size = std::size_t{8} << 20;
  served.write("big.bin", pattern(size));
  auto server = lab::testing::ServerProcess::start(kServer, {"--dir", served.str()});
  INFO(server.stop_and_describe());
  const Fd connection = connect_to(server);
  const LargestAllocation largest;
  const sh::Download got = sh::download_file(connection, "big.bin", saved.path());
  CHECK(got.size == size);
  // One frame (at most kMaxPayload) at a time is fine; the whole file is not.
  CHECK_MESSAGE(largest.bytes() <= std::size_t{sh::kMaxPayload} + 4096, "download_file made an allocation of ",
                largest.bytes(), " bytes for an ", size, "-byte file: the header says never to hold the whole file");
}

// ---- 04.3: the pair, end to end ----------------------------------------------

TEST_CASE("04.p pair: the client downloads into --to, and refuses an escaping name in one line") {
  TempDir served;
  TempDir saved;
  served.write("hello.txt", "hello, world\n");
  auto server = lab::testing::ServerProcess::start(kServer, {"--dir", served.str()});
  INFO(server.stop_and_describe());
  const std::string port = std::to_string(server.port());
  const auto good = lab::testing::run({kClient, "--port", port, "--to", saved.str(), "get", "hello.txt"});
  INFO(good.describe());
  CHECK(good.status.success());
  CHECK(good.out.find("(verified)") != std::string::npos);
  CHECK(read_file(saved.path() / "hello.txt") == "hello, world\n");
  const auto escape = lab::testing::run({kClient, "--port", port, "--to", saved.str(), "get", "../hello.txt"});
  INFO(escape.describe());
  CHECK(escape.status.code == 1);
  CHECK(std::count(escape.err.begin(), escape.err.end(), '\n') == 1);
  CHECK(escape.err.find("nothing was saved") != std::string::npos);
  CHECK(saved.entries() == std::vector<std::string>{"hello.txt"});
}

TEST_CASE("04.p pair: against a fake server that lies about the hash, the client keeps nothing") {
  TempDir saved;
  const Fd listener = lab::tcp_listen(Endpoint{"127.0.0.1", 0});
  const auto port = lab::SocketAddress::local_of(listener.get()).port();
  lab::StopSignal stop;
  std::jthread fake([&listener, &stop] {
    try {
      if (auto client = lab::accept_client(listener, stop)) {
        lab::set_receive_timeout(client->socket, 5000ms);
        if (lab::recv_frame(client->socket, 4096)) {
          const std::string content = pattern(300'000);
          lab::send_frame(client->socket, sh::kTypeFileInfo, file_info_payload(content.size(), lab::sha256("lie")));
          for (std::size_t at = 0; at < content.size(); at += sh::kFileChunk) {
            lab::send_frame(client->socket, sh::kTypeFileData, std::string_view(content).substr(at, sh::kFileChunk));
          }
        }
      }
    } catch (const std::exception&) {
    }
  });
  const auto result =
      lab::testing::run({kClient, "--port", std::to_string(port), "--to", saved.str(), "get", "data.bin"});
  stop.request();
  fake.join();
  INFO(result.describe());
  CHECK(result.status.code == 1);
  CHECK(result.err.find("SHA-256 mismatch") != std::string::npos);
  CHECK(result.err.find("nothing was saved") != std::string::npos);
  CHECK(std::count(result.err.begin(), result.err.end(), '\n') == 1);
  CHECK_MESSAGE(saved.entries().empty(), "left behind: ", saved.entry_list());
}

TEST_CASE("04.p pair: a client with no server says so in one line") {
  TempDir saved;
  lab::testing::run_refused_client(kClient, {"--to", saved.str(), "get", "x"});
  // The same client must work once a server is there.
  TempDir served;
  served.write("x", "x");
  auto server = lab::testing::ServerProcess::start(kServer, {"--dir", served.str()});
  INFO(server.stop_and_describe());
  const auto works = lab::testing::run({kClient, "--port", std::to_string(server.port()), "--to", saved.str(), "get", "x"});
  INFO(works.describe());
  CHECK(works.status.success());
  CHECK(read_file(saved.path() / "x") == "x");
}
