#!/usr/bin/env python3
"""The Python course's TCP server, for comparison: sends "Welcome!", then
answers each chunk it receives with "Hello, <chunk>!"; "exit" or the end of
the stream ends the conversation, and it waits for the next client.

    python3 tcp_hello_server.py --host 127.0.0.1 --port 0
"""
import argparse
import socket
import sys


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=9002)
    options = parser.parse_args()

    listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    listener.bind((options.host, options.port))
    listener.listen(128)
    host, port = listener.getsockname()
    print(f"listening on {host}:{port}", flush=True)
    while True:
        connection, address = listener.accept()
        print(f"{address[0]}:{address[1]} connected", flush=True)
        with connection:
            connection.sendall(b"Welcome!")
            while True:
                data = connection.recv(1024)
                if not data or data.strip() == b"exit":
                    break
                connection.sendall(b"Hello, " + data.strip() + b"!")


if __name__ == "__main__":
    try:
        main()
    except KeyboardInterrupt:
        sys.exit(0)
