// End-to-end tests of lesson 13's pair (exercise 13.p): the real server and
// client, talking to each other, to curl, to Python's http.server, and to
// hostile clients. The server parses requests with the student's 13.2 and
// 13.3, the client uses all three exercises: these cases grade the pair as
// a whole. Responses are checked with this file's own small parser, never
// with the exercise's functions.
#include <doctest/doctest.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cctype>
#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <string>
#include <thread>
#include <vector>

#include "byte_reader.hpp"
#include "lab/endpoint.hpp"
#include "lab/io.hpp"
#include "lab/process.hpp"
#include "lab/socket.hpp"
#include "lab/testing.hpp"

using namespace std::chrono_literals;
using lab::Fd;
using lab::testing::ServerProcess;
using lab::testing::TempDir;

namespace {

namespace fs = std::filesystem;

const std::string kServer = std::string(LAB_PROGRAM_DIR) + "/server";
const std::string kClient = std::string(LAB_PROGRAM_DIR) + "/client";
const fs::path kTestDir = fs::path(__FILE__).parent_path();

std::string pattern(std::size_t size) {
  std::string data(size, '\0');
  for (std::size_t i = 0; i < size; ++i) {
    data[i] = static_cast<char>((i * 7 + i / 509) & 0xff);
  }
  return data;
}

void write_file(const fs::path& path, const std::string& bytes) {
  std::ofstream out(path, std::ios::binary);
  out.write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
  REQUIRE(out.good());
}

std::string read_file(const fs::path& path) {
  std::ifstream in(path, std::ios::binary);
  return std::string(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
}

// A folder to serve, and a secret beside it that must never be served.
struct Site {
  TempDir top{"lab13"};
  fs::path root = top.path() / "root";
  fs::path secret = top.path() / "secret.txt";
  std::string big = pattern(300'000);

  Site() {
    fs::create_directories(root / "sub");
    write_file(root / "a.txt", "hello\n");
    write_file(root / "big.bin", big);
    write_file(root / "sub" / "index.html", "<p>sub</p>\n");
    write_file(secret, "TOP SECRET\n");
    fs::create_symlink(secret, root / "escape.txt");             // a link out of the root
    fs::create_directory_symlink(top.path(), root / "up");       // a folder link out of it
    fs::create_symlink(root / "a.txt", root / "inside.txt");     // a link that stays inside
  }
  [[nodiscard]] std::string url(const ServerProcess& server, const std::string& path) const {
    return "http://127.0.0.1:" + std::to_string(server.port()) + path;
  }
};

ServerProcess start_server(const Site& site, std::vector<std::string> extra = {}) {
  std::vector<std::string> args{"--root", site.root.string(), "--idle-timeout", "1", "--request-timeout", "2"};
  args.insert(args.end(), extra.begin(), extra.end());
  return ServerProcess::start(kServer, args);
}

Fd connect_to(const ServerProcess& server) {
  Fd socket = lab::tcp_connect(lab::Endpoint{"127.0.0.1", server.port()});
  lab::set_receive_timeout(socket, 5s);
  return socket;
}

struct Response {
  int status = 0;
  std::string head;  // the whole head, lower-cased names and all, for find()
  std::string body;
};

std::string lower(std::string text) {
  for (char& c : text) {
    c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  }
  return text;
}

// One response with a Content-Length (all of the server's have one), read
// with this test's own parsing. With `head_only` (a HEAD request) no body.
std::optional<Response> read_response(lab::http::ByteReader& reader, bool head_only = false) {
  const std::optional<std::string> status_line = reader.read_line(16 * 1024);
  if (!status_line) {
    return std::nullopt;
  }
  Response response;
  REQUIRE_MESSAGE(status_line->rfind("HTTP/1.1 ", 0) == 0, "a status line, got ", *status_line);
  response.status = std::atoi(status_line->substr(9, 3).c_str());
  std::size_t length = 0;
  for (int lines = 0; lines < 100; ++lines) {
    const std::optional<std::string> line = reader.read_line(16 * 1024);
    REQUIRE_MESSAGE(line.has_value(), "the connection closed inside the response head");
    if (line->empty()) {
      break;
    }
    const std::string field = lower(*line);
    response.head += field + "\n";
    if (field.rfind("content-length:", 0) == 0) {
      length = static_cast<std::size_t>(std::atoll(field.substr(15).c_str()));
    }
  }
  if (!head_only) {
    while (response.body.size() < length) {
      if (reader.buffered().empty()) {
        REQUIRE_MESSAGE(reader.fill(), "the connection closed inside the body");
      }
      const std::size_t take = std::min(length - response.body.size(), reader.buffered().size());
      response.body += reader.buffered().substr(0, take);
      reader.consume(take);
    }
  }
  return response;
}

// Has the server closed `socket`? Reads (and drops) whatever is still
// coming, for up to `timeout`: true at end of stream or a reset.
bool closed_by_server(const Fd& socket, std::chrono::milliseconds timeout) {
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  while (std::chrono::steady_clock::now() < deadline) {
    pollfd entry{socket.get(), POLLIN, 0};
    if (::poll(&entry, 1, 100) <= 0) {
      continue;
    }
    char buffer[65536];
    const ssize_t got = ::recv(socket.get(), buffer, sizeof buffer, 0);
    if (got <= 0) {
      return true;
    }
  }
  return false;
}

// One request on its own connection; the response to it.
Response ask(const ServerProcess& server, const std::string& request) {
  const Fd socket = connect_to(server);
  lab::write_all(socket, request);
  lab::http::ByteReader reader = lab::http::ByteReader::of_socket(socket);
  std::optional<Response> response = read_response(reader);
  REQUIRE_MESSAGE(response.has_value(), "no response to the request ", request.substr(0, 60));
  return *response;
}

Response get(const ServerProcess& server, const std::string& target) {
  return ask(server, "GET " + target + " HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n");
}

void abort_connection(Fd& socket) {
  const linger abort_on_close{1, 0};
  REQUIRE(::setsockopt(socket.get(), SOL_SOCKET, SO_LINGER, &abort_on_close, sizeof abort_on_close) == 0);
  socket.reset();  // RST instead of FIN
}

bool exited_with(const lab::testing::ProgramResult& result, int code) {
  return result.status == lab::ExitStatus{code, 0} && !result.timed_out;
}

// The first executable `name` in $PATH, or "".
std::string find_tool(const std::string& name) {
  const char* path = std::getenv("PATH");
  std::string_view rest = path == nullptr ? "/usr/bin:/bin" : path;
  while (!rest.empty()) {
    const std::size_t colon = rest.find(':');
    const fs::path candidate = fs::path(rest.substr(0, colon)) / name;
    if (::access(candidate.c_str(), X_OK) == 0) {
      return candidate.string();
    }
    rest = colon == std::string_view::npos ? std::string_view{} : rest.substr(colon + 1);
  }
  return "";
}

// A Python test server (tests/13_http/*.py) started with its ready line read.
struct PythonServer {
  lab::Child child;
  std::uint16_t port = 0;

  PythonServer(const std::string& python, const std::string& script, std::vector<std::string> args) {
    std::vector<std::string> argv{python, (kTestDir / script).string()};
    argv.insert(argv.end(), args.begin(), args.end());
    child = lab::Child::spawn(argv);
    lab::LineReader reader(child.output());
    const std::optional<std::string> line = reader.next_line(10s);
    const std::string prefix = "listening on ";
    REQUIRE_MESSAGE((line && line->rfind(prefix, 0) == 0), script, " printed no ready line");
    port = lab::Endpoint::parse(line->substr(prefix.size())).port;
  }
  ~PythonServer() { child.stop(2s); }
  PythonServer(const PythonServer&) = delete;
  PythonServer& operator=(const PythonServer&) = delete;
};

}  // namespace

TEST_CASE("13.p the client downloads a file byte for byte and saves it through a temporary file") {
  Site site;
  ServerProcess server = start_server(site);
  const TempDir out("lab13out");
  const auto saved = lab::testing::run({kClient, site.url(server, "/big.bin"), "--output", out.file("big.bin")}, "", 10s);
  INFO(saved.describe());
  INFO(server.stop_and_describe());
  REQUIRE(exited_with(saved, 0));
  CHECK_MESSAGE(read_file(out.file("big.bin")) == site.big, "the saved file differs from the served one");
  std::size_t entries = 0;
  for (const auto& entry : fs::directory_iterator(out.path())) {
    CHECK_MESSAGE(entry.path().filename() == "big.bin", "left behind: ", entry.path().filename().string());
    ++entries;
  }
  CHECK(entries == 1);
  const auto printed = lab::testing::run({kClient, site.url(server, "/a.txt")}, "", 10s);
  INFO(printed.describe());
  CHECK(exited_with(printed, 0));
  CHECK_MESSAGE(printed.out == "hello\n", "the body on stdout, nothing else");
}

TEST_CASE("13.p the client exits 1 with one clear line for a 404 or a refused connection, leaving no file") {
  Site site;
  ServerProcess server = start_server(site);
  const TempDir out("lab13out");
  const auto missing = lab::testing::run({kClient, site.url(server, "/missing.txt"), "--output", out.file("m")}, "", 10s);
  INFO(missing.describe());
  INFO(server.stop_and_describe());
  CHECK(exited_with(missing, 1));
  CHECK_MESSAGE(missing.err.find("404") != std::string::npos, "the error line names the status");
  CHECK_MESSAGE(std::count(missing.err.begin(), missing.err.end(), '\n') == 1, "one line on stderr");
  CHECK_MESSAGE(fs::is_empty(out.path()), "a failed download leaves no file");

  const lab::testing::RefusingPort refusing;
  const auto refused =
      lab::testing::run({kClient, "http://127.0.0.1:" + std::to_string(refusing.port) + "/"}, "", 10s);
  INFO(refused.describe());
  CHECK(exited_with(refused, 1));
  CHECK(refused.err.find("refused") != std::string::npos);
}

TEST_CASE("13.p the server answers several requests on one connection, HEAD without a body") {
  Site site;
  ServerProcess server = start_server(site);
  INFO(server.stop_and_describe());
  const Fd socket = connect_to(server);
  // Two requests in one write (pipelined): the server must not lose the
  // second one in its read-ahead buffer.
  lab::write_all(socket, "GET /a.txt HTTP/1.1\r\nHost: t\r\n\r\nHEAD /big.bin HTTP/1.1\r\nhost: t\r\n\r\n");
  lab::http::ByteReader reader = lab::http::ByteReader::of_socket(socket);
  const auto first = read_response(reader);
  REQUIRE(first.has_value());
  CHECK(first->status == 200);
  CHECK(first->body == "hello\n");
  CHECK(first->head.find("connection: close") == std::string::npos);
  const auto second = read_response(reader, true);
  REQUIRE(second.has_value());
  CHECK(second->status == 200);
  CHECK_MESSAGE(second->head.find("content-length: 300000") != std::string::npos, second->head);
  lab::write_all(socket, "GET /sub/ HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n");
  const auto third = read_response(reader);
  REQUIRE_MESSAGE(third.has_value(), "HEAD must send no body: the next response would be out of step");
  CHECK(third->status == 200);
  CHECK(third->body == "<p>sub</p>\n");
  CHECK_MESSAGE(reader.buffered().empty(), "bytes after the last response");
  CHECK_MESSAGE(closed_by_server(socket, 3s), "Connection: close, yet the connection stayed open");
}

TEST_CASE("13.p the server never serves a file outside its root") {
  Site site;
  ServerProcess server = start_server(site);
  INFO(server.stop_and_describe());
  CHECK(get(server, "/inside.txt").status == 200);
  for (const std::string target :
       {"/../secret.txt", "/sub/../../secret.txt", "/%2e%2e/secret.txt", "/%2E%2E%2Fsecret.txt", "/sub/%2e%2e/%2e%2e/secret.txt",
        "/escape.txt", "/up/secret.txt", "/up/root/../secret.txt", "/..%2f..%2f..%2f..%2fetc%2fpasswd", "/../../../../etc/passwd",
        "/a.txt%00.html", "secret.txt", "/%zz"}) {
    CAPTURE(target);
    const Response response = get(server, target);
    CHECK_MESSAGE((response.status == 403 || response.status == 404 || response.status == 400), "status ", response.status);
    CHECK(response.body.find("SECRET") == std::string::npos);
    CHECK(response.body.find("root:") == std::string::npos);
  }
}

TEST_CASE("13.p the server answers 405, 505, 400 and 431, closing after a broken request") {
  Site site;
  ServerProcess server = start_server(site);
  INFO(server.stop_and_describe());
  const Response post = ask(server, "POST /a.txt HTTP/1.1\r\nHost: t\r\nContent-Length: 3\r\nConnection: close\r\n\r\nabc");
  CHECK(post.status == 405);
  CHECK(post.head.find("allow: get, head") != std::string::npos);
  CHECK(ask(server, "GET /a.txt HTTP/2.0\r\nHost: t\r\n\r\n").status == 505);
  CHECK_MESSAGE(ask(server, "GET /a.txt HTTP/1.1\r\n\r\n").status == 400, "HTTP/1.1 without Host");
  CHECK(ask(server, "GET /a.txt HTTP/1.1\r\nHost : t\r\n\r\n").status == 400);
  CHECK(ask(server, "GET /a.txt HTTP/1.1\r\nHost: t\r\nContent-Length: 2000000\r\n\r\n").status == 413);

  // A 100 KiB header field: refused, and the connection closed.
  const Fd socket = connect_to(server);
  const std::string huge = "GET /a.txt HTTP/1.1\r\nHost: t\r\nX-Big: " + std::string(100 * 1024, 'x') + "\r\n\r\n";
  try {
    lab::write_all(socket, huge);
  } catch (const std::system_error&) {
    // The server may close before reading it all: that is allowed.
  }
  lab::http::ByteReader reader = lab::http::ByteReader::of_socket(socket);
  std::optional<Response> refused;
  try {
    refused = read_response(reader);
  } catch (const std::system_error& error) {
    FAIL("the 431 was lost in a reset: ", error.what(), " (close only after reading what the client sent)");
  }
  REQUIRE(refused.has_value());
  CHECK((refused->status == 431 || refused->status == 400));
  CHECK_MESSAGE(closed_by_server(socket, 3s), "the connection stayed open after a refused header");
  CHECK_MESSAGE(get(server, "/a.txt").status == 200, "the server goes on serving");
}

TEST_CASE("13.p the server drops a request that never ends at its deadline, serving others meanwhile") {
  Site site;
  ServerProcess server = start_server(site);
  INFO(server.stop_and_describe());
  Fd slow = connect_to(server);
  lab::write_all(slow, "GET /a.txt HTTP/1.1\r\nHost: t\r\n");
  const auto started = std::chrono::steady_clock::now();
  bool closed = false;
  // One header byte every 100 ms: never silent for the idle deadline (1 s),
  // so only the request deadline (2 s) can end it.
  for (int i = 0; i < 60 && !closed; ++i) {
    if (i == 3) {
      CHECK_MESSAGE(get(server, "/a.txt").status == 200, "another client waits while one trickles");
    }
    try {
      lab::write_all(slow, "X");
    } catch (const std::system_error&) {
      closed = true;
      break;
    }
    closed = closed_by_server(slow, 100ms);
  }
  const auto took = std::chrono::steady_clock::now() - started;
  CHECK_MESSAGE(closed, "a request trickling for 6 s was never cut off");
  CHECK_MESSAGE(took < 4s, "cut off after ", std::chrono::duration_cast<std::chrono::milliseconds>(took).count(),
                " ms; the request deadline was 2 s");
  CHECK(get(server, "/a.txt").status == 200);
}

TEST_CASE("13.p the server drops a client that never reads at the send deadline, serving others") {
  Site site;
  write_file(site.root / "huge.bin", pattern(16 * 1024 * 1024));
  ServerProcess server = start_server(site);
  INFO(server.stop_and_describe());
  Fd reluctant = lab::tcp_connect(lab::Endpoint{"127.0.0.1", server.port()});
  lab::testing::set_buffer_sizes(reluctant, 4096, 4096);
  lab::write_all(reluctant, "GET /huge.bin HTTP/1.1\r\nHost: t\r\n\r\n");
  CHECK_MESSAGE(get(server, "/a.txt").status == 200, "another client waits while one does not read");
  // The server says so when it drops a connection: wait for that line.
  lab::LineReader lines(server.child().output());
  bool dropped = false;
  const auto deadline = std::chrono::steady_clock::now() + 8s;
  while (!dropped && std::chrono::steady_clock::now() < deadline) {
    try {
      const std::optional<std::string> line = lines.next_line(500ms);
      if (!line) {
        break;
      }
      dropped = line->find("dropped") != std::string::npos || line->find("lost") != std::string::npos;
    } catch (const lab::TimeoutError&) {
    }
  }
  CHECK_MESSAGE(dropped, "no 'dropped' line from the server within 8 s");
  abort_connection(reluctant);
  // (No draining afterwards to count the bytes: with the window closed,
  // the kernel hands the rest of its send buffer out in ever slower
  // zero-window probes. The server's own line is the evidence.)
  CHECK(get(server, "/a.txt").status == 200);
}

TEST_CASE("13.p the server survives garbage, resets mid-request and a storm of connections") {
  Site site;
  ServerProcess server = start_server(site, {"--max-clients", "16"});
  INFO(server.stop_and_describe());
  for (const std::string garbage : {"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03", "\r\n\r\n\r\n", "GET\n\n", "hello\n"}) {
    const Fd socket = connect_to(server);
    lab::write_all(socket, garbage);
    CHECK_MESSAGE(closed_by_server(socket, 4s), "garbage ", garbage.size(), " bytes: connection left open");
  }
  for (int i = 0; i < 5; ++i) {
    Fd rude = connect_to(server);
    lab::write_all(rude, "GET /big.bin HTTP/1.1\r\nHo");
    abort_connection(rude);
    Fd reader_gone = connect_to(server);
    lab::write_all(reader_gone, "GET /big.bin HTTP/1.1\r\nHost: t\r\n\r\n");
    abort_connection(reader_gone);
  }
  std::vector<Fd> storm;
  for (int i = 0; i < 100; ++i) {
    storm.push_back(lab::tcp_connect(lab::Endpoint{"127.0.0.1", server.port()}));
  }
  storm.clear();
  // The storm's children end as their connections close; until then a new
  // client may be turned away (closed at once). Bounded retries.
  std::string status_line;
  for (int attempt = 0; attempt < 100 && status_line.rfind("HTTP/1.1 200", 0) != 0; ++attempt) {
    try {
      const Fd socket = connect_to(server);
      lab::write_all(socket, "GET /a.txt HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n");
      lab::http::ByteReader reader = lab::http::ByteReader::of_socket(socket);
      status_line = reader.read_line(1024).value_or("");
    } catch (const std::exception&) {
      // turned away: a reset, or closed before a response
    }
    if (status_line.rfind("HTTP/1.1 200", 0) != 0) {
      std::this_thread::sleep_for(50ms);
    }
  }
  REQUIRE_MESSAGE(status_line.rfind("HTTP/1.1 200", 0) == 0, "no client served after the storm: ", status_line);
  const Response response = get(server, "/a.txt");
  CHECK(response.status == 200);
  CHECK(response.body == "hello\n");
}

TEST_CASE("13.p curl downloads from the server byte for byte and reuses one connection") {
  const std::string curl = find_tool("curl");
  if (curl.empty()) {
    MESSAGE("curl is not installed: this case is skipped (CI installs it)");
    return;
  }
  Site site;
  ServerProcess server = start_server(site);
  INFO(server.stop_and_describe());
  const TempDir out("lab13curl");
  const auto fetched = lab::testing::run({curl, "-s", "-o", out.file("big.bin"), site.url(server, "/big.bin")}, "", 10s);
  INFO(fetched.describe());
  REQUIRE(exited_with(fetched, 0));
  CHECK(read_file(out.file("big.bin")) == site.big);
  const auto twice =
      lab::testing::run({curl, "-v", "-s", site.url(server, "/a.txt"), site.url(server, "/sub/index.html")}, "", 10s);
  INFO(twice.describe());
  CHECK(exited_with(twice, 0));
  CHECK(twice.out.find("hello\n") != std::string::npos);
  CHECK(twice.out.find("<p>sub</p>") != std::string::npos);
  CHECK_MESSAGE((twice.err.find("Re-using existing connection") != std::string::npos ||
                 twice.err.find("Reusing existing connection") != std::string::npos),
                "curl opened a second connection: keep-alive did not work");
}

TEST_CASE("13.p the client downloads from Python's http.server, a chunked body and one ended by the close") {
  const std::string python = find_tool("python3");
  if (python.empty()) {
    MESSAGE("python3 is not installed: this case is skipped (CI installs it)");
    return;
  }
  Site site;
  const TempDir out("lab13py");
  {
    PythonServer folder(python, "serve_folder.py", {site.root.string()});
    const std::string url = "http://127.0.0.1:" + std::to_string(folder.port) + "/big.bin";
    const auto saved = lab::testing::run({kClient, url, "--output", out.file("big.bin")}, "", 10s);
    INFO(saved.describe());
    CHECK(exited_with(saved, 0));
    CHECK(read_file(out.file("big.bin")) == site.big);
  }
  PythonServer framed(python, "serve_chunked.py", {});
  for (const std::string kind : {"chunked", "close"}) {
    CAPTURE(kind);
    const std::string url = "http://127.0.0.1:" + std::to_string(framed.port) + "/" + kind + "/200000";
    const auto saved = lab::testing::run({kClient, url, "--output", out.file(kind)}, "", 10s);
    INFO(saved.describe());
    CHECK(exited_with(saved, 0));
    CHECK(read_file(out.file(kind)) == pattern(200'000));
  }
}
