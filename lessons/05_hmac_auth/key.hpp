// Where the shared key comes from: --key-file FILE, or else the LAB_SECRET
// environment variable. Never from the source code: a key in the source is
// in every copy of the program and in the repository's history for ever.
// (Provided code, not an exercise: read it.)
#pragma once

#include <fcntl.h>
#include <string.h>
#include <sys/stat.h>

#include <cstdlib>
#include <string>
#include <string_view>

#include "hmac_auth.hpp"
#include "lab/error.hpp"
#include "lab/fd.hpp"
#include "lab/io.hpp"
#include "lab/program.hpp"

namespace lab::hmac_auth {

inline constexpr const char* kKeyVariable = "LAB_SECRET";
// Keys longer than a SHA-256 block are hashed down to 32 bytes anyway; a
// "key file" of megabytes is a mistake (the wrong file), not a key.
inline constexpr std::size_t kMaxKeySize = 4096;

// The shared key: the exact bytes of the key file (a trailing newline is
// part of the key) or of LAB_SECRET. On purpose it has no way to be printed
// (no operator<<, no to_string), and it is neither copied nor moved, so it
// exists once; its bytes are wiped when it goes away.
class Key {
 public:
  explicit Key(std::string bytes) : bytes_(std::move(bytes)) {}
  ~Key() { ::explicit_bzero(bytes_.data(), bytes_.size()); }  // memset could be optimised away
  Key(const Key&) = delete;
  Key& operator=(const Key&) = delete;

  [[nodiscard]] Bytes bytes() const { return bytes_of(bytes_); }

 private:
  std::string bytes_;
};

// Reads a key file. Like ssh with a private key, warns when the file is open
// to group or others (any of the mode bits 077): whoever can read it can
// log in as a client. Errors name the file, never its contents.
inline Key read_key_file(const std::string& path) {
  const Fd file{::open(path.c_str(), O_RDONLY | O_CLOEXEC)};
  if (!file) {
    throw os_error("open key file " + path);
  }
  struct stat info {};
  if (::fstat(file.get(), &info) != 0) {
    throw os_error("fstat key file " + path);
  }
  if (S_ISREG(info.st_mode) && (info.st_mode & 077) != 0) {
    warn("warning: key file {} is accessible by group or others (mode {:04o}); "
         "anyone who can read it can authenticate: chmod 600 {}",
         path, info.st_mode & 07777, path);
  }
  std::string bytes;
  try {
    bytes = read_to_end(file, kMaxKeySize);
  } catch (const ProtocolError&) {
    throw std::runtime_error("key file " + path + " is longer than " + std::to_string(kMaxKeySize) +
                             " bytes: is it really a key?");
  }
  if (bytes.empty()) {
    throw std::runtime_error("key file " + path + " is empty: an empty key is no secret");
  }
  return Key(std::move(bytes));
}

// The key from --key-file if given, else from LAB_SECRET. A missing or empty
// key is a one-line error that says what to do.
inline Key load_key(const std::string& key_file) {
  if (!key_file.empty()) {
    return read_key_file(key_file);
  }
  const char* value = std::getenv(kKeyVariable);
  if (value == nullptr) {
    throw UsageError("no key: give --key-file FILE or set LAB_SECRET (the same key on server and client)");
  }
  const std::string_view text = value;
  if (text.empty()) {
    throw UsageError("LAB_SECRET is empty: an empty key is no secret");
  }
  if (text.size() > kMaxKeySize) {
    throw UsageError("LAB_SECRET is longer than " + std::to_string(kMaxKeySize) + " bytes");
  }
  return Key(std::string(text));
}

}  // namespace lab::hmac_auth
