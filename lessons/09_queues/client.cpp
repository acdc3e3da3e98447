// Lesson 09 — job client: submits many jobs of varied sizes (some far above
// PIPE_BUF), collects the results, and checks that every job came back
// exactly once and correct.
//
//   build/default/lessons/09_queues/client                     (1000 jobs)
//   build/default/lessons/09_queues/client --jobs 5000 --max-size 100000
#include <sys/socket.h>

#include <cstdint>
#include <exception>
#include <map>
#include <string>
#include <thread>
#include <vector>

#include "lab/error.hpp"
#include "lab/program.hpp"
#include "lab/socket.hpp"
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
    // server would stop, and so would we — a deadlock.
    std::exception_ptr send_error;
    std::jthread sender([&] {
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

    std::vector<bool> seen(jobs + 1, false);
    std::map<std::string, std::size_t> per_worker;
    std::string last;
    while (auto frame = lab::queues::read_frame(connection)) {
      if (frame->rfind("done ", 0) == 0 || frame->rfind("error: ", 0) == 0) {
        last = *frame;
        break;
      }
      // "ID PID TEXT"
      const auto first = frame->find(' ');
      const auto second = frame->find(' ', first == std::string::npos ? first : first + 1);
      if (first == std::string::npos || second == std::string::npos) {
        throw lab::ProtocolError("a malformed result: " + frame->substr(0, 40));
      }
      const std::uint64_t id = std::stoull(frame->substr(0, first));
      if (id < 1 || id > jobs || seen[id]) {
        throw lab::ProtocolError("result " + std::to_string(id) + (id <= jobs ? " came twice" : " was never asked for"));
      }
      if (frame->compare(second + 1, std::string::npos, upper(job_text(id, max_size))) != 0) {
        throw lab::ProtocolError("result " + std::to_string(id) + " is not the job's text in upper case");
      }
      seen[id] = true;
      ++per_worker[frame->substr(first + 1, second - first - 1)];
    }
    sender.join();
    if (send_error) {
      std::rethrow_exception(send_error);
    }
    if (last != "done " + std::to_string(jobs)) {
      throw lab::ProtocolError("expected 'done " + std::to_string(jobs) + "' at the end, got '" + last + "'");
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
