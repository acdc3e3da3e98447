#!/usr/bin/env python3
"""The Python course's UDP server, for comparison: replies to each datagram
with its payload upper-cased, and prints what came in.

    python3 udp_upper_server.py --host 127.0.0.1 --port 0
"""
import argparse
import socket
import sys


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=9001)
    options = parser.parse_args()

    server = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    server.bind((options.host, options.port))
    host, port = server.getsockname()
    print(f"listening on {host}:{port}", flush=True)
    while True:
        data, address = server.recvfrom(65535)
        server.sendto(data.upper(), address)
        print(f"{address[0]}:{address[1]} sent {len(data)} bytes: {data!r}")


if __name__ == "__main__":
    try:
        main()
    except KeyboardInterrupt:
        sys.exit(0)
