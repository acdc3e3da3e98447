// Lesson 04 — the framed client: runs commands on the server and prints
// their stdout, stderr and exit status, each exactly (no reply can bleed
// into the next any more); or downloads files, keeping one only after its
// size and SHA-256 were checked.
//
//   build/default/lessons/04_struct_header/client date big "uname -a"
//   build/default/lessons/04_struct_header/client get notes.txt --to /tmp
#include <fmt/core.h>

#include <cstdio>
#include <string>
#include <string_view>

#include "lab/command.hpp"
#include "lab/error.hpp"
#include "lab/program.hpp"
#include "lab/socket.hpp"
#include "lab/text.hpp"
#include "struct_header.hpp"

namespace {

namespace sh = lab::struct_header;

sh::Frame expect_frame(const lab::Fd& connection, std::uint8_t type) {
  auto frame = sh::recv_frame(connection);
  if (!frame) {
    throw lab::ProtocolError("the server closed the connection");
  }
  if (frame->type == sh::kTypeError) {
    throw lab::ProtocolError("the server says: " + frame->payload);
  }
  if (frame->type != type) {
    throw lab::ProtocolError(fmt::format("expected a frame of type 0x{:02x}, got 0x{:02x}", type, frame->type));
  }
  return std::move(*frame);
}

void print_lines(std::string_view prefix, std::string_view text) {
  while (!text.empty()) {
    const std::size_t end = text.find('\n');
    lab::say("{}{}", prefix, text.substr(0, end));
    text.remove_prefix(end == std::string_view::npos ? text.size() : end + 1);
  }
}

// Returns false if the server refused the command (an unknown name).
bool run_command(const lab::Fd& connection, const std::string& command) {
  lab::say("$ {}", command);
  sh::send_frame(connection, sh::kTypeCommand, command);
  auto first = sh::recv_frame(connection);
  if (first && first->type == sh::kTypeError) {
    lab::say("[refused] {}", first->payload);
    return false;
  }
  if (!first || first->type != sh::kTypeStdout) {
    throw lab::ProtocolError("expected the command's stdout");
  }
  const std::string out = std::move(first->payload);
  const std::string err = expect_frame(connection, sh::kTypeStderr).payload;
  const std::string status = expect_frame(connection, sh::kTypeExitStatus).payload;
  if (status.size() != 4) {
    throw lab::ProtocolError(fmt::format("an exit status of {} bytes, expected 4", status.size()));
  }
  std::fwrite(out.data(), 1, out.size(), stdout);
  std::fflush(stdout);
  print_lines("[stderr] ", err);
  const auto value = static_cast<unsigned char>(status[1]);
  const auto flags = static_cast<unsigned char>(status[2]);
  lab::say("[{} {}, {} bytes of stdout, {} of stderr{}{}]", status[0] == 0 ? "exited with status" : "killed by signal",
           value, out.size(), err.size(), (flags & 1) != 0 ? ", output cut" : "",
           (flags & 2) != 0 ? ", took too long" : "");
  return true;
}

}  // namespace

int main(int argc, char** argv) {
  lab::ProgramSpec spec = lab::client_spec(4, "framed client: run commands, or download files with 'get'");
  spec.options.push_back({"to", "DIR", "where 'get' saves files", "."});
  spec.positionals = "COMMAND... | get NAME...";
  spec.details = "Commands: " + lab::allowed_command_names() + ".\n";
  return lab::run_program(argc, argv, spec, [](const lab::Args& args) {
    const auto& words = args.positionals();
    if (words.empty()) {
      throw lab::UsageError("say what to do: a command (client date) or a download (client get NAME)");
    }
    const lab::Fd connection = lab::tcp_connect(args.endpoint());
    if (words.front() != "get") {
      bool all_ran = true;
      for (const std::string& command : words) {
        all_ran = run_command(connection, command) && all_ran;
      }
      return all_ran ? 0 : 1;
    }
    if (words.size() < 2) {
      throw lab::UsageError("get needs a file name: client get NAME");
    }
    for (std::size_t i = 1; i < words.size(); ++i) {
      try {
        const sh::Download saved = sh::download_file(connection, words[i], args.get("to"));
        lab::say("saved {}: {} bytes, sha256 {} (verified)", saved.path.string(), saved.size, saved.sha256_hex);
      } catch (const sh::DownloadError& error) {
        // One line, and the promise that matters: nothing half-written remains.
        throw sh::DownloadError(fmt::format("download of {} failed: {}; nothing was saved", words[i], error.what()));
      }
    }
    return 0;
  });
}
