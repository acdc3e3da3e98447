#!/usr/bin/env python3
"""The Python course's verified download, for comparison with lesson 04.

The server sends a header (a 4-byte big-endian length, then JSON with the
file's name, size and SHA-256, computed with hashlib before sending), then
the file in 64 KiB pieces. The client writes to a temporary file while
hashing, checks size and digest, fsyncs and renames.

    python3 download_pair.py --host 127.0.0.1 --port 0 --dir DIR   (server)
    python3 download_pair.py get NAME --port PORT --to DIR          (client)
"""
import argparse
import hashlib
import json
import os
import socket
import struct
import sys

CHUNK = 64 * 1024


def recv_exact(connection, count):
    pieces = []
    while count > 0:
        piece = connection.recv(min(count, 1 << 20))
        if not piece:
            raise ConnectionError("the connection closed early")
        pieces.append(piece)
        count -= len(piece)
    return b"".join(pieces)


def serve(options):
    listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    listener.bind((options.host, options.port))
    listener.listen(16)
    host, port = listener.getsockname()
    print(f"listening on {host}:{port}", flush=True)
    while True:
        connection, _ = listener.accept()
        with connection:
            (length,) = struct.unpack(">I", recv_exact(connection, 4))
            name = recv_exact(connection, length).decode()
            path = os.path.join(options.dir, os.path.basename(name))
            size = os.path.getsize(path)
            digest = hashlib.sha256()
            with open(path, "rb") as file:
                for piece in iter(lambda: file.read(CHUNK), b""):
                    digest.update(piece)
            header = json.dumps({"name": name, "size": size, "sha256": digest.hexdigest()}).encode()
            connection.sendall(struct.pack(">I", len(header)) + header)
            with open(path, "rb") as file:
                left = size
                while left > 0:
                    piece = file.read(min(CHUNK, left))
                    connection.sendall(piece)
                    left -= len(piece)


def get(options):
    connection = socket.create_connection((options.host, options.port))
    request = options.name.encode()
    connection.sendall(struct.pack(">I", len(request)) + request)
    (length,) = struct.unpack(">I", recv_exact(connection, 4))
    header = json.loads(recv_exact(connection, length))
    temporary = os.path.join(options.to, f".{options.name}.part")
    digest = hashlib.sha256()
    left = header["size"]
    buffer = bytearray(CHUNK * 16)
    view = memoryview(buffer)
    with open(temporary, "wb") as file:
        while left > 0:
            got = connection.recv_into(view, min(len(buffer), left))
            if got == 0:
                os.unlink(temporary)
                sys.exit("the server closed the connection early")
            file.write(view[:got])
            digest.update(view[:got])
            left -= got
        file.flush()
        os.fsync(file.fileno())
    if digest.hexdigest() != header["sha256"]:
        os.unlink(temporary)
        sys.exit("SHA-256 mismatch")
    os.rename(temporary, os.path.join(options.to, options.name))
    print(f"saved {options.name}: {header['size']} bytes, sha256 {header['sha256']}")


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("mode", nargs="?", choices=["get"])
    parser.add_argument("name", nargs="?")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=9004)
    parser.add_argument("--dir", default=".")
    parser.add_argument("--to", default=".")
    options = parser.parse_args()
    if options.mode == "get":
        get(options)
    else:
        serve(options)


if __name__ == "__main__":
    try:
        main()
    except KeyboardInterrupt:
        sys.exit(0)
