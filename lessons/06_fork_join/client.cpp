// Lesson 06 — fork and join, the client: first shows that a child's memory
// is a copy, then forks N worker processes that each ask the server for a
// greeting, joins them all, and prints each worker's pid and exit status.
//
//   build/default/lessons/06_fork_join/client                 (4 workers)
//   build/default/lessons/06_fork_join/client --workers 20
//   build/default/lessons/06_fork_join/client --crash 1       (worker 1 dies by SIGABRT)
#include <unistd.h>

#include <cstdlib>
#include <string>
#include <vector>

#include "fork_join.hpp"
#include "lab/io.hpp"
#include "lab/process.hpp"
#include "lab/program.hpp"
#include "lab/socket.hpp"

namespace {

int g_x = 10;  // the Python course's global x

// One worker's conversation: send "worker N", print the reply. Runs in the
// child process; its return value becomes the child's exit status.
int talk(const lab::Fd& connection, int index) {
  const std::string name = "worker " + std::to_string(index);
  lab::write_all(connection, name + "\n");
  lab::LineReader reader(connection);
  const auto reply = reader.next_line(std::chrono::milliseconds(5000));
  if (!reply) {
    lab::warn("{}: the server closed the connection without a reply", name);
    return 1;
  }
  lab::say("{} (pid {}, parent {}) got: {}", name, ::getpid(), ::getppid(), *reply);
  return reply->rfind("hello " + name + " from pid ", 0) == 0 ? 0 : 1;
}

}  // namespace

int main(int argc, char** argv) {
  lab::ProgramSpec spec = lab::client_spec(6, "forks N workers that each talk to the server, then joins them");
  spec.options.push_back({"workers", "N", "how many worker processes to fork", "4"});
  spec.options.push_back({"crash", "K", "worker K aborts instead of talking (-1: none)", "-1"});
  return lab::run_program(argc, argv, spec, [](const lab::Args& args) {
    const int workers = static_cast<int>(args.get_int("workers", 1, 500));
    const int crash = static_cast<int>(args.get_int("crash", -1, 499));

    // fork copies memory: the child's x = 100 changes only the child's copy.
    const auto isolation = lab::fork_join::change_in_child(g_x, 100);
    lab::say("fork copies memory: child {} (parent {}) set x = {}; the parent's x is still {}",
             isolation.child_pid, isolation.child_parent, isolation.child_saw, isolation.parent_sees);

    // The parent opens every connection first: a missing server is then one
    // clear error here. fork copies the descriptor table too, so worker i
    // finds connection i already open.
    std::vector<lab::Fd> connections;
    for (int i = 0; i < workers; ++i) {
      connections.push_back(lab::tcp_connect(args.endpoint()));
    }
    lab::say("parent {} forks {} worker(s)", ::getpid(), workers);
    const auto joined = lab::fork_join::spawn_and_join(workers, [&](int index) {
      if (index == crash) {
        std::abort();  // a crash: the parent sees "killed by SIGABRT"
      }
      return talk(connections[static_cast<std::size_t>(index)], index);
    });

    bool all_well = true;
    for (std::size_t i = 0; i < joined.size(); ++i) {
      lab::say("joined worker {}: pid {} {}", i, joined[i].pid, joined[i].status.to_string());
      all_well = all_well && joined[i].status.success();
    }
    return all_well ? 0 : 1;
  });
}
