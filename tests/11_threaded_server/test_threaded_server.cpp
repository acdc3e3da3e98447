// Graded tests of lesson 11's server class (exercise 11.1) and its clean
// shutdown (11.3), lessons/11_threaded_server/threaded_server.hpp, in
// thread-per-connection mode (the pool, 11.2, has its own tests).
#include <doctest/doctest.h>
#include <malloc.h>
#include <sys/socket.h>

#include <atomic>
#include <chrono>
#include <fstream>
#include <future>
#include <mutex>
#include <set>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include "lab/io.hpp"
#include "lab/socket.hpp"
#include "server_testing.hpp"
#include "threaded_server.hpp"

using namespace std::chrono_literals;
using lab::Fd;
using lab::threaded::ServerOptions;
using lab::threaded::testing::baseline_thread_count;
using lab::threaded::testing::closed_within;
using lab::threaded::testing::echo_upper;
using lab::threaded::testing::eventually;
using lab::threaded::testing::round_trip;
using lab::threaded::testing::ServeThread;
using lab::threaded::testing::thread_count;

namespace {

ServerOptions options(std::size_t max_connections = 64, std::chrono::milliseconds idle = 10'000ms) {
  ServerOptions result;
  result.pool = 0;
  result.max_connections = max_connections;
  result.idle_timeout = idle;
  return result;
}

// VmSize of this process, in KiB (0 if unknown).
long address_space_kib() {
  std::ifstream status("/proc/self/status");
  std::string line;
  while (std::getline(status, line)) {
    if (line.rfind("VmSize:", 0) == 0) {
      return std::stol(line.substr(7));
    }
  }
  return 0;
}

void reset_connection(Fd& socket) {
  const linger abort_on_close{1, 0};  // close sends RST, not FIN
  REQUIRE(::setsockopt(socket.get(), SOL_SOCKET, SO_LINGER, &abort_on_close, sizeof abort_on_close) == 0);
  socket.reset();
}

}  // namespace

// ---- 11.1 the server class -------------------------------------------------------

TEST_CASE("11.1 clients are served at the same time, each on a thread of its own") {
  std::mutex mutex;
  std::set<std::thread::id> threads;
  ServeThread serve(options(), [&](const Fd& connection, std::stop_token stop) {
    {
      const std::lock_guard lock(mutex);
      threads.insert(std::this_thread::get_id());
    }
    echo_upper(connection, std::move(stop));
  });
  INFO(serve.describe());
  // Five clients, all connected and all mid-conversation at once: a server
  // that serves one client at a time would never answer the second.
  std::vector<Fd> clients;
  for (int i = 0; i < 5; ++i) {
    clients.push_back(serve.connect());
  }
  for (int round = 0; round < 3; ++round) {
    for (std::size_t i = clients.size(); i-- > 0;) {  // the last connected first
      round_trip(clients[i], "client " + std::to_string(i) + " round " + std::to_string(round) + "\n");
    }
  }
  const std::lock_guard lock(mutex);
  CHECK_MESSAGE(threads.size() == 5, "5 conversations ran on ", threads.size(), " distinct thread(s)");
}

TEST_CASE("11.1 beyond max_connections a client reads the refusal and is closed, and is counted") {
  ServeThread serve(options(2));
  INFO(serve.describe());
  Fd first = serve.connect();
  Fd second = serve.connect();
  round_trip(first, "one\n");
  round_trip(second, "two\n");
  {
    const Fd third = serve.connect();
    lab::set_receive_timeout(third, 3000ms);
    std::string got;
    try {
      got = lab::read_to_end(third, 4096);
    } catch (const std::exception& error) {
      FAIL("the third client's read failed: ", std::string(error.what()));
    }
    CHECK_MESSAGE(got == lab::threaded::kTooManyConnections, "the third client read '", got, "'");
  }
  CHECK(eventually([&] { return serve.server().refused() == 1; }));
  // Once a place is free, the next client is served again.
  first.reset();
  REQUIRE(eventually([&] { return serve.server().open_connections() == 1; }));
  const Fd fourth = serve.connect();
  round_trip(fourth, "four\n");
  round_trip(second, "still here\n");
}

TEST_CASE("11.1 a silent client is dropped after the idle timeout while others are served") {
  ServeThread serve(options(64, 300ms));
  INFO(serve.describe());
  const Fd silent = serve.connect();
  const Fd talker = serve.connect();
  round_trip(talker, "hello\n");
  CHECK_MESSAGE(closed_within(silent, 3000ms), "a client silent for 3 s is still connected (idle timeout 0.3 s)");
  const Fd next = serve.connect();
  round_trip(next, "after the silent one\n");
}

TEST_CASE("11.1 a handler that throws and a client that resets end their own conversation only") {
  ServeThread serve(options(), [](const Fd& connection, std::stop_token stop) {
    auto first = lab::read_some(connection, 4096);
    if (first && first->find("boom") != std::string::npos) {
      throw std::runtime_error("the handler gives up on 'boom'");
    }
    if (first) {
      lab::write_all(connection, lab::threaded::testing::upper(*first));
    }
    echo_upper(connection, std::move(stop));
  });
  INFO(serve.describe());
  const Fd steady = serve.connect();
  round_trip(steady, "before\n");
  {
    const Fd bomber = serve.connect();
    lab::write_all(bomber, "boom\n");
    CHECK_MESSAGE(closed_within(bomber, 3000ms), "the server must close a connection whose handler threw");
  }
  {
    Fd rude = serve.connect();
    round_trip(rude, "about to reset\n");
    lab::write_all(rude, "half a mess");
    reset_connection(rude);
  }
  round_trip(steady, "after\n");
  const Fd next = serve.connect();
  round_trip(next, "next\n");
}

TEST_CASE("11.1 serve_forever returns, once stopped, how many clients it handed to a handler") {
  ServeThread serve(options(2));
  INFO(serve.describe());
  {
    const Fd a = serve.connect();
    const Fd b = serve.connect();
    round_trip(a, "a\n");
    round_trip(b, "b\n");
    const Fd refused = serve.connect();
    CHECK(closed_within(refused, 3000ms));
  }
  REQUIRE(eventually([&] { return serve.server().open_connections() == 0; }));
  const Fd c = serve.connect();
  round_trip(c, "c\n");
  CHECK(serve.stop() == 3);
}

TEST_CASE("11.1 the threads of finished conversations are joined while the server runs") {
  // glibc gives threads that meet at malloc's lock arenas of their own, 64
  // MiB of address space each, and more of them the busier the machine: one
  // arena, so that the address space measures the threads' stacks alone.
  ::mallopt(M_ARENA_MAX, 1);
  const int before = baseline_thread_count();
  ServeThread serve(options());
  INFO(serve.describe());
  // Warm up: glibc keeps the stacks of a few joined threads for reuse.
  for (int i = 0; i < 10; ++i) {
    const Fd client = serve.connect();
    round_trip(client, "warm-up " + std::to_string(i) + "\n");
  }
  REQUIRE(eventually([&] { return serve.server().open_connections() == 0; }));
  const long address_space_before = address_space_kib();
  for (int i = 0; i < 150; ++i) {
    const Fd client = serve.connect();
    round_trip(client, "client " + std::to_string(i) + "\n");
  }
  REQUIRE(eventually([&] { return serve.server().open_connections() == 0; }));
  // The loop can join only threads that have ended: on a busy machine some
  // are still ending after their conversation. Wait (bounded) until they
  // have left /proc/self/task; one more client then makes the loop forget
  // the finished threads.
  (void)eventually([&] { return thread_count() - before <= 6; });
  const Fd last = serve.connect();
  round_trip(last, "last\n");
  // A thread that has ended but was never joined is gone from
  // /proc/self/task, but its stack (8 MiB of address space by default)
  // stays mapped until it is joined: 150 of them are over a gigabyte.
  const auto grown_mib = [&] { return (address_space_kib() - address_space_before) / 1024; };
  CHECK_MESSAGE(eventually([&] { return grown_mib() < 400; }), "after 150 finished conversations the address space grew by ",
                grown_mib(), " MiB: the threads of finished conversations are not joined");
  // The last finished threads leave the kernel's list in their own time:
  // wait (bounded) for the count to come down, then judge it.
  (void)eventually([&] { return thread_count() - before <= 6; });
  const int extra = thread_count() - before;
  CHECK_MESSAGE(extra <= 6, "after 160 finished conversations, the process has ", extra,
                " threads more than before");
}

// ---- 11.3 clean shutdown ------------------------------------------------------

namespace {

// Runs shutdown() on a thread; true if it returned within `limit`. If it
// did not, the clients are closed so that it can end, and the case fails.
bool shutdown_within(ServeThread& serve, std::vector<Fd>& clients, std::chrono::milliseconds limit) {
  auto done = std::async(std::launch::async, [&serve] { serve.server().shutdown(); });
  if (done.wait_for(limit) == std::future_status::ready) {
    done.get();  // rethrows what it threw
    return true;
  }
  clients.clear();
  done.wait();
  return false;
}

}  // namespace

TEST_CASE("11.3 shutdown with 20 silent clients connected returns at once and closes every connection") {
  std::vector<Fd> clients;
  ServeThread serve(options(64, 60'000ms));
  INFO(serve.describe());
  for (int i = 0; i < 20; ++i) {
    clients.push_back(serve.connect());
    round_trip(clients.back(), "hi " + std::to_string(i) + "\n");
  }
  serve.stop();
  const auto started = std::chrono::steady_clock::now();
  REQUIRE_MESSAGE(shutdown_within(serve, clients, 2000ms),
                  "shutdown() took over 2 s with silent clients: shut their sockets down, don't wait for them");
  INFO("shutdown took ", std::chrono::duration_cast<std::chrono::milliseconds>(
                             std::chrono::steady_clock::now() - started).count(), " ms");
  for (std::size_t i = 0; i < clients.size(); ++i) {
    CHECK_MESSAGE(closed_within(clients[i], 1000ms), "client ", i, " is still connected after shutdown()");
  }
  CHECK(serve.server().open_connections() == 0);
}

TEST_CASE("11.3 after shutdown no thread of the server is left running") {
  const int before = baseline_thread_count();
  std::vector<Fd> clients;
  {
    ServeThread serve(options(64, 60'000ms));
    INFO(serve.describe());
    for (int i = 0; i < 10; ++i) {
      clients.push_back(serve.connect());
      round_trip(clients.back(), "x\n");
    }
    serve.stop();
    REQUIRE(shutdown_within(serve, clients, 2000ms));
    CHECK_MESSAGE(thread_count() == before, "threads before the server: ", before,
                  ", after shutdown(): ", thread_count());
  }
}

TEST_CASE("11.3 shutdown requests every conversation's stop token") {
  std::atomic<int> stopped{0};
  std::vector<Fd> clients;
  // A handler that does not read: only its stop token tells it to end
  // (bounded, so that a shutdown which never asks cannot hang the case).
  ServeThread serve(options(64, 60'000ms), [&stopped](const Fd& connection, std::stop_token stop) {
    lab::write_all(connection, "ready\n");
    const auto deadline = std::chrono::steady_clock::now() + 5s;
    while (!stop.stop_requested() && std::chrono::steady_clock::now() < deadline) {
      std::this_thread::sleep_for(1ms);
    }
    if (stop.stop_requested()) {
      ++stopped;
    }
  });
  INFO(serve.describe());
  for (int i = 0; i < 3; ++i) {
    clients.push_back(serve.connect());
    lab::set_receive_timeout(clients.back(), 3000ms);
    REQUIRE(lab::read_exact(clients.back(), 6) == "ready\n");
  }
  serve.stop();
  CHECK_MESSAGE(shutdown_within(serve, clients, 2000ms), "shutdown() took over 2 s: request_stop every thread");
  CHECK_MESSAGE(stopped.load() == 3, stopped.load(), " of 3 handlers saw their stop token requested");
}

TEST_CASE("11.3 shutdown closes a silent client and may be called a second time") {
  std::vector<Fd> clients;
  const lab::Fd listener = lab::tcp_listen(lab::Endpoint{"127.0.0.1", 0});
  const lab::Endpoint endpoint{"127.0.0.1", lab::SocketAddress::local_of(listener.get()).port()};
  lab::threaded::ThreadedServer server(echo_upper, options(64, 60'000ms));
  lab::StopSignal stop;
  auto serving = std::async(std::launch::async, [&] { return server.serve_forever(listener, stop); });
  INFO(lab::testing::outcome(serving));  // the case's failure says what serve_forever threw
  clients.push_back(lab::tcp_connect(endpoint));
  round_trip(clients.back(), "before\n");
  stop.request();
  REQUIRE(serving.wait_for(3s) == std::future_status::ready);
  CHECK(serving.get() == 1);
  auto first = std::async(std::launch::async, [&server] { server.shutdown(); });
  if (first.wait_for(2s) != std::future_status::ready) {
    clients.clear();
    first.wait();
    FAIL("shutdown() took over 2 s with one silent client");
  }
  first.get();
  CHECK(closed_within(clients.back(), 1000ms));
  server.shutdown();  // again: nothing left to do, and no crash
  CHECK(server.open_connections() == 0);
}
