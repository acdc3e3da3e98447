// Lesson 13 — an HTTP/1.1 client over a raw TCP socket: GET one URL, print
// the body on stdout or save it with --output (to a temporary file first,
// renamed into place only once the whole body arrived, as in lesson 04).
// It follows no redirect: any status but 2xx is an error (exit status 1).
//
//   build/default/lessons/13_http/client http://127.0.0.1:9013/13_http/README.md
//   build/default/lessons/13_http/client http://127.0.0.1:9013/big.bin --output big.bin
#include <fcntl.h>
#include <unistd.h>

#include <cstdio>
#include <filesystem>
#include <stdexcept>
#include <string>

#include "http.hpp"
#include "lab/error.hpp"
#include "lab/io.hpp"
#include "lab/program.hpp"
#include "lab/socket.hpp"
#include "lab/text.hpp"

namespace {

namespace http = lab::http;
namespace fs = std::filesystem;

// A file being downloaded: created under a temporary name beside its final
// name, renamed to it by commit(). Destroyed without commit (an error, a
// short body), it removes itself: a half download never looks like a file.
class PartialFile {
 public:
  explicit PartialFile(const fs::path& final_path) : final_path_(final_path) {
    const fs::path folder = final_path.has_parent_path() ? final_path.parent_path() : fs::path(".");
    std::string pattern = (folder / ("." + final_path.filename().string() + ".part-XXXXXX")).string();
    file_.reset(::mkostemp(pattern.data(), O_CLOEXEC));
    if (!file_) {
      throw lab::os_error("mkostemp " + pattern);
    }
    path_ = pattern;
  }
  ~PartialFile() {
    if (!committed_) {
      ::unlink(path_.c_str());
    }
  }
  PartialFile(const PartialFile&) = delete;
  PartialFile& operator=(const PartialFile&) = delete;

  void write(std::string_view bytes) { lab::write_all(file_, bytes); }

  void commit() {
    // fsync before rename: after a crash the final name must never point
    // at a file whose bytes never reached the disk.
    if (::fsync(file_.get()) != 0) {
      throw lab::os_error("fsync " + path_);
    }
    file_.reset();
    if (::rename(path_.c_str(), final_path_.c_str()) != 0) {
      throw lab::os_error("rename " + path_ + " to " + final_path_.string());
    }
    committed_ = true;
  }

 private:
  fs::path final_path_;
  std::string path_;
  lab::Fd file_;
  bool committed_ = false;
};

void write_stdout(std::string_view bytes) {
  if (std::fwrite(bytes.data(), 1, bytes.size(), stdout) != bytes.size()) {
    throw std::runtime_error("cannot write to stdout");
  }
}

}  // namespace

int main(int argc, char** argv) {
  lab::ProgramSpec spec;
  spec.lesson = 13;
  spec.name = "client";
  spec.summary = "HTTP/1.1 client: GET one http:// URL, print or save its body";
  spec.positionals = "URL";
  spec.options = {
      {"output", "FILE", "save the body to FILE (default: print it on stdout)", ""},
      {"timeout", "SECONDS", "give up when the server is silent for this long", "10"},
      {"max-bytes", "N", "refuse a body larger than this", "1073741824"},
      {"host", "HOST", "connect to HOST instead of the URL's host (the Host field still names the URL's)", ""},
      {"port", "PORT", "connect to PORT instead of the URL's port (and name it in the Host field)", ""},
  };
  return lab::run_program(argc, argv, spec, [](const lab::Args& args) {
    if (args.positionals().size() != 1) {
      throw lab::UsageError("give one URL, e.g. http://127.0.0.1:9013/index.html");
    }
    const std::chrono::seconds timeout(args.get_int("timeout", 1, 3600));
    const auto max_bytes = static_cast<std::uint64_t>(args.get_int("max-bytes", 0, 1LL << 50));
    http::Url url;
    try {
      url = http::parse_url(args.positionals().front());
    } catch (const std::invalid_argument& error) {
      throw lab::UsageError(std::string("bad URL: ") + error.what());
    }

    lab::Endpoint server{url.host, url.port};
    if (!args.get("host").empty()) {
      server.host = args.get("host");
    }
    if (!args.get("port").empty()) {
      server.port = static_cast<std::uint16_t>(args.get_int("port", 1, 65535));
    }
    const lab::Fd connection = lab::tcp_connect(server);
    // A server that stops sending must not hang us: every read gives up.
    lab::set_receive_timeout(connection, timeout);
    http::RequestSpec request;
    request.target = url.target;
    request.host = url.host;
    request.port = server.port;
    request.keep_alive = false;  // one request: ask the server to close after it
    lab::write_all(connection, http::build_request(request));

    // The response arrives in however many reads it takes: one recv is not
    // one response. The reader keeps what it read past the header for the body.
    http::ByteReader reader = http::ByteReader::of_socket(connection);
    http::ResponseHead head = http::read_response_head(reader);
    while (head.status >= 100 && head.status < 200) {
      head = http::read_response_head(reader);  // "100 Continue" and friends: not the answer yet
    }
    if (head.status < 200 || head.status > 299) {
      throw std::runtime_error("the server answered " + std::to_string(head.status) + " " +
                               lab::preview(head.reason, 60) + " for " + url.target);
    }
    const http::Framing framing = http::response_framing(head, "GET");
    if (args.get("output").empty()) {
      http::read_body(reader, framing, max_bytes, write_stdout);
      std::fflush(stdout);
      return 0;
    }
    PartialFile file(args.get("output"));
    const std::uint64_t size =
        http::read_body(reader, framing, max_bytes, [&](std::string_view piece) { file.write(piece); });
    file.commit();
    lab::warn("saved {} bytes to {}", size, args.get("output"));
    return 0;
  });
}
