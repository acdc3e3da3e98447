// Lesson 13 — a small HTTP/1.1 file server over a raw TCP socket. GET and
// HEAD of the files under --root, several requests per connection
// (keep-alive), one forked process per connection, at most --max-clients of
// them. It never serves a file outside --root, whatever the path says.
//
//   build/default/lessons/13_http/server --root lessons       (127.0.0.1:9013)
//   curl -v http://127.0.0.1:9013/13_http/README.md
//   build/default/lessons/13_http/client http://127.0.0.1:9013/13_http/README.md
#include <fcntl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include <array>
#include <cerrno>
#include <climits>
#include <cstdlib>
#include <ctime>
#include <string>
#include <system_error>

#include "http.hpp"
#include "lab/deadline.hpp"
#include "lab/error.hpp"
#include "lab/forked.hpp"
#include "lab/io.hpp"
#include "lab/program.hpp"
#include "lab/socket.hpp"
#include "lab/text.hpp"

namespace {

namespace http = lab::http;

// A request body is not used by GET or HEAD, but it must still be read (and
// thrown away) or its bytes would be taken for the next request.
constexpr std::uint64_t kMaxRequestBody = 1024 * 1024;
constexpr std::size_t kFileReadSize = 64 * 1024;

std::string reason_of(int status) {
  switch (status) {
    case 200: return "OK";
    case 400: return "Bad Request";
    case 403: return "Forbidden";
    case 404: return "Not Found";
    case 405: return "Method Not Allowed";
    case 408: return "Request Timeout";
    case 413: return "Content Too Large";
    case 414: return "URI Too Long";
    case 431: return "Request Header Fields Too Large";
    case 505: return "HTTP Version Not Supported";
    default: return "Internal Server Error";
  }
}

// The Date field (RFC 9110 §5.6.7): "Sun, 06 Nov 1994 08:49:37 GMT".
std::string http_date() {
  const std::time_t now = std::time(nullptr);
  std::tm utc{};
  ::gmtime_r(&now, &utc);
  std::array<char, 64> text{};
  const std::size_t length = std::strftime(text.data(), text.size(), "%a, %d %b %Y %H:%M:%S GMT", &utc);
  return std::string(text.data(), length);
}

// The status line and header of a response. Every line ends in CRLF, and
// the header ends with an empty line: "\r\n\r\n" on the wire.
std::string response_head(int status, const std::string& type, std::uint64_t length, bool keep_alive,
                          const std::string& extra = "") {
  std::string head = "HTTP/1.1 " + std::to_string(status) + " " + reason_of(status) + "\r\n";
  head += "Date: " + http_date() + "\r\n";
  head += "Server: lab13\r\n";
  head += "Content-Type: " + type + "\r\n";
  head += "Content-Length: " + std::to_string(length) + "\r\n";
  head += extra;
  head += keep_alive ? "Connection: keep-alive\r\n" : "Connection: close\r\n";
  head += "\r\n";
  return head;
}

void send_error(const lab::Fd& connection, int status, bool keep_alive, bool head_only,
                const std::string& extra = "") {
  const std::string body = std::to_string(status) + " " + reason_of(status) + "\n";
  std::string reply = response_head(status, "text/plain; charset=utf-8", body.size(), keep_alive, extra);
  if (!head_only) {
    reply += body;
  }
  lab::write_all(connection, reply);
}

int hex_value(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

// The path part of a target, percent-decoded: "/a%20b?x" -> "/a b".
// Returns nullopt for what no file can be named: no leading '/', a broken
// %-escape, or a NUL byte (which would end the path early in open(2)).
std::optional<std::string> decoded_path(const std::string& target) {
  const std::string path = target.substr(0, target.find('?'));
  if (path.empty() || path.front() != '/') {
    return std::nullopt;
  }
  std::string out;
  for (std::size_t i = 0; i < path.size(); ++i) {
    if (path[i] != '%') {
      out += path[i];
      continue;
    }
    if (i + 2 >= path.size() || hex_value(path[i + 1]) < 0 || hex_value(path[i + 2]) < 0) {
      return std::nullopt;
    }
    out += static_cast<char>(hex_value(path[i + 1]) * 16 + hex_value(path[i + 2]));
    i += 2;
  }
  if (out.find('\0') != std::string::npos) {
    return std::nullopt;
  }
  return out;
}

std::string content_type(const std::string& path) {
  const std::size_t dot = path.rfind('.');
  const std::string ext = dot == std::string::npos ? "" : path.substr(dot);
  if (ext == ".html" || ext == ".htm") return "text/html; charset=utf-8";
  if (ext == ".txt" || ext == ".md") return "text/plain; charset=utf-8";
  if (ext == ".css") return "text/css";
  if (ext == ".js") return "text/javascript";
  if (ext == ".json") return "application/json";
  if (ext == ".png") return "image/png";
  if (ext == ".jpg" || ext == ".jpeg") return "image/jpeg";
  return "application/octet-stream";
}

// The file a path names under `root` (a realpath, without a trailing '/'),
// opened; or the status to answer instead (403, 404).
//
// A path is text from the network: "/../../etc/passwd", "/%2e%2e/x" (which
// decodes to "/../x"), or a symlink inside the root that points outside it.
// Checking the text for ".." misses the symlink, and checking realpath(3)
// of the name before open leaves a gap in which the name can change. So we
// open first, then ask the kernel what we actually opened: the link
// /proc/self/fd/N names the opened file's real path, symlinks and ".."
// resolved. Outside the root: close it and answer 403.
struct Opened {
  lab::Fd file;
  std::uint64_t size = 0;
  std::string path;
  int status = 200;
};

Opened open_under_root(const std::string& root, const std::string& path) {
  std::string name = root + path;
  if (!name.empty() && name.back() == '/') {
    name += "index.html";
  }
  Opened opened;
  // O_NONBLOCK: opening a FIFO someone left in the root must not block us.
  opened.file = lab::Fd{::open(name.c_str(), O_RDONLY | O_CLOEXEC | O_NONBLOCK)};
  if (!opened.file) {
    opened.status = (errno == EACCES || errno == EPERM) ? 403 : 404;
    return opened;
  }
  std::array<char, PATH_MAX> real{};
  const std::string link = "/proc/self/fd/" + std::to_string(opened.file.get());
  const ssize_t length = ::readlink(link.c_str(), real.data(), real.size() - 1);
  const std::string real_path = length > 0 ? std::string(real.data(), static_cast<std::size_t>(length)) : "";
  if (real_path.rfind(root + "/", 0) != 0) {
    opened.status = 403;  // outside the root (or unknown): never served
    opened.file.reset();
    return opened;
  }
  struct stat info {};
  if (::fstat(opened.file.get(), &info) != 0 || !S_ISREG(info.st_mode)) {
    opened.status = S_ISDIR(info.st_mode) ? 403 : 404;  // no directory listings
    opened.file.reset();
    return opened;
  }
  opened.size = static_cast<std::uint64_t>(info.st_size);
  opened.path = real_path;
  return opened;
}

// Does the client want the connection kept open after this response?
// HTTP/1.1: yes unless "Connection: close"; HTTP/1.0: no (we do not
// implement 1.0's "keep-alive" extension).
bool keep_alive_wanted(const http::RequestHead& request) {
  if (request.minor_version == 0) {
    return false;
  }
  std::string connection = request.fields.get("connection").value_or("");
  for (char& c : connection) {
    c = http::Fields::ascii_lower(c);
  }
  return connection.find("close") == std::string::npos;
}

// Answers one request whose head and body were read. Returns whether the
// connection stays open.
bool answer(const lab::Fd& connection, const std::string& root, const http::RequestHead& request,
            lab::ClientClock& clock) {
  const bool keep_alive = keep_alive_wanted(request);
  const bool head_only = request.method == "HEAD";
  if (request.method != "GET" && !head_only) {
    send_error(connection, 405, keep_alive, false, "Allow: GET, HEAD\r\n");
    return keep_alive;
  }
  // RFC 9112 §3.2: a 1.1 request without exactly one Host field gets 400.
  if (request.minor_version == 1 && request.fields.all("host").size() != 1) {
    send_error(connection, 400, false, head_only);
    return false;
  }
  const std::optional<std::string> path = decoded_path(request.target);
  if (!path) {
    send_error(connection, 400, false, head_only);
    return false;
  }
  Opened file = open_under_root(root, *path);
  lab::say("{} {} -> {}", request.method, lab::preview(request.target, 80), file.status);
  if (file.status != 200) {
    send_error(connection, file.status, keep_alive, head_only);
    return keep_alive;
  }
  lab::write_all(connection, response_head(200, content_type(file.path), file.size, keep_alive));
  if (head_only) {
    return keep_alive;
  }
  // The body, a piece at a time: a large file is never held in memory. Each
  // write_all gives up after the send deadline (SO_SNDTIMEO, set by the
  // ClientClock) if the client stops reading; clock.check() ends a download
  // that takes longer than the request deadline altogether.
  std::string buffer(kFileReadSize, '\0');
  std::uint64_t left = file.size;
  while (left > 0) {
    const ssize_t got = ::read(file.file.get(), buffer.data(), buffer.size());
    if (got < 0 && errno == EINTR) {
      lab::throw_if_stop_requested();
      continue;
    }
    if (got <= 0) {
      // The file shrank under us: we promised Content-Length bytes and
      // cannot keep the promise, so the only honest move is to close.
      throw lab::ProtocolError("the file changed while it was being sent");
    }
    const std::size_t used = static_cast<std::size_t>(std::min<std::uint64_t>(left, static_cast<std::uint64_t>(got)));
    clock.check();
    lab::write_all(connection, std::string_view(buffer.data(), used));
    left -= used;
  }
  return keep_alive;
}

// Closing a socket with unread bytes in its receive buffer makes the kernel
// send a reset (RST), which can destroy the error response we just sent
// before the client has read it. So: stop sending (FIN after our reply),
// read and throw away what the client still sends, for a short while, then
// close. ("Lingering close", RFC 9112 §9.6.)
void lingering_close(const lab::Fd& connection) {
  ::shutdown(connection.get(), SHUT_WR);
  lab::set_receive_timeout(connection, std::chrono::milliseconds(500));
  try {
    for (int reads = 0; reads < 64; ++reads) {
      if (!lab::read_some(connection, 16 * 1024)) {
        return;
      }
    }
  } catch (const std::exception&) {
    // A reset or the timeout: either way we are done.
  }
}

// One connection: requests one after another until the client closes, asks
// to close, breaks the protocol or runs out of time.
void converse(const lab::Fd& connection, const std::string& root, lab::ClientClock& clock) {
  // The reader waits with the clock before every read: a silent client
  // ends at the idle deadline, a trickling one at the request deadline.
  http::ByteReader reader([&](std::size_t max_bytes) {
    clock.wait_readable();
    std::optional<std::string> bytes = lab::read_some(connection, max_bytes);
    if (bytes) {
      clock.request_started();
    }
    return bytes;
  });
  for (;;) {
    std::optional<http::RequestHead> request;
    try {
      request = http::read_request_head(reader);
      if (!request) {
        return;  // the client closed between requests: the normal end
      }
      http::read_body(reader, http::request_framing(*request), kMaxRequestBody, [](std::string_view) {});
    } catch (const http::HttpError& error) {
      lab::say("bad request: {} ({})", error.what(), error.status());
      send_error(connection, error.status(), false, false);
      lingering_close(connection);
      return;
    } catch (const lab::TimeoutError& error) {
      // RFC 9110 §15.5.9: 408 tells a client we gave up waiting, best effort.
      if (!reader.buffered().empty()) {
        send_error(connection, 408, false, false);
      }
      throw;
    }
    if (!answer(connection, root, *request, clock)) {
      return;
    }
    clock.request_done();
  }
}

}  // namespace

int main(int argc, char** argv) {
  lab::ProgramSpec spec = lab::server_spec(13, "HTTP/1.1 file server: GET and HEAD of the files under --root");
  spec.options.push_back({"root", "DIR", "the folder to serve (required)", ""});
  spec.options.push_back({"max-clients", "N", "connections served at once; more are turned away", "32"});
  lab::add_deadline_options(spec, {std::chrono::seconds(10), std::chrono::seconds(30)});
  return lab::run_program(argc, argv, spec, [](const lab::Args& args) {
    if (args.get("root").empty()) {
      throw lab::UsageError("--root DIR is required: the folder to serve");
    }
    // The root as the kernel names it (symlinks and ".." resolved): the
    // prefix every file we open must have.
    char* resolved = ::realpath(args.get("root").c_str(), nullptr);
    if (resolved == nullptr) {
      throw lab::os_error("realpath " + args.get("root"));
    }
    std::string root(resolved);
    std::free(resolved);  // NOLINT: realpath(3) allocates with malloc
    if (root == "/") {
      root.clear();  // so that root + "/" is "/"
    }
    const auto max_clients = static_cast<std::size_t>(args.get_int("max-clients", 1, 4096));
    const lab::ClientDeadlines deadlines = lab::deadline_options(args);

    const lab::Fd listener = lab::tcp_listen(args.endpoint());
    lab::announce_listening(listener);
    lab::say("serving {}", root.empty() ? "/" : root);
    lab::ForkedChildren children(max_clients);  // its destructor kills and reaps what is left
    std::size_t served = 0;
    while (auto client = lab::accept_client(listener, lab::process_stop(), children)) {
      try {
        children.start([&] {
          const int fd = listener.get();
          ::close(fd);  // only the parent accepts
          try {
            lab::ClientClock clock(client->socket, deadlines);
            converse(client->socket, root, clock);
          } catch (const lab::ProtocolError& error) {
            lab::say("{} dropped: {}", client->peer.to_string(), error.what());
            return 1;
          } catch (const std::system_error& error) {
            lab::say("{} lost: {}", client->peer.to_string(), error.what());
            return 1;
          }
          return 0;
        });
        ++served;
      } catch (const std::exception& error) {
        // Too many connections already, or short of processes: a 503 would
        // need us to read the request first; a closed connection is enough.
        lab::say("{} turned away: {}", client->peer.to_string(), error.what());
      }
    }
    children.stop_all(std::chrono::milliseconds(3000));
    lab::say("stopped after {} connection(s)", served);
    return 0;
  });
}
