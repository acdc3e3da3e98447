// Lesson 12 — raising RLIMIT_NOFILE, the most descriptors a process may have open.
//
// Every connection is a descriptor, and the soft limit is often 1024 (a
// value from the days of select(), whose fd_set holds descriptors 0..1023
// only). A process may raise its own soft limit up to the hard limit
// without privileges (getrlimit(2)); past the hard limit only root can go.
#pragma once

#include <sys/resource.h>

#include <string>

#include "lab/error.hpp"

namespace lab::event_loop {

struct DescriptorLimit {
  rlim_t before = 0;  // the soft limit we started with
  rlim_t now = 0;     // the soft limit now
  rlim_t hard = 0;    // the ceiling
};

// Raises the soft limit to the hard limit. Throws std::system_error if
// getrlimit or setrlimit fails.
inline DescriptorLimit raise_descriptor_limit() {
  rlimit limit{};
  if (::getrlimit(RLIMIT_NOFILE, &limit) != 0) {
    throw os_error("getrlimit RLIMIT_NOFILE");
  }
  DescriptorLimit result{limit.rlim_cur, limit.rlim_cur, limit.rlim_max};
  if (limit.rlim_cur < limit.rlim_max) {
    limit.rlim_cur = limit.rlim_max;
    if (::setrlimit(RLIMIT_NOFILE, &limit) != 0) {
      throw os_error("setrlimit RLIMIT_NOFILE");
    }
    result.now = limit.rlim_max;
  }
  return result;
}

// One line for a person: what the limit was, what it is, and whether
// `needed` descriptors fit.
inline std::string describe(const DescriptorLimit& limit, rlim_t needed) {
  std::string text = "descriptor limit (RLIMIT_NOFILE): ";
  if (limit.now != limit.before) {
    text += "raised the soft limit from " + std::to_string(limit.before) + " to the hard limit " +
            std::to_string(limit.now);
  } else {
    text += "soft limit " + std::to_string(limit.now) + " (already the hard limit)";
  }
  if (needed > limit.now) {
    text += "; " + std::to_string(needed) + " are needed: expect EMFILE (raise the hard limit as root: ulimit -Hn)";
  }
  return text;
}

}  // namespace lab::event_loop
