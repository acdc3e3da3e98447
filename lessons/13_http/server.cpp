// Lesson 13 — a small HTTP/1.1 file server over a raw TCP socket. GET and
// HEAD of the files under --root, several requests per connection
// (keep-alive), one forked process per connection, at most --max-clients of
// them. It never serves a file outside --root, whatever the path says.
//
//   build/default/lessons/13_http/server --root lessons       (127.0.0.1:9013)
//   curl -v http://127.0.0.1:9013/13_http/README.md
//   build/default/lessons/13_http/client http://127.0.0.1:9013/13_http/README.md
#include <unistd.h>

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
#include "responses.hpp"     // response_head, send_error, keep_alive_wanted, lingering_close
#include "static_files.hpp"  // served_root, decoded_path, open_under_root, send_file

namespace {

namespace http = lab::http;

// A request body is not used by GET or HEAD, but it must still be read (and
// thrown away) or its bytes would be taken for the next request.
constexpr std::uint64_t kMaxRequestBody = 1024 * 1024;

// Answers one request whose head and body were read. Returns whether the
// connection stays open.
bool answer(const lab::Fd& connection, const std::string& root, const http::RequestHead& request,
            lab::ClientClock& clock) {
  const bool keep_alive = http::keep_alive_wanted(request);
  const bool head_only = request.method == "HEAD";
  if (request.method != "GET" && !head_only) {
    http::send_error(connection, 405, keep_alive, false, "Allow: GET, HEAD\r\n");
    return keep_alive;
  }
  // RFC 9112 §3.2: a 1.1 request without exactly one Host field gets 400.
  if (request.minor_version == 1 && request.fields.all("host").size() != 1) {
    http::send_error(connection, 400, false, head_only);
    return false;
  }
  const std::optional<std::string> path = http::decoded_path(request.target);
  if (!path) {
    http::send_error(connection, 400, false, head_only);
    return false;
  }
  http::Opened file = http::open_under_root(root, *path);
  lab::say("{} {} -> {}", request.method, lab::preview(request.target, 80), file.status);
  if (file.status != 200) {
    http::send_error(connection, file.status, keep_alive, head_only);
    return keep_alive;
  }
  lab::write_all(connection, http::response_head(200, http::content_type(file.path), file.size, keep_alive));
  if (head_only) {
    return keep_alive;
  }
  http::send_file(connection, file, clock);
  return keep_alive;
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
      http::send_error(connection, error.status(), false, false);
      http::lingering_close(connection);
      return;
    } catch (const lab::TimeoutError& error) {
      // RFC 9110 §15.5.9: 408 tells a client we gave up waiting, best effort.
      if (!reader.buffered().empty()) {
        http::send_error(connection, 408, false, false);
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
    const std::string root = http::served_root(args.get("root"));
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
