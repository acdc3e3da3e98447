// Lesson 08 — ticket-office server. The number of tickets left lives in a
// file; every client is served by its own forked process, so the buyers
// really are separate processes racing on one file. "buy" takes the file
// lock (your exercise 08.1); "buy-no-lock" does not, to show the oversell.
//
//   build/default/lessons/08_locks/server                  (127.0.0.1:9008, 100 tickets)
//   build/default/lessons/08_locks/server --race-us 0      (no widened race window)
//
// The protocol is in office_protocol.hpp.
#include <fcntl.h>
#include <unistd.h>

#include <charconv>
#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <string>

#include "lab/error.hpp"
#include "lab/forked.hpp"
#include "lab/io.hpp"
#include "lab/program.hpp"
#include "lab/socket.hpp"
#include "lab/text.hpp"
#include "locks.hpp"
#include "office_protocol.hpp"

namespace {

namespace fs = std::filesystem;

// The ticket file, removed when the server ends if the server made it up.
class OfficeFile {
 public:
  OfficeFile(std::string path, int tickets) : path_(std::move(path)) {
    if (path_.empty()) {
      std::string name = (fs::temp_directory_path() / "lab08-tickets-XXXXXX").string();
      const lab::Fd made{::mkostemp(name.data(), O_CLOEXEC)};
      if (!made) {
        throw lab::os_error("mkostemp " + name);
      }
      path_ = name;
      owned_ = true;
    }
    lab::locks::create_office(path_, tickets);
  }
  ~OfficeFile() {
    if (owned_ && ::getpid() == owner_) {
      std::error_code ignored;
      fs::remove(path_, ignored);
    }
  }
  OfficeFile(const OfficeFile&) = delete;
  OfficeFile& operator=(const OfficeFile&) = delete;
  [[nodiscard]] const std::string& path() const { return path_; }

 private:
  std::string path_;
  bool owned_ = false;
  pid_t owner_ = ::getpid();
};

std::string sale_reply(const std::optional<int>& left) {
  return left ? "bought, " + std::to_string(*left) + " left\n" : std::string("sold out\n");
}

// One client's conversation, in its own process. The child opens the file
// ITSELF: a descriptor inherited across fork would share one open file
// description with every other child, and an OFD lock would not keep them
// apart.
int serve_buyer(const lab::Fd& connection, const std::string& path, std::chrono::microseconds race) {
  const lab::Fd office = lab::locks::open_office(path);
  std::string pending;
  try {
    while (const auto line = lab::locks::read_line(connection, pending)) {
      if (*line == "check") {
        lab::write_all(connection, "left " + std::to_string(lab::locks::read_count(office)) + "\n");
      } else if (*line == "buy") {
        lab::write_all(connection, sale_reply(lab::locks::buy_ticket(office, race)));
      } else if (*line == "buy-no-lock") {
        lab::write_all(connection, sale_reply(lab::locks::buy_ticket_without_lock(office, race)));
      } else if (line->rfind("restock ", 0) == 0) {
        int tickets = -1;
        const std::string_view number = std::string_view(*line).substr(8);
        const auto [end, error] = std::from_chars(number.data(), number.data() + number.size(), tickets);
        if (error != std::errc{} || end != number.data() + number.size() || tickets < 0 || tickets > 1'000'000) {
          throw lab::ProtocolError("restock needs a number from 0 to 1000000");
        }
        const lab::locks::FileLock lock(office);
        lab::locks::write_count(office, tickets);
        lab::write_all(connection, "restocked " + std::to_string(tickets) + "\n");
      } else {
        throw lab::ProtocolError("unknown command " + lab::preview(*line, 40));
      }
    }
  } catch (const lab::ProtocolError& error) {
    lab::write_all(connection, std::string("error: ") + error.what() + "\n");
    return 2;
  }
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  lab::ProgramSpec spec = lab::server_spec(8, "ticket-office server: one process per buyer, the count in a file");
  spec.options.push_back({"tickets", "N", "tickets for sale at the start", "100"});
  spec.options.push_back({"file", "PATH", "the ticket file (default: a temporary file)", ""});
  spec.options.push_back({"race-us", "US", "widen the check-then-buy gap by this many microseconds", "2000"});
  spec.options.push_back({"max-buyers", "N", "buyer processes at once; more clients are turned away", "64"});
  spec.options.push_back({"idle-timeout", "SECONDS", "a buyer process ends when its client sends nothing for this long", "10"});
  return lab::run_program(argc, argv, spec, [](const lab::Args& args) {
    const auto tickets = static_cast<int>(args.get_int("tickets", 0, 1'000'000));
    const std::chrono::microseconds race(args.get_int("race-us", 0, 1'000'000));
    const OfficeFile office(args.get("file"), tickets);
    const auto max_buyers = static_cast<std::size_t>(args.get_int("max-buyers", 1, 4096));
    const std::chrono::seconds idle(args.get_int("idle-timeout", 1, 86400));

    const lab::Fd listener = lab::tcp_listen(args.endpoint());
    lab::announce_listening(listener);
    lab::say("{} tickets in {}", tickets, office.path());
    // Every client costs a process: at most `max_buyers` at once, so that a
    // crowd of idle clients cannot use up our processes and descriptors.
    lab::ForkedChildren buyers(max_buyers);  // its destructor kills and reaps what is left
    std::size_t served = 0;
    // This accept_client also reaps each buyer the moment it ends (it polls
    // their pidfds): no zombie waits for the next client to come.
    while (auto client = lab::accept_client(listener, lab::process_stop(), buyers)) {
      try {
        buyers.start([&] {
          // The child has a copy of the listener; only the parent accepts.
          // (The copy of `office` must not delete the file: see ~OfficeFile.)
          const int fd = listener.get();
          ::close(fd);
          // A buyer that says nothing must not keep its process for ever.
          lab::set_receive_timeout(client->socket, idle);
          try {
            return serve_buyer(client->socket, office.path(), race);
          } catch (const std::system_error& error) {
            lab::warn("{}: {}", client->peer.to_string(), error.what());
            return 1;  // a reset: this client's problem only
          }
        });
        ++served;
      } catch (const std::exception& error) {
        // TooManyChildren, or the system is short of processes or
        // descriptors (fork: EAGAIN, pidfd_open: EMFILE): turn this one
        // client away with a reason, and keep serving.
        lab::say("{} turned away: {}", client->peer.to_string(), error.what());
        try {
          lab::write_all(client->socket, "error: the office is full, try again later\n");
        } catch (const std::system_error&) {
          // Gone already: nobody to tell.
        }
      }
    }  // the parent's copy of the connection closes here; the child has its own
    buyers.stop_all(std::chrono::milliseconds(3000));
    lab::say("stopped after {} buyer connection(s); {} ticket(s) left", served,
             lab::locks::read_count(lab::locks::open_office(office.path())));
    return 0;
  });
}
