// Lesson 08 — ticket-office client: restocks the office, then launches N
// buyer PROCESSES at once; each checks the count and buys, again and again.
// At the end it compares the tickets bought with the tickets there were.
//
//   build/default/lessons/08_locks/client                 (50 buyers x 20 attempts, 100 tickets)
//   build/default/lessons/08_locks/client --no-lock       (the race: watch it oversell)
#include <charconv>
#include <chrono>
#include <string>

#include "lab/error.hpp"
#include "lab/forked.hpp"
#include "lab/io.hpp"
#include "lab/program.hpp"
#include "lab/socket.hpp"
#include "office_protocol.hpp"

namespace {

// Sends one command and returns the server's one-line reply.
std::string ask(const lab::Fd& connection, std::string& pending, const std::string& command) {
  lab::write_all(connection, command + "\n");
  auto reply = lab::locks::read_line(connection, pending);
  if (!reply) {
    throw lab::ProtocolError("the server closed the connection after '" + command + "'");
  }
  if (reply->rfind("error: ", 0) == 0) {
    throw lab::ProtocolError("the server said: " + *reply);
  }
  return *reply;
}

int left_in(const std::string& reply) {
  int left = 0;
  if (reply.rfind("left ", 0) != 0 ||
      std::from_chars(reply.data() + 5, reply.data() + reply.size(), left).ec != std::errc{}) {
    throw lab::ProtocolError("expected 'left N', got '" + reply + "'");
  }
  return left;
}

// One buyer process: check, and buy while tickets seem to be left.
// Returns (as its exit status) how many tickets it bought.
int buyer(const lab::Endpoint& office, int attempts, bool use_lock) {
  const lab::Fd connection = lab::tcp_connect(office);
  std::string pending;
  int bought = 0;
  for (int attempt = 0; attempt < attempts; ++attempt) {
    if (left_in(ask(connection, pending, "check")) <= 0) {
      break;  // sold out: no point in trying again
    }
    const std::string reply = ask(connection, pending, use_lock ? "buy" : "buy-no-lock");
    if (reply.rfind("bought", 0) == 0) {
      ++bought;
    }
  }
  return bought;
}

}  // namespace

int main(int argc, char** argv) {
  lab::ProgramSpec spec = lab::client_spec(8, "ticket-office client: many buyer processes at once");
  spec.options.push_back({"buyers", "N", "buyer processes", "50"});
  spec.options.push_back({"attempts", "N", "purchases each buyer tries", "20"});
  spec.options.push_back({"tickets", "N", "tickets to restock before the rush", "100"});
  spec.options.push_back({"no-lock", "", "buy without the file lock (shows the race)", ""});
  return lab::run_program(argc, argv, spec, [](const lab::Args& args) {
    const auto buyers = static_cast<int>(args.get_int("buyers", 1, 200));
    const auto attempts = static_cast<int>(args.get_int("attempts", 1, 100));  // an exit status holds it
    const auto tickets = static_cast<int>(args.get_int("tickets", 0, 1'000'000));
    const bool use_lock = !args.flag("no-lock");
    const lab::Endpoint office = args.endpoint();

    {
      const lab::Fd connection = lab::tcp_connect(office);
      std::string pending;
      ask(connection, pending, "restock " + std::to_string(tickets));
    }

    lab::ForkedChildren processes;  // killed and reaped if anything goes wrong
    for (int i = 0; i < buyers; ++i) {
      processes.start([&] { return buyer(office, attempts, use_lock); });
    }
    int bought = 0;
    int failed = 0;
    for (const lab::ExitStatus& status : processes.wait_all(std::chrono::minutes(5))) {
      if (status.exited() && status.code <= attempts) {
        bought += status.code;
      } else {
        ++failed;  // it printed why on stderr
      }
    }
    if (failed > 0) {
      throw lab::ProtocolError(std::to_string(failed) + " buyer process(es) failed");
    }

    const lab::Fd connection = lab::tcp_connect(office);
    std::string pending;
    const int left = left_in(ask(connection, pending, "check"));
    lab::say("{} buyers x {} attempts{}: bought {} ticket(s); {} were for sale, {} left",
             buyers, attempts, use_lock ? "" : " WITHOUT the lock", bought, tickets, left);
    if (bought + left == tickets) {
      lab::say("OK: every ticket sold once, none sold twice");
      return 0;
    }
    lab::say("OVERSOLD: {} tickets sold but the count went down by only {}", bought, tickets - left);
    return use_lock ? 1 : 0;  // without the lock this is the demo; with it, a bug
  });
}
