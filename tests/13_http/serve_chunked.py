# A server that frames its bodies the two ways without Content-Length, for
# lesson 13's client tests. Binds 127.0.0.1 port 0 and prints
# "listening on 127.0.0.1:PORT". For "GET /chunked/N" it sends N pattern
# bytes in chunked transfer coding (chunks of varied sizes, upper-case hex,
# chunk extensions and a trailer); for "GET /close/N" the N bytes with no
# length at all, then closes: the end of the body is the end of the stream.
#   python3 tests/13_http/serve_chunked.py
import socket
import sys
import threading


def pattern(size):
    return bytes(((i * 7 + i // 509) & 0xFF) for i in range(size))


def serve(conn):
    with conn:
        request = b""
        while b"\r\n\r\n" not in request:
            data = conn.recv(4096)
            if not data:
                return
            request += data
        target = request.split(b" ")[1].decode()
        parts = target.split("/")
        body = pattern(int(parts[2]))
        if parts[1] == "chunked":
            conn.sendall(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n")
            sizes = [1, 10, 4096, 65536, 333]
            offset = 0
            index = 0
            while offset < len(body):
                piece = body[offset:offset + sizes[index % len(sizes)]]
                conn.sendall(b"%X;n=%d\r\n" % (len(piece), index) + piece + b"\r\n")
                offset += len(piece)
                index += 1
            conn.sendall(b"0\r\nX-Trailer: done\r\n\r\n")
        else:
            conn.sendall(b"HTTP/1.0 200 OK\r\nContent-Type: application/octet-stream\r\n\r\n" + body)


def main():
    listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    listener.bind(("127.0.0.1", 0))
    listener.listen(16)
    print(f"listening on 127.0.0.1:{listener.getsockname()[1]}", flush=True)
    while True:
        conn, _ = listener.accept()
        threading.Thread(target=serve, args=(conn,), daemon=True).start()


if __name__ == "__main__":
    sys.exit(main())
