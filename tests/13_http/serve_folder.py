# A plain HTTP/1.1 file server from Python's standard library, for lesson
# 13's interoperability tests: binds 127.0.0.1 port 0, prints the ready line
# "listening on 127.0.0.1:PORT", serves the folder given as its argument.
#   python3 tests/13_http/serve_folder.py DIR
import functools
import http.server
import sys


class QuietHandler(http.server.SimpleHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # Content-Length and keep-alive, not 1.0's close

    def log_message(self, format, *args):
        pass


def main():
    handler = functools.partial(QuietHandler, directory=sys.argv[1])
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    server.daemon_threads = True
    print(f"listening on 127.0.0.1:{server.server_address[1]}", flush=True)
    server.serve_forever()


if __name__ == "__main__":
    main()
