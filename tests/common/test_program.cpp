#include <doctest/doctest.h>

#include <cerrno>

#include "lab/error.hpp"
#include "lab/program.hpp"
#include "lab/testing.hpp"
#include "lab/text.hpp"

namespace {

lab::Args parse(const lab::ProgramSpec& spec, std::vector<const char*> words) {
  words.insert(words.begin(), "prog");
  return lab::Args::parse(spec, static_cast<int>(words.size()), words.data());
}

// Parses, then reads --host/--port as a server would (which validates the port).
void use_endpoint(const lab::ProgramSpec& spec, std::vector<const char*> words) {
  const lab::Endpoint endpoint = parse(spec, std::move(words)).endpoint();
  static_cast<void>(endpoint);
}

}  // namespace

TEST_CASE("server options default to 127.0.0.1 and port 90NN") {
  const auto spec = lab::server_spec(2, "test server");
  const auto args = parse(spec, {});
  CHECK(args.get("host") == "127.0.0.1");
  CHECK(args.endpoint() == lab::Endpoint{"127.0.0.1", 9002});
  CHECK(parse(lab::server_spec(13, "x"), {}).endpoint().port == 9013);
}

TEST_CASE("options take '--name value' and '--name=value', flags and operands") {
  auto spec = lab::client_spec(1, "test client");
  spec.options.push_back({"verbose", "", "talk more", ""});
  spec.positionals = "[NAME...]";
  const auto args = parse(spec, {"--host", "::1", "--port=0", "--verbose", "ann", "--", "--bob"});
  CHECK(args.endpoint() == lab::Endpoint{"::1", 0});
  CHECK(args.flag("verbose"));
  CHECK(args.positionals() == std::vector<std::string>{"ann", "--bob"});
  CHECK(parse(spec, {"-h"}).flag("help"));
}

TEST_CASE("bad command lines are UsageErrors that say what is wrong") {
  const auto spec = lab::server_spec(1, "x");
  CHECK_THROWS_WITH_AS(parse(spec, {"--nope"}), "unknown option '--nope'",
                       lab::UsageError);
  CHECK_THROWS_WITH_AS(parse(spec, {"--port"}), "--port needs a value (PORT)", lab::UsageError);
  CHECK_THROWS_WITH_AS(parse(spec, {"extra"}), "unexpected argument 'extra'",
                       lab::UsageError);
  CHECK_THROWS_WITH_AS(use_endpoint(spec, {"--port", "70000"}),
                       "--port must be a whole number from 0 to 65535, not '70000'",
                       lab::UsageError);
  CHECK_THROWS_AS(use_endpoint(spec, {"--port", "12a"}), lab::UsageError);
}

TEST_CASE("usage text lists every option with its default") {
  const auto text = lab::usage_text(lab::server_spec(1, "UDP server"), "server");
  CHECK(text.find("usage: server [OPTIONS]") == 0);
  CHECK(text.find("--host HOST") != std::string::npos);
  CHECK(text.find("(default 9001)") != std::string::npos);
  CHECK(text.find("--help") != std::string::npos);
}

TEST_CASE("NotImplemented names the exercise and the README") {
  const lab::NotImplemented error("02.3", "the connection loop", "lessons/02_tcp");
  CHECK(std::string(error.what()) ==
        "not implemented: exercise 02.3 (the connection loop) \u2014 see lessons/02_tcp/README.md");
}

TEST_CASE("preview escapes bytes and shortens long payloads") {
  CHECK(lab::preview("hi\n") == "\"hi\\n\"");
  CHECK(lab::preview(std::string("\x00\xff\"", 3)) == "\"\\x00\\xff\\\"\"");
  CHECK(lab::preview(std::string(100, 'a'), 4) == "\"aaaa\"... (100 bytes)");
  CHECK(lab::chomp("line\r\n") == "line");
  CHECK(lab::chomp("line\n") == "line");
  CHECK(lab::chomp("line") == "line");
}

TEST_CASE("shell_quote leaves plain words alone and quotes the rest so that a shell reads them back") {
  CHECK(lab::shell_quote("build/default/lab") == "build/default/lab");
  CHECK(lab::shell_quote("--test-case=01.1") == "--test-case=01.1");
  CHECK(lab::shell_quote("") == "''");
  CHECK(lab::shell_quote("two words") == "'two words'");
  CHECK(lab::shell_quote("it's") == "'it'\\''s'");
  CHECK(lab::shell_quote("$HOME;rm") == "'$HOME;rm'");
  // What sh -c makes of the quoted word is the word itself.
  const std::string word = "it's a $(test) of \"quotes\" and `ticks`";
  const auto echoed = lab::testing::run({"sh", "-c", "printf %s " + lab::shell_quote(word)});
  CHECK(echoed.out == word);
}

TEST_CASE("a client's connection errors come with advice that fits the error") {
  const auto client = lab::client_spec(2, "test client");
  const auto refused = lab::describe_failure(client, lab::os_error(ECONNREFUSED, "connect 127.0.0.1:9002"));
  CHECK(refused.find("connect 127.0.0.1:9002: Connection refused (ECONNREFUSED)") == 0);
  CHECK(refused.find("is the server running?") != std::string::npos);

  // The server was there and then went: telling the student to start it
  // would send them looking in the wrong place.
  const auto reset = lab::describe_failure(client, lab::os_error(ECONNRESET, "recv"));
  CHECK(reset.find("recv: Connection reset by peer (ECONNRESET)") == 0);
  CHECK(reset.find("the server closed the connection") != std::string::npos);
  CHECK(reset.find("is the server running?") == std::string::npos);

  const auto broken = lab::describe_failure(client, lab::os_error(EPIPE, "send"));
  CHECK(broken.find("send: Broken pipe (EPIPE)") == 0);
  CHECK(broken.find("the server closed the connection") != std::string::npos);
  CHECK(broken.find("is the server running?") == std::string::npos);
}

TEST_CASE("a server's errors: advice for a port in use, none for others") {
  const auto server = lab::server_spec(2, "test server");
  const auto in_use = lab::describe_failure(server, lab::os_error(EADDRINUSE, "bind 127.0.0.1:9002"));
  CHECK(in_use.find("bind 127.0.0.1:9002: Address already in use (EADDRINUSE)") == 0);
  CHECK(in_use.find("pick another with --port") != std::string::npos);
  CHECK(lab::describe_failure(server, lab::os_error(EMFILE, "accept")) ==
        "accept: Too many open files (EMFILE)");
}
