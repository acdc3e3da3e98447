// Exercises 11.1–11.3 — write the threaded server here. threaded_server.hpp
// says what each part must do. Grade with:
//   cmake --workflow --preset grade
#include "threaded_server.hpp"

#include "lab/error.hpp"

namespace lab::threaded {

namespace {
constexpr const char* kLesson = "lessons/11_threaded_server";
}  // namespace

// ---- 11.2 the fixed pool ----

WorkerPool::WorkerPool(std::size_t /*workers*/, std::size_t queue_capacity, Handler handle)
    : handle_(std::move(handle)), queue_capacity_(queue_capacity) {
  throw NotImplemented("11.2", "the fixed pool", kLesson);
}

WorkerPool::~WorkerPool() {
  // Exercise 11.2: call stop() here, so that the workers (joined when
  // workers_ is destroyed) wake up and end.
}

bool WorkerPool::submit(Fd& /*connection*/) {
  // The members you will use here (named so that the compiler does not
  // call them unused while this is a stub).
  static_cast<void>(queue_capacity_);
  static_cast<void>(stopped_);
  throw NotImplemented("11.2", "the fixed pool", kLesson);
}

void WorkerPool::stop() {
  throw NotImplemented("11.2", "the fixed pool", kLesson);
}

std::size_t WorkerPool::handled() const {
  throw NotImplemented("11.2", "the fixed pool", kLesson);
}

void WorkerPool::work(std::stop_token /*stop*/) {
  throw NotImplemented("11.2", "the fixed pool", kLesson);
}

// ---- 11.1 the server class ----

ThreadedServer::ThreadedServer(Handler handler, ServerOptions options)
    : handler_(std::move(handler)), options_(options), connections_(options.max_connections) {}

ThreadedServer::~ThreadedServer() {
  // Exercise 11.3: call shutdown() here (inside try/catch: a destructor
  // must not throw).
}

std::size_t ThreadedServer::serve_forever(const Fd& /*listener*/, const StopSignal& /*stop*/) {
  throw NotImplemented("11.1", "the server class", kLesson);
}

void ThreadedServer::forget_finished() {
  throw NotImplemented("11.1", "the server class", kLesson);
}

// ---- 11.3 clean shutdown ----

void ThreadedServer::shutdown() {
  throw NotImplemented("11.3", "clean shutdown", kLesson);
}

}  // namespace lab::threaded
