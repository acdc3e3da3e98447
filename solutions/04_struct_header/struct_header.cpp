// Reference solution of exercise 04 (lessons/04_struct_header/struct_header.hpp).
#include "struct_header.hpp"

#include <fcntl.h>
#include <fmt/core.h>
#include <stdlib.h>
#include <unistd.h>

#include <stdexcept>
#include <utility>

#include "lab/error.hpp"
#include "lab/io.hpp"

namespace lab::struct_header {

namespace {

static_assert(kHeaderSize == 2 + 1 + 1 + 4, "magic, version, type, length");
static_assert(kFileInfoSize == 40, "size, sha256");

// Big-endian: the most significant byte first, whatever this machine does.
void put_be(std::uint8_t* out, std::uint64_t value, std::size_t bytes) {
  for (std::size_t i = 0; i < bytes; ++i) {
    out[i] = static_cast<std::uint8_t>(value >> (8 * (bytes - 1 - i)));
  }
}

std::uint64_t get_be(const std::uint8_t* in, std::size_t bytes) {
  std::uint64_t value = 0;
  for (std::size_t i = 0; i < bytes; ++i) {
    value = (value << 8) | in[i];
  }
  return value;
}

// The temporary file of a download: removed when destroyed, unless kept.
class PartFile {
 public:
  explicit PartFile(const std::filesystem::path& directory, std::string_view name) {
    std::string file_name = ".";
    file_name.append(name).append(".part-XXXXXX");
    std::string pattern = (directory / file_name).string();
    fd_.reset(::mkostemp(pattern.data(), O_CLOEXEC));
    if (!fd_) {
      throw os_error("create a temporary file in " + directory.string());
    }
    path_ = pattern;  // mkostemp replaced the XXXXXX
  }
  ~PartFile() {
    if (!kept_) {
      ::unlink(path_.c_str());  // fails harmlessly if it is already gone
    }
  }
  PartFile(const PartFile&) = delete;
  PartFile& operator=(const PartFile&) = delete;

  [[nodiscard]] const Fd& fd() const noexcept { return fd_; }

  // Writes the next bytes of the download. Every kWritebackStep bytes it
  // also asks the kernel to start writing them to the disk now:
  // sync_file_range(2) with SYNC_FILE_RANGE_WRITE starts the writeback and
  // does not wait for it. The disk then works while the network does, and
  // the fsync at the end finds little left to do. (Only a hint: if it fails,
  // fsync still writes everything.)
  void write(std::string_view bytes) {
    write_all(fd_, bytes);
    written_ += bytes.size();
    if (written_ - started_ >= kWritebackStep) {
      ::sync_file_range(fd_.get(), static_cast<off_t>(started_), static_cast<off_t>(written_ - started_),
                        SYNC_FILE_RANGE_WRITE);
      started_ = written_;
    }
  }

  // fsync first: after a crash, the final name must never point at a file
  // whose data never reached the disk.
  void keep_as(const std::filesystem::path& final_path) {
    if (::fsync(fd_.get()) != 0) {
      throw os_error("fsync " + path_.string());
    }
    fd_.reset();
    if (::rename(path_.c_str(), final_path.c_str()) != 0) {
      throw os_error("rename " + path_.string() + " to " + final_path.string());
    }
    kept_ = true;
  }

 private:
  static constexpr std::uint64_t kWritebackStep = 8 * 1024 * 1024;
  Fd fd_;
  std::filesystem::path path_;
  std::uint64_t written_ = 0;
  std::uint64_t started_ = 0;  // writeback started for the bytes before this
  bool kept_ = false;
};

bool is_plain_name(std::string_view name) {
  return !name.empty() && name != "." && name != ".." && name.find('/') == std::string_view::npos &&
         name.find('\0') == std::string_view::npos;
}

}  // namespace

HeaderBytes encode_header(const Header& header) {
  HeaderBytes bytes{};
  put_be(&bytes[0], kMagic, 2);
  bytes[2] = kVersion;
  bytes[3] = header.type;
  put_be(&bytes[4], header.length, 4);
  return bytes;
}

Header decode_header(std::span<const std::uint8_t, kHeaderSize> bytes, std::uint32_t max_payload) {
  const auto magic = get_be(&bytes[0], 2);
  if (magic != kMagic) {
    throw ProtocolError(fmt::format("bad magic 0x{:04x}, expected 0x{:04x} (\"LF\")", magic, kMagic));
  }
  if (bytes[2] != kVersion) {
    throw ProtocolError(fmt::format("unsupported version {}, expected {}", bytes[2], kVersion));
  }
  Header header;
  header.type = bytes[3];
  header.length = static_cast<std::uint32_t>(get_be(&bytes[4], 4));
  if (header.length > max_payload) {
    throw ProtocolError(fmt::format("a payload of {} bytes is over the limit of {}", header.length, max_payload));
  }
  return header;
}

std::string encode_file_info(const FileInfo& info) {
  std::string payload(kFileInfoSize, '\0');
  auto* out = reinterpret_cast<std::uint8_t*>(payload.data());
  put_be(out, info.size, 8);
  for (std::size_t i = 0; i < info.sha256.size(); ++i) {
    out[8 + i] = info.sha256[i];
  }
  return payload;
}

FileInfo decode_file_info(std::string_view payload) {
  if (payload.size() != kFileInfoSize) {
    throw ProtocolError(fmt::format("file info of {} bytes, expected {}", payload.size(), kFileInfoSize));
  }
  const auto* in = reinterpret_cast<const std::uint8_t*>(payload.data());
  FileInfo info;
  info.size = get_be(in, 8);
  for (std::size_t i = 0; i < info.sha256.size(); ++i) {
    info.sha256[i] = in[8 + i];
  }
  return info;
}

void send_frame(const Fd& socket, std::uint8_t type, std::string_view payload) {
  if (payload.size() > kMaxPayload) {
    throw std::length_error(fmt::format("a payload of {} bytes is over the limit of {}", payload.size(), kMaxPayload));
  }
  const HeaderBytes header = encode_header({type, static_cast<std::uint32_t>(payload.size())});
  std::string wire(reinterpret_cast<const char*>(header.data()), header.size());
  wire.append(payload);
  write_all(socket, wire);
}

std::optional<Frame> recv_frame(const Fd& socket, std::uint32_t max_payload) {
  HeaderBytes bytes{};
  if (!read_exact(socket, std::span<std::uint8_t>(bytes))) {
    return std::nullopt;  // a clean end, between frames
  }
  const Header header = decode_header(bytes, max_payload);
  Frame frame{header.type, std::string(header.length, '\0')};  // length is checked: safe to allocate
  auto* data = reinterpret_cast<std::uint8_t*>(frame.payload.data());
  if (!read_exact(socket, std::span<std::uint8_t>(data, frame.payload.size()))) {
    throw ProtocolError(fmt::format("connection closed before a {}-byte payload", header.length));
  }
  return frame;
}

Download download_file(const Fd& connection, std::string_view name, const std::filesystem::path& directory) {
  if (!is_plain_name(name)) {
    throw DownloadError(fmt::format("refusing to save as \"{}\": not a plain file name", name));
  }
  send_frame(connection, kTypeGet, name);

  const std::optional<Frame> answer = recv_frame(connection);
  if (!answer) {
    throw DownloadError("the server closed the connection without answering");
  }
  if (answer->type == kTypeError) {
    throw DownloadError(fmt::format("the server refused {}: {}", name, answer->payload));
  }
  if (answer->type != kTypeFileInfo) {
    throw DownloadError(fmt::format("expected file info, got a frame of type 0x{:02x}", answer->type));
  }
  const FileInfo info = decode_file_info(answer->payload);

  PartFile part(directory, name);
  Sha256 hasher;
  std::uint64_t received = 0;
  while (received < info.size) {
    const std::optional<Frame> frame = recv_frame(connection);
    if (!frame) {
      throw DownloadError(fmt::format("the server closed the connection after {} of {} bytes", received, info.size));
    }
    if (frame->type == kTypeError) {
      throw DownloadError(fmt::format("the server stopped after {} of {} bytes: {}", received, info.size,
                                      frame->payload));
    }
    if (frame->type != kTypeFileData) {
      throw DownloadError(fmt::format("expected file data, got a frame of type 0x{:02x}", frame->type));
    }
    if (frame->payload.size() > info.size - received) {
      throw DownloadError(fmt::format("the server sent more than the {} bytes it announced", info.size));
    }
    part.write(frame->payload);
    hasher.update(frame->payload);
    received += frame->payload.size();
  }
  const Sha256::Digest digest = hasher.finish();
  if (digest != info.sha256) {
    throw DownloadError(fmt::format("SHA-256 mismatch: the server announced {}, the data has {}",
                                    to_hex(info.sha256), to_hex(digest)));
  }
  const std::filesystem::path final_path = directory / std::string(name);
  part.keep_as(final_path);
  return Download{final_path, info.size, to_hex(digest)};
}

}  // namespace lab::struct_header
