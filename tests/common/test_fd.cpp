#include <doctest/doctest.h>
#include <fcntl.h>
#include <unistd.h>

#include <utility>

#include "lab/fd.hpp"
#include "lab/testing.hpp"

namespace {

bool is_open(int fd) { return ::fcntl(fd, F_GETFD) != -1; }

int open_null() {
  const int fd = ::open("/dev/null", O_RDONLY | O_CLOEXEC);
  REQUIRE(fd >= 0);
  return fd;
}

}  // namespace

TEST_CASE("Fd closes its descriptor exactly once, when destroyed") {
  const int before = lab::testing::open_fd_count();
  int raw = -1;
  {
    lab::Fd fd{open_null()};
    raw = fd.get();
    CHECK(static_cast<bool>(fd));
    CHECK(is_open(raw));
  }
  CHECK_FALSE(is_open(raw));
  CHECK(lab::testing::open_fd_count() == before);
}

TEST_CASE("Fd default-constructed owns nothing") {
  lab::Fd fd;
  CHECK_FALSE(static_cast<bool>(fd));
  CHECK(fd.get() == -1);
}

TEST_CASE("Fd move leaves the source empty and the descriptor open") {
  lab::Fd first{open_null()};
  const int raw = first.get();
  lab::Fd second{std::move(first)};
  CHECK(first.get() == -1);  // NOLINT(bugprone-use-after-move): checking the moved-from state
  CHECK(second.get() == raw);
  CHECK(is_open(raw));
}

TEST_CASE("Fd move-assignment closes its own descriptor, then takes the other") {
  lab::Fd target{open_null()};
  lab::Fd source{open_null()};
  const int old_target = target.get();
  const int old_source = source.get();
  target = std::move(source);
  CHECK_FALSE(is_open(old_target));  // closed at once, not parked in the source
  CHECK(target.get() == old_source);
  CHECK(source.get() == -1);  // NOLINT(bugprone-use-after-move)
  CHECK(is_open(old_source));
}

TEST_CASE("Fd release gives the descriptor up without closing it") {
  lab::Fd fd{open_null()};
  const int raw = fd.release();
  CHECK(fd.get() == -1);
  CHECK(is_open(raw));
  ::close(raw);
}

TEST_CASE("Fd reset closes the old descriptor and owns the new one") {
  lab::Fd fd{open_null()};
  const int old = fd.get();
  const int fresh = open_null();
  fd.reset(fresh);
  CHECK_FALSE(is_open(old));
  CHECK(fd.get() == fresh);
  fd.reset();
  CHECK_FALSE(is_open(fresh));
}
