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

#include <chrono>
#include <map>
#include <optional>
#include <string>

#include "lab/deadline.hpp"
#include "lab/error.hpp"
#include "lab/forked.hpp"
#include "lab/program.hpp"
#include "lab/socket.hpp"
#include "lab/stop.hpp"
#include "lingering_close.hpp"
#include "process_queue.hpp"
#include "supervision.hpp"  // wait_for_news, supervise_workers
#include "worker.hpp"       // run_worker, run_feeder
#include "worker_board.hpp"

namespace {

using lab::queues::ProcessQueue;

// In a forked child: its copies of the listener and of the connection are
// not its business. (The child ends with _exit, so no Fd closes them again.)
void close_in_child(const lab::Fd& fd) { ::close(fd.get()); }

std::size_t serve_client(const lab::Fd& listener, const lab::Fd& connection, int workers,
                         std::size_t capacity, std::chrono::milliseconds work,
                         lab::ClientDeadlines deadlines) {
  // One client at a time: its whole conversation is one request, bounded by
  // the request deadline; each read (in the feeder) and each write of a
  // result by the idle deadline, so a silent or non-reading client is dropped.
  lab::set_io_timeouts(connection, deadlines.idle);
  std::optional<lab::Clock::time_point> request_deadline;  // none: no limit
  if (deadlines.request.count() > 0) {
    request_deadline = lab::Clock::now() + deadlines.request;
  }
  ProcessQueue jobs(capacity);
  ProcessQueue results(capacity);
  lab::queues::WorkerBoard board(static_cast<std::size_t>(workers));
  lab::ForkedChildren processes;        // killed and reaped if we leave early
  std::map<pid_t, std::size_t> lines;   // each running worker's line on the board

  const auto start_worker = [&](std::size_t line) {
    board.waiting(line);
    lines[processes.start([&, line] {
      close_in_child(listener);
      close_in_child(connection);
      return lab::queues::run_worker(jobs, results, board, line, work);
    })] = line;
  };
  for (std::size_t w = 0; w < static_cast<std::size_t>(workers); ++w) {
    start_worker(w);
  }
  // The feeder: reads the client's jobs and puts them into the queue. It is
  // a process of its own so that the server can read results at the same
  // time; otherwise full queues would stop everyone (a deadlock).
  const pid_t feeder = processes.start([&] {
    close_in_child(listener);
    return lab::queues::run_feeder(connection, jobs, results);
  });
  std::optional<lab::ExitStatus> feeder_status;
  // This process only reads results, and keeps the read end of the jobs
  // and the write end of the results for the workers it may have to start
  // in place of dead ones. So the end of the results is not the end of
  // the stream (we hold a write end) but every child having ended.
  jobs.close();

  std::size_t count = 0;
  const auto forward = [&](const std::string& result) {
    lab::queues::write_frame(connection, result);
    ++count;
  };
  while (!feeder_status || !lines.empty()) {
    // Wait for a result, a child's end OR a stop request, never in a
    // blocking get alone: a SIGTERM that came just before it would be missed.
    if (lab::queues::wait_for_news(results, processes, request_deadline)) {
      if (const auto result = results.get()) {  // we hold a write end: never the end here
        forward(*result);
      }
    }
    // A child that ended: the feeder (its status is kept for the end), or a
    // worker. A worker that finished leaves; one that died is reported and
    // replaced, unless it died in the middle of moving a frame.
    if (!feeder_status) {
      feeder_status = processes.status_of(feeder);
    }
    lab::queues::supervise_workers(processes, lines, board, forward, start_worker);
  }
  // Every child has ended, so all they wrote is in the results pipe: give
  // up our write end, and the results that are left end in end of stream.
  results.consumer_only();
  while (const auto result = results.get()) {
    forward(*result);
  }
  if (!feeder_status->success()) {
    lab::queues::write_frame(connection, "error: a malformed job; see the server's log");
    throw lab::ProtocolError("the feeder " + feeder_status->to_string());
  }
  lab::queues::write_frame(connection, "done " + std::to_string(count));
  return count;
}

}  // namespace

int main(int argc, char** argv) {
  lab::ProgramSpec spec = lab::server_spec(9, "job server: worker processes behind an inter-process queue");
  spec.options.push_back({"workers", "N", "worker processes per client", "4"});
  spec.options.push_back({"capacity", "BYTES", "each queue's pipe buffer", "65536"});
  spec.options.push_back({"work-ms", "MS", "how long each job takes a worker (simulated work)", "0"});
  lab::add_deadline_options(spec, {std::chrono::seconds(10), std::chrono::seconds(30)});
  return lab::run_program(argc, argv, spec, [](const lab::Args& args) {
    const auto workers = static_cast<int>(args.get_int("workers", 1, 64));
    const auto capacity = static_cast<std::size_t>(args.get_int("capacity", 4096, 1024 * 1024));
    const std::chrono::milliseconds work{args.get_int("work-ms", 0, 600000)};
    const lab::ClientDeadlines deadlines = lab::deadline_options(args);
    const lab::Fd listener = lab::tcp_listen(args.endpoint());
    lab::announce_listening(listener);
    std::size_t clients = 0;
    while (auto client = lab::accept_client(listener, lab::process_stop())) {
      const std::string peer = client->peer.to_string();
      try {
        const std::size_t jobs = serve_client(listener, client->socket, workers, capacity, work, deadlines);
        lab::say("{}: {} job(s) done by {} worker(s)", peer, jobs, workers);
        ++clients;
      } catch (const lab::queues::RequestBroken& error) {
        lab::say("{}: {}; the request ends here", peer, error.what());
        lab::queues::send_error_and_close(client->socket,
                                          std::string(error.what()) + "; the request ends here");
      } catch (const lab::ProtocolError& error) {
        lab::say("{} refused: {}", peer, error.what());
        lab::queues::close_after_error(client->socket);
      } catch (const std::system_error& error) {
        lab::say("{} dropped: {}", peer, error.what());
      }
    }
    lab::say("stopped after {} client(s)", clients);
    return 0;
  });
}
