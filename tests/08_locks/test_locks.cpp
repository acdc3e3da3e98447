// Graded tests of lesson 08 (lessons/08_locks/locks.hpp), and end-to-end
// tests of its ticket-office server and client. Built twice: against the
// student's locks.cpp (label "grade") and against solutions/08_locks
// (label "reference").
#include <doctest/doctest.h>
#include <fcntl.h>
#include <pthread.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <future>
#include <mutex>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include "lab/forked.hpp"
#include "lab/io.hpp"
#include "lab/socket.hpp"
#include "lab/temp_dir.hpp"
#include "lab/testing.hpp"
#include "locks.hpp"

using namespace std::chrono_literals;
using lab::Fd;
namespace locks = lab::locks;
namespace fs = std::filesystem;

namespace {

const std::string kServer = std::string(LAB_PROGRAM_DIR) + "/server";
const std::string kClient = std::string(LAB_PROGRAM_DIR) + "/client";

// The contention test: 50 buyers x 20 attempts on 100 tickets,
// repeated in one case. Under a sanitizer every fork, lock and wake-up costs
// many times more (and a lock holder that sleeps in the widened race window
// waits for a busy CPU to get it back), so the sanitizer builds repeat fewer
// rounds: kRoundsUnderSanitizer, same 50 x 20 x 100 in each round.
#if defined(__SANITIZE_ADDRESS__) || defined(__SANITIZE_THREAD__)
#define LAB_TEST_UNDER_SANITIZER 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer) || __has_feature(thread_sanitizer)
#define LAB_TEST_UNDER_SANITIZER 1
#endif
#endif
constexpr int kBuyers = 50;
constexpr int kAttempts = 20;
constexpr int kTickets = 100;
#ifdef LAB_TEST_UNDER_SANITIZER
constexpr int kRoundsUnderSanitizer = 1;
constexpr int kProcessRounds = kRoundsUnderSanitizer;
constexpr int kThreadRounds = kRoundsUnderSanitizer * 2;
#else
constexpr int kProcessRounds = 5;
constexpr int kThreadRounds = 10;
#endif

// A ticket file in a fresh temporary folder, removed with it.
class TempOffice {
 public:
  explicit TempOffice(int tickets) : path_(dir_.path() / "tickets") { locks::create_office(path_, tickets); }
  TempOffice(const TempOffice&) = delete;
  TempOffice& operator=(const TempOffice&) = delete;
  [[nodiscard]] const fs::path& path() const { return path_; }
  [[nodiscard]] int count() const { return locks::read_count(locks::open_office(path_)); }

 private:
  lab::TempDir dir_{"lab08-test"};
  fs::path path_;
};

// Whether another open file description could take a write lock on the
// file now (F_OFD_GETLK reports a conflicting lock without taking one).
bool locked_by_someone_else(const fs::path& path) {
  const Fd other = locks::open_office(path);
  struct flock probe {};
  probe.l_type = F_WRLCK;
  probe.l_whence = SEEK_SET;
  REQUIRE(::fcntl(other.get(), F_OFD_GETLK, &probe) == 0);
  return probe.l_type != F_UNLCK;
}

// A deadlock cannot be undone: the stuck threads can neither be woken nor
// joined. Say so plainly and end the test program instead of hanging
// until the case's timeout.
[[noreturn]] void deadlocked(const char* what) {
  std::fprintf(stderr, "DEADLOCK: %s did not finish in time; the threads are stuck for good\n", what);
  std::fflush(stderr);
  std::_Exit(1);
}

template <typename T>
void finish_or_die(std::vector<std::future<T>>& work, const char* what) {
  const auto deadline = std::chrono::steady_clock::now() + 10s;
  for (auto& one : work) {
    if (one.wait_until(deadline) != std::future_status::ready) {
      deadlocked(what);
    }
  }
}


std::atomic<int> interruptions{0};
extern "C" void count_interruption(int) { interruptions.fetch_add(1); }

}  // namespace

// ---- 08.1 buy under a file lock --------------------------------------------------

TEST_CASE("08.1 FileLock holds the file against another open() until it goes out of scope") {
  TempOffice office(5);
  const Fd mine = locks::open_office(office.path());
  REQUIRE_FALSE(locked_by_someone_else(office.path()));
  {
    const locks::FileLock lock(mine);
    CHECK_MESSAGE(locked_by_someone_else(office.path()),
                  "while a FileLock lives, another open file description must see the file locked");
  }
  CHECK_MESSAGE(!locked_by_someone_else(office.path()), "the FileLock's destructor must unlock the file");
}

TEST_CASE("08.1 FileLock is released when an exception leaves its scope") {
  TempOffice office(5);
  const Fd mine = locks::open_office(office.path());
  try {
    const locks::FileLock lock(mine);
    throw std::runtime_error("leaving the critical section by an exception");
  } catch (const std::runtime_error&) {
  }
  CHECK_FALSE_MESSAGE(locked_by_someone_else(office.path()),
                      "the lock outlived its scope: the next buyer would wait for ever");
}

TEST_CASE("08.1 FileLock makes a second open() of the file wait (threads, separate descriptors)") {
  TempOffice office(5);
  const Fd first = locks::open_office(office.path());
  const Fd second = locks::open_office(office.path());
  std::atomic<bool> second_has_it{false};
  std::future<void> other;
  {
    const locks::FileLock lock(first);
    other = std::async(std::launch::async, [&] {
      const locks::FileLock lock_too(second);
      second_has_it = true;
    });
    // A correct lock keeps `other` waiting however long we look; a wrong
    // one (e.g. process-owned F_SETLKW, shared by all threads) lets it in.
    const bool entered = other.wait_for(100ms) == std::future_status::ready;
    CHECK_FALSE_MESSAGE(entered, "a second open file description got the lock while the first held it");
  }
  REQUIRE_MESSAGE(other.wait_for(5s) == std::future_status::ready,
                  "the waiting FileLock did not get the lock after the first was released");
  other.get();
  CHECK(second_has_it);
}

TEST_CASE("08.1 FileLock keeps waiting when a signal interrupts its wait (EINTR)") {
  TempOffice office(5);
  const Fd holder = locks::open_office(office.path());
  const Fd waiter = locks::open_office(office.path());
  struct flock region {};
  region.l_type = F_WRLCK;
  region.l_whence = SEEK_SET;
  REQUIRE(::fcntl(holder.get(), F_OFD_SETLK, &region) == 0);  // the test's own lock
  struct sigaction handler {};
  handler.sa_handler = count_interruption;  // no SA_RESTART: the wait fails with EINTR
  sigemptyset(&handler.sa_mask);
  struct sigaction previous {};
  REQUIRE(::sigaction(SIGUSR2, &handler, &previous) == 0);
  interruptions.store(0);
  std::atomic<pid_t> waiter_thread{0};
  std::atomic<bool> done{false};
  std::promise<pthread_t> handle;
  auto waiting = std::async(std::launch::async, [&] {
    handle.set_value(::pthread_self());
    waiter_thread.store(lab::testing::this_thread_id());
    try {
      const locks::FileLock lock(waiter);
      done.store(true);
    } catch (...) {
      done.store(true);
      throw;
    }
  });
  const pthread_t waiting_thread = handle.get_future().get();
  while (waiter_thread.load() == 0) {
    std::this_thread::yield();
  }
  const bool asleep = lab::testing::asleep_in(waiter_thread.load(), {SYS_fcntl}, 3000ms, done);
  if (asleep) {
    ::pthread_kill(waiting_thread, SIGUSR2);
    for (int i = 0; i < 1500 && interruptions.load() == 0; ++i) {
      std::this_thread::sleep_for(2ms);
    }
  }
  region.l_type = F_UNLCK;
  REQUIRE(::fcntl(holder.get(), F_OFD_SETLK, &region) == 0);
  const bool finished = waiting.wait_for(5s) == std::future_status::ready;
  ::sigaction(SIGUSR2, &previous, nullptr);
  REQUIRE_MESSAGE(finished, "the FileLock did not get the lock 5 s after it was freed");
  std::string failure;
  try {
    waiting.get();
  } catch (const std::system_error& error) {
    failure = error.what();
  }
  REQUIRE_MESSAGE(asleep, "the FileLock was never seen waiting in fcntl for a locked file");
  CHECK(interruptions.load() == 1);
  CHECK_MESSAGE(failure.empty(), "a signal interrupted the wait (EINTR) and the FileLock gave up: ", failure);
}

TEST_CASE("08.1 buy_ticket sells the last tickets, then says sold out and never goes below zero") {
  TempOffice office(2);
  const Fd fd = locks::open_office(office.path());
  CHECK(locks::buy_ticket(fd) == std::optional<int>(1));
  CHECK(locks::buy_ticket(fd) == std::optional<int>(0));
  CHECK_FALSE_MESSAGE(locks::buy_ticket(fd).has_value(), "buy_ticket sold a ticket from an empty office");
  CHECK_FALSE(locks::buy_ticket(fd).has_value());
  CHECK(office.count() == 0);
  CHECK_FALSE(locked_by_someone_else(office.path()));
}

TEST_CASE("08.1 50 buyer processes x 20 attempts on 100 tickets sell exactly 100, every round") {
  for (int round = 0; round < kProcessRounds; ++round) {
    CAPTURE(round);
    TempOffice office(kTickets);
    {
      // First one purchase here, so that a missing exercise fails with its
      // own message rather than inside 50 children.
      const Fd fd = locks::open_office(office.path());
      REQUIRE(locks::buy_ticket(fd) == std::optional<int>(kTickets - 1));
      locks::write_count(fd, kTickets);
    }
    lab::ForkedChildren buyers;
    for (int b = 0; b < kBuyers; ++b) {
      buyers.start([&office] {
        const Fd fd = locks::open_office(office.path());  // each buyer its own open()
        int bought = 0;
        for (int attempt = 0; attempt < kAttempts; ++attempt) {
          // A small widened gap, so an unlocked buy would oversell.
          if (locks::buy_ticket(fd, 20us)) {
            ++bought;
          }
          if (locks::read_count(fd) < 0) {
            return 99;  // below zero: an impossible count
          }
        }
        return bought;
      });
    }
    const auto statuses = buyers.wait_all(9s);
    int sold = 0;
    for (const auto& status : statuses) {
      REQUIRE_MESSAGE((status.exited() && status.code <= kAttempts),
                      "a buyer process ", status.to_string(), " (99: it saw a count below zero)");
      sold += status.code;
    }
    CHECK_MESSAGE(sold == kTickets, "expected exactly ", kTickets, " tickets sold, got ", sold);
    CHECK_MESSAGE(office.count() == 0, "the file says ", office.count(), " left");
  }
  CHECK(lab::testing::child_pids().empty());
}

// ---- 08.2 the same with threads and a mutex ------------------------------------

TEST_CASE("08.2 a counter sells its tickets one by one, then refuses without going below zero") {
  locks::TicketCounter counter(3);
  CHECK(counter.buy() == std::optional<int>(2));
  CHECK(counter.buy() == std::optional<int>(1));
  CHECK(counter.buy() == std::optional<int>(0));
  CHECK_FALSE(counter.buy().has_value());
  CHECK(counter.remaining() == 0);
  locks::TicketCounter empty(0);
  CHECK_FALSE_MESSAGE(empty.buy().has_value(), "a counter of 0 tickets sold one");
  CHECK(empty.remaining() == 0);
}

TEST_CASE("08.2 a negative number of tickets is refused with std::invalid_argument") {
  locks::TicketCounter fine(1);
  REQUIRE(fine.buy() == std::optional<int>(0));  // so that a stub cannot pass this case
  CHECK_THROWS_AS(locks::TicketCounter(-1), std::invalid_argument);
}

TEST_CASE("08.2 50 threads x 20 attempts on 100 tickets sell exactly 100, every round") {
  for (int round = 0; round < kThreadRounds; ++round) {
    CAPTURE(round);
    locks::TicketCounter counter(kTickets);
    std::vector<std::future<int>> buyers;
    for (int b = 0; b < kBuyers; ++b) {
      buyers.push_back(std::async(std::launch::async, [&counter, round] {
        int bought = 0;
        for (int attempt = 0; attempt < kAttempts; ++attempt) {
          if (counter.buy(std::chrono::microseconds(round % 2 == 0 ? 0 : 5))) {
            ++bought;
          }
        }
        return bought;
      }));
    }
    finish_or_die(buyers, "50 buyer threads");
    int sold = 0;
    for (auto& buyer : buyers) {
      sold += buyer.get();
    }
    CHECK_MESSAGE(sold == kTickets, "expected exactly ", kTickets, " tickets sold, got ", sold);
    CHECK(counter.remaining() == 0);
  }
}

TEST_CASE("08.2 remaining() never shows a count below zero while buyers race") {
  locks::TicketCounter counter(kTickets);
  std::atomic<bool> done{false};
  auto watcher = std::async(std::launch::async, [&] {
    int lowest = kTickets;
    while (!done) {
      lowest = std::min(lowest, counter.remaining());
    }
    return lowest;
  });
  std::vector<std::future<int>> buyers;
  for (int b = 0; b < 8; ++b) {
    buyers.push_back(std::async(std::launch::async, [&counter] {
      int bought = 0;
      while (counter.buy()) {
        ++bought;
      }
      return bought;
    }));
  }
  finish_or_die(buyers, "8 buyer threads");
  done = true;
  int sold = 0;
  for (auto& buyer : buyers) {
    sold += buyer.get();
  }
  CHECK(sold == kTickets);
  CHECK_MESSAGE(watcher.get() >= 0, "remaining() went below zero");
}

// ---- 08.3 a two-lock transfer that cannot deadlock ------------------------------

TEST_CASE("08.3 transfer moves money, and refuses an overdraft without changing either balance") {
  locks::Account alice(100);
  locks::Account bob(5);
  CHECK(locks::transfer(alice, bob, 30));
  CHECK(alice.balance == 70);
  CHECK(bob.balance == 35);
  CHECK_FALSE_MESSAGE(locks::transfer(bob, alice, 36), "a transfer of 36 from a balance of 35 succeeded");
  CHECK(alice.balance == 70);
  CHECK(bob.balance == 35);
  CHECK(locks::transfer(bob, alice, 35));
  CHECK(bob.balance == 0);
  CHECK(locks::transfer(bob, alice, 0));
}

namespace {

// What a transfer(from, to, 1) on another thread does while this thread
// holds `held`: whether it finished anyway (it did not lock `held`), and
// whether, asleep waiting, it held `other` meanwhile.
struct WhileHeld {
  bool finished_anyway = false;
  bool held_the_other = false;
};

WhileHeld transfer_while_held(locks::Account& from, locks::Account& to, std::mutex& held, std::mutex& other) {
  std::unique_lock hold(held);
  std::atomic<pid_t> tid{0};
  std::atomic<bool> done{false};
  std::vector<std::future<bool>> work;
  work.push_back(std::async(std::launch::async, [&] {
    tid.store(lab::testing::this_thread_id());
    try {
      const bool moved = locks::transfer(from, to, 1);
      done.store(true);
      return moved;
    } catch (...) {
      done.store(true);
      throw;
    }
  }));
  while (tid.load() == 0) {
    std::this_thread::yield();
  }
  WhileHeld seen;
  if (lab::testing::asleep_in(tid.load(), {SYS_futex}, 3000ms, done)) {
    if (other.try_lock()) {
      other.unlock();
    } else {
      seen.held_the_other = true;
    }
  }
  seen.finished_anyway = done.load();
  hold.unlock();
  finish_or_die(work, "a transfer once the test let go of its mutex");
  CHECK(work[0].get());
  return seen;
}

}  // namespace

TEST_CASE("08.3 transfer takes both mutexes, and never waits for one holding the other in both orders") {
  locks::Account a(100);
  locks::Account b(100);
  const WhileHeld to_held = transfer_while_held(a, b, b.mutex, a.mutex);    // a->b while we hold b
  const WhileHeld from_held = transfer_while_held(a, b, a.mutex, b.mutex);  // a->b while we hold a
  const WhileHeld back = transfer_while_held(b, a, a.mutex, b.mutex);       // b->a while we hold a
  CHECK_MESSAGE(!to_held.finished_anyway, "transfer(a, b) finished while b's mutex was held: it must lock `to` too");
  CHECK_MESSAGE(!from_held.finished_anyway, "transfer(a, b) finished while a's mutex was held: it must lock `from`");
  CHECK_MESSAGE(!(to_held.held_the_other && back.held_the_other),
                "transfer(a, b) held a while waiting for b, and transfer(b, a) held b while waiting for a: "
                "run at the same time, they deadlock. Lock both with std::scoped_lock, or in one global order");
  CHECK(a.balance + b.balance == 200);
}

TEST_CASE("08.3 a transfer to the same account, or of a negative amount, is refused") {
  locks::Account alice(100);
  locks::Account bob(0);
  REQUIRE(locks::transfer(alice, bob, 1));  // so that a stub cannot pass this case
  // Locking alice's mutex twice can hang for good: on its own thread, bounded.
  std::vector<std::future<bool>> same;
  same.push_back(std::async(std::launch::async, [&alice] { return locks::transfer(alice, alice, 10); }));
  const auto deadline = std::chrono::steady_clock::now() + 2s;
  if (same[0].wait_until(deadline) != std::future_status::ready) {
    deadlocked("transfer(alice, alice) (2 s: locking one mutex twice)");
  }
  CHECK_THROWS_AS(same[0].get(), std::invalid_argument);
  CHECK_THROWS_AS(locks::transfer(alice, bob, -5), std::invalid_argument);
  CHECK(alice.balance == 99);
  CHECK(bob.balance == 1);
}

TEST_CASE("08.3 opposite transfers on two threads at once never deadlock, and keep the total") {
  locks::Account a(1'000'000);
  locks::Account b(1'000'000);
  REQUIRE(locks::transfer(a, b, 0));
  std::vector<std::future<void>> work;
  work.push_back(std::async(std::launch::async, [&] {
    for (int i = 0; i < 20'000; ++i) {
      locks::transfer(a, b, 3);
    }
  }));
  work.push_back(std::async(std::launch::async, [&] {
    for (int i = 0; i < 20'000; ++i) {
      locks::transfer(b, a, 2);
    }
  }));
  finish_or_die(work, "transfers a->b and b->a");
  for (auto& one : work) {
    one.get();
  }
  CHECK(a.balance + b.balance == 2'000'000);
  CHECK(a.balance == 1'000'000 - 20'000);
}

TEST_CASE("08.3 a ring of transfers a->b->c->a on three threads never deadlocks, and keeps the total") {
  locks::Account accounts[3] = {locks::Account(500), locks::Account(500), locks::Account(500)};
  REQUIRE(locks::transfer(accounts[0], accounts[1], 0));
  std::vector<std::future<int>> work;
  for (int t = 0; t < 3; ++t) {
    work.push_back(std::async(std::launch::async, [&accounts, t] {
      int refused = 0;
      for (int i = 0; i < 15'000; ++i) {
        if (!locks::transfer(accounts[t], accounts[(t + 1) % 3], 7)) {
          ++refused;
        }
      }
      return refused;
    }));
  }
  finish_or_die(work, "a ring of transfers");
  for (auto& one : work) {
    one.get();
  }
  long long total = 0;
  for (const auto& account : accounts) {
    CHECK(account.balance >= 0);
    total += account.balance;
  }
  CHECK_MESSAGE(total == 1500, "money appeared or vanished: the total is ", total);
}

// ---- The pair, end to end --------------------------------------------------------

TEST_CASE("08.p pair: 20 buyer processes x 20 attempts on 100 tickets buy exactly 100") {
  // 20 buyers here (the client's default is 50, as in the case above that
  // forks buyers itself): each buyer is a process of the client and has a
  // process of the server, and under a sanitizer every fork is slow.
  // The ticket file lives in a folder of this test, so that it is gone
  // even if the server is killed (its own temporary file would stay).
  const TempOffice office(0);
  auto server = lab::testing::ServerProcess::start(kServer, {"--file", office.path().string(), "--race-us", "50"});
  INFO(server.stop_and_describe());
  const auto result = lab::testing::run(
      {kClient, "--port", std::to_string(server.port()), "--buyers", "20", "--attempts", "20", "--tickets", "100"},
      "", 9s);
  INFO(result.describe());
  CHECK(result.status.success());
  CHECK(result.out.find("bought 100 ticket(s); 100 were for sale, 0 left") != std::string::npos);
  CHECK(result.out.find("OK: every ticket sold once") != std::string::npos);
}

TEST_CASE("08.p pair: without the lock the count is never below zero and at least every ticket sells") {
  const TempOffice office(0);
  auto server = lab::testing::ServerProcess::start(kServer, {"--file", office.path().string(), "--race-us", "1000"});
  INFO(server.stop_and_describe());
  const std::string port = std::to_string(server.port());
  const auto locked = lab::testing::run({kClient, "--port", port, "--buyers", "5", "--tickets", "10"});
  INFO(locked.describe());
  REQUIRE(locked.status.success());  // the lock first: a stub fails here
  const auto unlocked =
      lab::testing::run({kClient, "--port", port, "--buyers", "5", "--attempts", "100", "--tickets", "10", "--no-lock"});
  INFO(unlocked.describe());
  CHECK(unlocked.status.success());
  // Lost updates make buyers get MORE tickets than the count went down by;
  // how many more depends on timing, so only the safe facts are checked.
  CHECK(unlocked.out.find("WITHOUT the lock: bought ") != std::string::npos);
  CHECK(unlocked.out.find(", 0 left") != std::string::npos);
}

TEST_CASE("08.p pair: unknown commands and overlong lines get an error, and the server goes on") {
  const TempOffice office(0);
  auto server = lab::testing::ServerProcess::start(kServer, {"--file", office.path().string()});
  INFO(server.stop_and_describe());
  const lab::Endpoint endpoint{"127.0.0.1", server.port()};
  {
    const Fd rude = lab::tcp_connect(endpoint);
    lab::write_all(rude, "steal 100\n");
    lab::set_receive_timeout(rude, 3000ms);
    const std::string reply = lab::read_to_end(rude, 4096);
    CHECK_MESSAGE(reply.rfind("error: unknown command", 0) == 0, "reply: ", reply);
  }
  {
    const Fd rude = lab::tcp_connect(endpoint);
    lab::write_all(rude, "restock -5\n");
    lab::set_receive_timeout(rude, 3000ms);
    const std::string reply = lab::read_to_end(rude, 4096);
    CHECK_MESSAGE(reply.rfind("error: restock needs a number", 0) == 0, "reply: ", reply);
  }
  {
    const Fd rude = lab::tcp_connect(endpoint);
    lab::write_all(rude, std::string(100, 'x'));
    lab::set_receive_timeout(rude, 3000ms);
    const std::string reply = lab::read_to_end(rude, 4096);
    CHECK_MESSAGE(reply.rfind("error: a line longer than", 0) == 0, "reply: ", reply);
  }
  const auto result = lab::testing::run(
      {kClient, "--port", std::to_string(server.port()), "--buyers", "3", "--tickets", "5"});
  INFO(result.describe());
  CHECK(result.status.success());
  CHECK(result.out.find("bought 5 ticket(s); 5 were for sale, 0 left") != std::string::npos);
}

TEST_CASE("08.p pair: SIGTERM stops the server with status 0 and leaves no process behind") {
  const TempOffice office(0);
  auto server = lab::testing::ServerProcess::start(kServer, {"--file", office.path().string(), "--race-us", "0"});
  INFO(server.stop_and_describe());
  // A buyer connection that stays open: its server process must end too.
  const Fd idle = lab::tcp_connect(lab::Endpoint{"127.0.0.1", server.port()});
  const auto result = lab::testing::run(
      {kClient, "--port", std::to_string(server.port()), "--buyers", "5", "--tickets", "10"});
  INFO(result.describe());
  REQUIRE(result.status.success());
  CHECK(server.stop() == lab::ExitStatus{0, 0});
  const std::string log = server.rest_of_output();
  CHECK_MESSAGE(log.find("0 ticket(s) left") != std::string::npos, log);
  CHECK(lab::testing::child_pids().empty());
  lab::set_receive_timeout(idle, 3000ms);
  CHECK_FALSE_MESSAGE(lab::read_some(idle, 16).has_value(), "the idle buyer's server process still runs");
}

TEST_CASE("08.p pair: a client with no server says so in one line") {
  lab::testing::run_refused_client(kClient);
  const TempOffice office(0);
  auto server = lab::testing::ServerProcess::start(kServer, {"--file", office.path().string(), "--race-us", "0"});
  INFO(server.stop_and_describe());
  const auto works = lab::testing::run(
      {kClient, "--port", std::to_string(server.port()), "--buyers", "2", "--tickets", "3"});
  INFO(works.describe());
  CHECK(works.out.find("bought 3 ticket(s)") != std::string::npos);
}
