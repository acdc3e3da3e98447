"""Lesson 11's echo-upper protocol on Python's socketserver.ThreadingTCPServer,
as the course writes it: the yardstick for bench11_threaded_server.

    python3 threading_tcp_server.py --port 0

Prints "listening on HOST:PORT" once ready (the lab's ready line); stops on
SIGTERM or Ctrl-C.
"""
import argparse
import signal
import socketserver
import sys
import threading


class EchoUpper(socketserver.BaseRequestHandler):
    def handle(self):
        while True:
            data = self.request.recv(4096)
            if not data:
                return
            self.request.sendall(data.upper())  # bytes.upper(): ASCII letters only


class Server(socketserver.ThreadingTCPServer):
    allow_reuse_address = True
    daemon_threads = True  # the course's habit; lesson 11's README says what it costs


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=0)
    args = parser.parse_args()
    with Server((args.host, args.port), EchoUpper) as server:
        host, port = server.server_address[:2]
        print(f"listening on {host}:{port}", flush=True)
        # serve_forever on a thread, so the main thread can wait for SIGTERM.
        stopped = threading.Event()
        signal.signal(signal.SIGTERM, lambda *_: stopped.set())
        signal.signal(signal.SIGINT, lambda *_: stopped.set())
        runner = threading.Thread(target=server.serve_forever)
        runner.start()
        stopped.wait()
        server.shutdown()
        runner.join()
    return 0


if __name__ == "__main__":
    sys.exit(main())
