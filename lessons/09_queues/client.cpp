// Lesson 09 — job client: submits many jobs of varied sizes (some far above
// PIPE_BUF), collects the results, and checks that every job came back
// exactly once and correct.
//
//   build/default/lessons/09_queues/client                     (1000 jobs)
//   build/default/lessons/09_queues/client --jobs 5000 --max-size 100000
#include <pthread.h>
#include <sys/socket.h>

#include <csignal>
#include <cstdint>
#include <exception>
#include <map>
#include <string>
#include <thread>
#include <vector>

#include "lab/error.hpp"
#include "lab/program.hpp"
#include "lab/socket.hpp"
#include "lab/stop.hpp"
#include "process_queue.hpp"

namespace {

// Job i's text: lower-case letters, of a size that varies with i from 0 to
// max_size bytes, so that many jobs are longer than PIPE_BUF (4096).
std::string job_text(std::uint64_t i, std::size_t max_size) {
  const std::size_t size = static_cast<std::size_t>((i * 7919) % (max_size + 1));
  std::string text(size, 'a');
  for (std::size_t k = 0; k < size; ++k) {
    text[k] = static_cast<char>('a' + (i + k * 7) % 26);
  }
  return text;
}

// Shuts a connection down both ways when it goes out of scope.
class Wake {
 public:
  explicit Wake(const lab::Fd& connection) : connection_(connection) {}
  ~Wake() { ::shutdown(connection_.get(), SHUT_RDWR); }
  Wake(const Wake&) = delete;
  Wake& operator=(const Wake&) = delete;

 private:
  const lab::Fd& connection_;
};

std::string upper(std::string text) {
  for (char& c : text) {
    c = static_cast<char>(c - 'a' + 'A');
  }
  return text;
}

}  // namespace

int main(int argc, char** argv) {
  lab::ProgramSpec spec = lab::client_spec(9, "job client: submits jobs, checks every result arrives once");
  spec.options.push_back({"jobs", "N", "how many jobs", "1000"});
  spec.options.push_back({"max-size", "BYTES", "the largest job text", "20000"});
  return lab::run_program(argc, argv, spec, [](const lab::Args& args) {
    const auto jobs = static_cast<std::uint64_t>(args.get_int("jobs", 1, 1'000'000));
    const auto max_size = static_cast<std::size_t>(args.get_int("max-size", 0, 1'000'000));
    const lab::Fd connection = lab::tcp_connect(args.endpoint());

    // Send on a second thread while this one reads the results: if we sent
    // everything first, the results would fill the socket buffers, the
    // server would stop, and so would we — a deadlock. The sender blocks
    // SIGINT/SIGTERM, so they reach this thread, which waits on the stop.
    std::exception_ptr send_error;
    std::jthread sender([&] {
      sigset_t stop_signals;
      sigemptyset(&stop_signals);
      sigaddset(&stop_signals, SIGINT);
      sigaddset(&stop_signals, SIGTERM);
      ::pthread_sigmask(SIG_BLOCK, &stop_signals, nullptr);
      try {
        for (std::uint64_t i = 1; i <= jobs; ++i) {
          lab::queues::write_frame(connection, std::to_string(i) + " " + job_text(i, max_size));
        }
        ::shutdown(connection.get(), SHUT_WR);  // "no more jobs"
      } catch (...) {
        send_error = std::current_exception();
        ::shutdown(connection.get(), SHUT_RDWR);  // wake the reader below
      }
    });
    // However this thread leaves (the end, an error frame, a bad result, a
    // stop), the sender may be blocked in send to a server that reads no
    // more: shutdown(2) wakes it (EPIPE) before the jthread joins it.
    // Declared after the sender, so it runs first.
    const Wake wake_sender(connection);

    std::vector<bool> seen(jobs + 1, false);
    std::map<std::string, std::size_t> per_worker;
    std::uint64_t failed = 0;
    std::string first_failure;
    std::string last;
    for (;;) {
      // Wait for the next frame OR a stop: SIGTERM that came just before a
      // blocking read would otherwise interrupt nothing.
      lab::wait_readable(connection.get(), lab::process_stop());
      const auto frame = lab::queues::read_frame(connection);
      if (!frame) {
        break;
      }
      if (frame->rfind("done ", 0) == 0 || frame->rfind("error: ", 0) == 0) {
        last = *frame;
        break;
      }
      // "ID PID TEXT", or "ID error: WHY" for a job the server could not do
      const auto first = frame->find(' ');
      const auto second = frame->find(' ', first == std::string::npos ? first : first + 1);
      if (first == std::string::npos || second == std::string::npos) {
        throw lab::ProtocolError("a malformed result: " + frame->substr(0, 40));
      }
      const std::uint64_t id = std::stoull(frame->substr(0, first));
      if (id < 1 || id > jobs || seen[id]) {
        throw lab::ProtocolError("result " + std::to_string(id) + (id <= jobs ? " came twice" : " was never asked for"));
      }
      seen[id] = true;
      if (frame->compare(first + 1, 7, "error: ") == 0) {
        if (failed++ == 0) {
          first_failure = "job " + *frame;
        }
        continue;
      }
      if (frame->compare(second + 1, std::string::npos, upper(job_text(id, max_size))) != 0) {
        throw lab::ProtocolError("result " + std::to_string(id) + " is not the job's text in upper case");
      }
      ++per_worker[frame->substr(first + 1, second - first - 1)];
    }
    if (last.rfind("error: ", 0) == 0) {
      throw lab::ProtocolError("the server ended the request: " + last.substr(7));
    }
    ::shutdown(connection.get(), SHUT_RDWR);
    sender.join();
    if (send_error && last.empty()) {
      std::rethrow_exception(send_error);
    }
    if (last != "done " + std::to_string(jobs)) {
      throw lab::ProtocolError("expected 'done " + std::to_string(jobs) + "' at the end, got '" + last + "'");
    }
    if (failed > 0) {
      throw lab::ProtocolError(std::to_string(failed) + " of " + std::to_string(jobs) +
                               " jobs failed; the first: " + first_failure);
    }
    std::string shares;
    for (const auto& [pid, count] : per_worker) {
      shares += " " + std::to_string(count);
    }
    lab::say("{} jobs sent, {} results, each exactly once and correct", jobs, jobs);
    lab::say("{} worker process(es) shared the work:{}", per_worker.size(), shares);
    return 0;
  });
}
