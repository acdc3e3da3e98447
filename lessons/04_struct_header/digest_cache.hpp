// Lesson 04 — the SHA-256 of each version of a served file, computed once and
// remembered, so that a second download starts at once. Given code.
#pragma once

#include <sys/stat.h>

#include <algorithm>
#include <compare>
#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "deadline_send.hpp"
#include "lab/error.hpp"
#include "lab/fd.hpp"
#include "lab/sha256.hpp"
#include "lab/text.hpp"
#include "served_file.hpp"

namespace lab::file_server {

// What identifies one version of a file: the same device, inode, size and
// modification and change times. A write to the file changes mtime and
// ctime, so a cached digest is only ever used for the bytes it was made of.
// (A write within the same clock tick that keeps the size could slip
// through; the client's own check of the digest then refuses the download,
// so the worst case is a failed download, never a wrong file kept.)
struct FileIdentity {
  std::uint64_t device = 0;
  std::uint64_t inode = 0;
  std::uint64_t size = 0;
  std::int64_t modified_s = 0;
  std::int64_t modified_ns = 0;
  std::int64_t changed_s = 0;
  std::int64_t changed_ns = 0;
  auto operator<=>(const FileIdentity&) const = default;
};

inline FileIdentity identity_of(const Fd& file) {
  struct stat status {};
  if (::fstat(file.get(), &status) != 0) {
    throw os_error("fstat");
  }
  return {static_cast<std::uint64_t>(status.st_dev), static_cast<std::uint64_t>(status.st_ino),
          static_cast<std::uint64_t>(status.st_size), status.st_mtim.tv_sec, status.st_mtim.tv_nsec,
          status.st_ctim.tv_sec, status.st_ctim.tv_nsec};
}

// The digests of files served before, so that asking for the same file again
// starts sending at once instead of after a hashing pass over all of it.
// Bounded: a client asking for many files cannot make it grow for ever.
class DigestCache {
 public:
  [[nodiscard]] std::optional<Sha256::Digest> find(const FileIdentity& file) const {
    const auto found = digests_.find(file);
    return found == digests_.end() ? std::nullopt : std::optional(found->second);
  }
  void remember(const FileIdentity& file, const Sha256::Digest& digest) {
    if (digests_.size() >= kMaxEntries) {
      digests_.erase(digests_.begin());
    }
    digests_[file] = digest;
  }

 private:
  static constexpr std::size_t kMaxEntries = 1024;
  std::map<FileIdentity, Sha256::Digest> digests_;
};

// The SHA-256 of exactly the first `size` bytes. If the file grew since
// fstat, the last read returns more than that: those bytes are not hashed,
// because they are not going to be sent.
inline Sha256::Digest hash_prefix(const Fd& file, std::uint64_t size, const std::string& name,
                                  Clock::time_point deadline) {
  std::vector<char> buffer(1024 * 1024);  // large reads: few system calls
  Sha256 hasher;
  for (std::uint64_t done = 0; done < size;) {
    check_stop_and_deadline(deadline);
    const std::size_t wanted = static_cast<std::size_t>(std::min<std::uint64_t>(buffer.size(), size - done));
    const std::size_t got = read_at(file, buffer.data(), wanted, done);
    if (got == 0) {
      throw Refusal(fmt::format("{} shrank while it was being read; try again", preview(name)));
    }
    hasher.update(std::string_view(buffer.data(), got));
    done += got;
  }
  return hasher.finish();
}

// The digest of the file as it is now: remembered, or computed and then
// remembered if the file did not change while it was hashed.
inline Sha256::Digest digest_of(const Fd& file, const FileIdentity& before, const std::string& name,
                                DigestCache& cache, Clock::time_point deadline) {
  if (const auto known = cache.find(before)) {
    return *known;
  }
  const Sha256::Digest digest = hash_prefix(file, before.size, name, deadline);
  if (identity_of(file) == before) {
    cache.remember(before, digest);
  }
  return digest;
}

}  // namespace lab::file_server
