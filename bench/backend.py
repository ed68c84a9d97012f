#!/usr/bin/env python3
"""backend.py - a small test and demo backend for ringlb (stdlib only).

The stop-gap until ringbench's C backends exist: integration tests and
`make run` put it behind ringlb. One thread per connection (with small
stacks), large buffers and sendall, so a few hundred connections and
multi-MiB streams cost little next to the proxy under test.

Modes:
  echo  echoes every byte; on EOF from the client it finishes echoing, then
        shuts down its write side (half-close is forwarded back).
  http  answers every HTTP/1.x request with 200 and a body naming --name;
        keep-alive unless the request says `Connection: close` (or is
        HTTP/1.0 without keep-alive).
  name  writes "<name>\\n", shuts down its write side, waits for the client's
        EOF (so the close is a FIN, not a reset) and closes.
  sink  reads and discards; on EOF writes "<bytes> <sha256 hex>\\n" and
        closes.
  hang  accepts and reads, never answers (a server that stopped working
        but still completes TCP handshakes).

In http mode SIGUSR1 makes every later answer "503 Service Unavailable"
(health checks included: the server says it is unhealthy) and SIGUSR2
brings back 200, so health tests flip a server without restarting it.

Once listening it prints one line on stdout,
  "backend <name> <mode> listening on <host>:<port>",
which carries the real port when --listen asked for port 0.
"""

import argparse
import hashlib
import os
import resource
import signal
import socket
import sys
import threading

BUF = 1 << 20  # bytes per recv
IDLE_LIMIT = 3600.0  # seconds a client may stay silent before we drop it


def parse_hostport(text):
    """Returns (family, sockaddr) for "host:port", "[v6]:port" or "unix:/path"."""
    if text.startswith("unix:"):
        return socket.AF_UNIX, text[5:]
    if text.startswith("["):
        host, sep, port = text[1:].partition("]:")
        if not sep:
            raise ValueError(f"bad address {text!r}")
        return socket.AF_INET6, (host, int(port))
    host, sep, port = text.rpartition(":")
    if not sep:
        raise ValueError(f"bad address {text!r}")
    fam = socket.AF_INET6 if ":" in host else socket.AF_INET
    return fam, (host or "0.0.0.0", int(port))


def shut_wr(sock):
    try:
        sock.shutdown(socket.SHUT_WR)
    except OSError:
        pass


def serve_echo(sock, _name):
    buf = bytearray(BUF)
    view = memoryview(buf)
    while True:
        n = sock.recv_into(buf)
        if n == 0:
            shut_wr(sock)
            return
        sock.sendall(view[:n])


def serve_sink(sock, _name):
    buf = bytearray(BUF)
    view = memoryview(buf)
    total = 0
    h = hashlib.sha256()
    while True:
        n = sock.recv_into(buf)
        if n == 0:
            break
        total += n
        h.update(view[:n])
    sock.sendall(f"{total} {h.hexdigest()}\n".encode())
    shut_wr(sock)


def serve_name(sock, name):
    sock.sendall(f"{name}\n".encode())
    shut_wr(sock)
    sock.settimeout(5.0)
    try:
        while sock.recv(BUF):
            pass
    except OSError:
        pass


SICK = threading.Event()  # http: answer 503 while set (SIGUSR1 / SIGUSR2)


def serve_hang(sock, _name):
    while sock.recv(BUF):
        pass


def serve_http(sock, name):
    body = f"backend {name}\n".encode()
    data = b""
    while True:
        end = data.find(b"\r\n\r\n")
        while end < 0:
            if len(data) > 64 * 1024:
                sock.sendall(b"HTTP/1.1 431 Request Header Fields Too Large\r\n"
                             b"Content-Length: 0\r\nConnection: close\r\n\r\n")
                return
            chunk = sock.recv(BUF)
            if not chunk:
                return
            data += chunk
            end = data.find(b"\r\n\r\n")
        head = data[:end].decode("latin-1")
        data = data[end + 4:]
        lines = head.split("\r\n")
        version = lines[0].rsplit(" ", 1)[-1].upper()
        headers = {}
        for line in lines[1:]:
            key, _, value = line.partition(":")
            headers[key.strip().lower()] = value.strip()
        length = int(headers.get("content-length", "0") or "0")
        while len(data) < length:
            chunk = sock.recv(BUF)
            if not chunk:
                return
            data += chunk
        data = data[length:]
        conn = headers.get("connection", "").lower()
        close = "close" in conn or (version == "HTTP/1.0" and "keep-alive" not in conn)
        status = "503 Service Unavailable" if SICK.is_set() else "200 OK"
        resp = (f"HTTP/1.1 {status}\r\nContent-Type: text/plain\r\n"
                f"Content-Length: {len(body)}\r\nX-Backend: {name}\r\n"
                f"Connection: {'close' if close else 'keep-alive'}\r\n\r\n").encode() + body
        sock.sendall(resp)
        if close:
            shut_wr(sock)
            return


MODES = {"echo": serve_echo, "http": serve_http, "name": serve_name, "sink": serve_sink,
         "hang": serve_hang}


def handle(sock, fn, name):
    try:
        sock.settimeout(IDLE_LIMIT)
        if sock.family != socket.AF_UNIX:
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        fn(sock, name)
    except OSError:
        pass  # resets and timeouts end the connection, nothing more
    finally:
        sock.close()


def main():
    ap = argparse.ArgumentParser(description="ringlb test/demo backend")
    ap.add_argument("--listen", required=True, help="HOST:PORT, [V6]:PORT or unix:/path")
    ap.add_argument("--mode", choices=sorted(MODES), default="echo")
    ap.add_argument("--name", default="backend")
    args = ap.parse_args()

    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < hard:
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    threading.stack_size(256 * 1024)
    signal.signal(signal.SIGTERM, lambda *_: os._exit(0))
    signal.signal(signal.SIGUSR1, lambda *_: SICK.set())
    signal.signal(signal.SIGUSR2, lambda *_: SICK.clear())

    fam, addr = parse_hostport(args.listen)
    ls = socket.socket(fam, socket.SOCK_STREAM)
    if fam == socket.AF_UNIX:
        try:
            os.unlink(addr)
        except FileNotFoundError:
            pass
    else:
        ls.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        ls.bind(addr)
    except OSError as e:
        print(f"backend {args.name}: cannot listen on {args.listen}: {e}", file=sys.stderr)
        sys.exit(1)
    ls.listen(4096)
    if fam == socket.AF_UNIX:
        where = f"unix:{addr}"
    else:
        host, port = ls.getsockname()[:2]
        where = f"[{host}]:{port}" if fam == socket.AF_INET6 else f"{host}:{port}"
    print(f"backend {args.name} {args.mode} listening on {where}", flush=True)

    fn = MODES[args.mode]
    try:
        while True:
            try:
                conn, _ = ls.accept()
            except OSError as e:
                if e.errno in (24, 23):  # EMFILE, ENFILE: wait for a close
                    threading.Event().wait(0.05)
                    continue
                raise
            threading.Thread(target=handle, args=(conn, fn, args.name), daemon=True).start()
    except KeyboardInterrupt:
        pass


if __name__ == "__main__":
    main()
