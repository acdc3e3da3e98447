// Lesson 09 — job server: for each client, a pool of worker PROCESSES fed
// through an inter-process queue.
//
//   build/default/lessons/09_queues/server                (127.0.0.1:9009, 4 workers)
//   build/default/lessons/09_queues/server --workers 8
//
// Per client connection:
//
//   client ──frames──▶ feeder process ──jobs queue──▶ worker 1..N ──results queue──▶ server ──frames──▶ client
//
// Every job and result is a frame (4-byte big-endian length + payload, your
// write_frame/read_frame). A job is "ID TEXT"; its result is
// "ID WORKER-PID TEXT-IN-UPPER-CASE". After the last result the server
// sends "done N" (N jobs) — or "error: ..." if a job was malformed — and
// closes. End of stream does the signalling: the client shuts down its
// sending side, the feeder sees the end and closes the jobs queue, the
// workers drain it and close the results queue, and the server sees the end
// of the results.
#include <unistd.h>

#include <cctype>
#include <string>

#include "lab/deadline.hpp"
#include "lab/error.hpp"
#include "lab/forked.hpp"
#include "lab/io.hpp"
#include "lab/program.hpp"
#include "lab/socket.hpp"
#include "lab/stop.hpp"
#include "process_queue.hpp"

namespace {

using lab::queues::ProcessQueue;

// A job's id: the digits before the first space. Throws ProtocolError.
std::string job_id(const std::string& job) {
  const auto space = job.find(' ');
  if (space == 0 || space == std::string::npos || space > 20) {
    throw lab::ProtocolError("a job must start with 'ID ' (got " + std::to_string(job.size()) + " bytes)");
  }
  for (std::size_t i = 0; i < space; ++i) {
    if (std::isdigit(static_cast<unsigned char>(job[i])) == 0) {
      throw lab::ProtocolError("a job's ID must be a number");
    }
  }
  return job.substr(0, space);
}

// The work itself: upper-case the text (ASCII only).
std::string do_job(const std::string& job) {
  const std::string id = job_id(job);
  std::string result = id + " " + std::to_string(::getpid()) + " ";
  for (std::size_t i = id.size() + 1; i < job.size(); ++i) {
    const char c = job[i];
    result.push_back(c >= 'a' && c <= 'z' ? static_cast<char>(c - 'a' + 'A') : c);
  }
  return result;
}

// In a forked child: its copies of the listener and of the connection are
// not its business. (The child ends with _exit, so no Fd closes them again.)
void close_in_child(const lab::Fd& fd) { ::close(fd.get()); }

std::size_t serve_client(const lab::Fd& listener, const lab::Fd& connection, int workers,
                         std::size_t capacity, lab::ClientDeadlines deadlines) {
  // One client at a time: its whole conversation is one request, bounded by
  // the request deadline; each read (in the feeder) and each write of a
  // result by the idle deadline, so a silent or non-reading client is dropped.
  lab::set_io_timeouts(connection, deadlines.idle);
  const auto request_deadline = std::chrono::steady_clock::now() + deadlines.request;
  ProcessQueue jobs(capacity);
  ProcessQueue results(capacity);
  lab::ForkedChildren processes;  // killed and reaped if we leave early

  for (int w = 0; w < workers; ++w) {
    processes.start([&] {
      close_in_child(listener);
      close_in_child(connection);
      jobs.consumer_only();     // a worker takes jobs...
      results.producer_only();  // ...and gives results
      while (const auto job = jobs.get()) {
        results.put(do_job(*job));
      }
      results.close();
      return 0;
    });
  }
  // The feeder: reads the client's jobs and puts them into the queue. It is
  // a process of its own so that the server can read results at the same
  // time; otherwise full queues would stop everyone (a deadlock).
  processes.start([&] {
    close_in_child(listener);
    jobs.producer_only();
    results.consumer_only();  // never writes results: its write end must go
    while (const auto job = lab::queues::read_frame(connection)) {
      job_id(*job);  // refuse garbage here, before a worker gets it
      jobs.put(*job);
    }
    jobs.close();
    return 0;
  });
  // This process only reads results. Its own copies of the write ends must
  // be closed, or the end of stream would never come.
  jobs.close();
  results.consumer_only();

  std::size_t count = 0;
  for (;;) {
    // Wait for a result OR a stop request: a SIGTERM that came just before
    // a blocking read would otherwise be missed, and the read never end.
    const auto left = std::chrono::ceil<std::chrono::milliseconds>(request_deadline -
                                                                    std::chrono::steady_clock::now());
    if (deadlines.request.count() == 0) {
      lab::wait_readable(results.read_end().get(), lab::process_stop());
    } else if (left.count() <= 0 || !lab::wait_readable(results.read_end().get(), lab::process_stop(), left)) {
      throw lab::TimeoutError("request timeout: not done within the --request-timeout");
    }
    const auto result = results.get();
    if (!result) {
      break;
    }
    lab::queues::write_frame(connection, *result);
    ++count;
  }
  // Every worker has closed the results queue, so all have ended or are
  // about to; the feeder ended before them.
  const auto statuses = processes.wait_all(std::chrono::seconds(10));
  if (!statuses.back().success()) {
    lab::queues::write_frame(connection, "error: a malformed job; see the server's log");
    throw lab::ProtocolError("the feeder " + statuses.back().to_string());
  }
  lab::queues::write_frame(connection, "done " + std::to_string(count));
  return count;
}

}  // namespace

int main(int argc, char** argv) {
  lab::ProgramSpec spec = lab::server_spec(9, "job server: worker processes behind an inter-process queue");
  spec.options.push_back({"workers", "N", "worker processes per client", "4"});
  spec.options.push_back({"capacity", "BYTES", "each queue's pipe buffer", "65536"});
  lab::add_deadline_options(spec, {std::chrono::seconds(10), std::chrono::seconds(30)});
  return lab::run_program(argc, argv, spec, [](const lab::Args& args) {
    const auto workers = static_cast<int>(args.get_int("workers", 1, 64));
    const auto capacity = static_cast<std::size_t>(args.get_int("capacity", 4096, 1024 * 1024));
    const lab::ClientDeadlines deadlines = lab::deadline_options(args);
    const lab::Fd listener = lab::tcp_listen(args.endpoint());
    lab::announce_listening(listener);
    std::size_t clients = 0;
    while (auto client = lab::accept_client(listener, lab::process_stop())) {
      const std::string peer = client->peer.to_string();
      try {
        const std::size_t jobs = serve_client(listener, client->socket, workers, capacity, deadlines);
        lab::say("{}: {} job(s) done by {} worker(s)", peer, jobs, workers);
        ++clients;
      } catch (const lab::ProtocolError& error) {
        lab::say("{} refused: {}", peer, error.what());
      } catch (const std::system_error& error) {
        lab::say("{} dropped: {}", peer, error.what());
      }
    }
    lab::say("stopped after {} client(s)", clients);
    return 0;
  });
}
