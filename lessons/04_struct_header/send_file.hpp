// Lesson 04 — answering "get NAME": the file's size and SHA-256 in one frame,
// then exactly that many bytes in kTypeFileData frames. Given code.
#pragma once

#include <algorithm>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "deadline_send.hpp"
#include "digest_cache.hpp"
#include "lab/fd.hpp"
#include "lab/program.hpp"
#include "lab/text.hpp"
#include "served_file.hpp"
#include "struct_header.hpp"

namespace lab::file_server {

// Sends the size and SHA-256 (they go in the header, before the data), then
// the data in kFileChunk frames: exactly `size` bytes, the same ones that
// were hashed, whatever happens to the file meanwhile. Neither side ever
// holds more than one chunk of it.
inline void send_file(const Fd& connection, const Fd& directory, const std::string& name, DigestCache& cache,
                      Clock::time_point deadline) {
  namespace sh = struct_header;
  const Fd file = open_served_file(directory, name);
  const FileIdentity before = identity_of(file);
  sh::FileInfo info;
  info.size = before.size;
  info.sha256 = digest_of(file, before, name, cache, deadline);
  sh::send_frame(connection, sh::kTypeFileInfo, sh::encode_file_info(info));

  // One buffer: the frame header, then the chunk read straight after it, so
  // each frame leaves in one send(2) and nothing is copied in between.
  std::vector<char> frame(sh::kHeaderSize + sh::kFileChunk);
  for (std::uint64_t sent = 0; sent < info.size;) {
    check_stop_and_deadline(deadline);
    const std::size_t wanted = static_cast<std::size_t>(std::min<std::uint64_t>(sh::kFileChunk, info.size - sent));
    const std::size_t got = read_at(file, frame.data() + sh::kHeaderSize, wanted, sent);
    if (got == 0) {
      // The announced size can no longer be kept: say so in a frame, which
      // the client reads where it expected data.
      sh::send_frame(connection, sh::kTypeError, "the file shrank while it was being sent; try again");
      return;
    }
    const sh::HeaderBytes header = sh::encode_header({sh::kTypeFileData, static_cast<std::uint32_t>(got)});
    std::copy(header.begin(), header.end(), frame.begin());
    send_before(connection, std::string_view(frame.data(), sh::kHeaderSize + got), deadline);
    sent += got;
  }
  say("  sent {} ({} bytes, sha256 {})", preview(name), info.size, to_hex(info.sha256));
}

}  // namespace lab::file_server
