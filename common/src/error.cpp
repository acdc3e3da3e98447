#include "lab/error.hpp"

#include <cerrno>
#include <cstring>

namespace lab {

std::system_error os_error(int error_number, const std::string& what) {
  return {error_number, std::generic_category(), what};
}

std::system_error os_error(const std::string& what) { return os_error(errno, what); }

std::string errno_name(int error_number) {
  // strerrorname_np (glibc 2.32+) gives "ECONNREFUSED"; nullptr for unknown values.
  const char* name = ::strerrorname_np(error_number);
  return name != nullptr ? name : "";
}

NotImplemented::NotImplemented(const std::string& exercise, const std::string& title,
                               const std::string& lesson_dir)
    : std::logic_error("not implemented: exercise " + exercise + " (" + title + ") \u2014 see " +
                       lesson_dir + "/README.md") {}

}  // namespace lab
