#!/usr/bin/env python3
"""An HTTP CONNECT proxy for the tests of a client behind a proxy.

It binds 127.0.0.1 on a free port, prints the port as the first line of
stdout, and for each `CONNECT host:port` opens a TCP connection to the target,
answers `200 Connection established` and pipes bytes both ways until either
side closes. Only loopback targets are allowed (403 otherwise); any other
method gets 405. Every request line is logged to --log, followed by
` auth=<Proxy-Authorization>` when the client sent one, and ` -> STATUS`.
Stdlib only, one thread per connection direction.
"""

import argparse
import socket
import socketserver
import sys
import threading

LOOPBACK = ("127.0.0.1", "localhost")


class Proxy(socketserver.ThreadingTCPServer):
    daemon_threads = True
    allow_reuse_address = False

    def __init__(self, log):
        self.log_lock = threading.Lock()
        self.log_file = open(log, "a", encoding="utf-8", buffering=1)
        super().__init__(("127.0.0.1", 0), Handler)

    def handle_error(self, request, client_address):
        pass

    def log(self, line):
        with self.log_lock:
            self.log_file.write(line + "\n")


class Handler(socketserver.StreamRequestHandler):
    # Unbuffered, so that no byte after the request head is read into a buffer
    # the tunnel would then lose.
    rbufsize = 0

    def handle(self):
        request_line = self.rfile.readline(65537).decode("latin-1").rstrip("\r\n")
        if not request_line:
            return
        auth = None
        while True:
            line = self.rfile.readline(65537).decode("latin-1").rstrip("\r\n")
            if not line:
                break
            name, _, value = line.partition(":")
            if name.strip().lower() == "proxy-authorization":
                auth = value.strip()
        shown = request_line + (" auth=%s" % auth if auth is not None else "")
        method, _, rest = request_line.partition(" ")
        target = rest.split(" ")[0]
        if method.upper() != "CONNECT":
            return self.refuse(shown, 405, "Method Not Allowed")
        host, _, port = target.rpartition(":")
        host = host.strip("[]")
        if host not in LOOPBACK or not port.isdigit():
            return self.refuse(shown, 403, "Forbidden")
        try:
            upstream = socket.create_connection((host, int(port)), timeout=10)
        except OSError:
            return self.refuse(shown, 502, "Bad Gateway")
        upstream.settimeout(None)
        self.server.log(shown + " -> 200")
        self.request.sendall(b"HTTP/1.1 200 Connection established\r\n\r\n")
        pump = threading.Thread(target=copy, args=(upstream, self.request), daemon=True)
        pump.start()
        copy(self.request, upstream)
        pump.join()
        upstream.close()

    def refuse(self, shown, status, reason):
        self.server.log("%s -> %d" % (shown, status))
        self.request.sendall(
            ("HTTP/1.1 %d %s\r\nContent-Length: 0\r\nConnection: close\r\n\r\n" % (status, reason)).encode()
        )


def copy(source, destination):
    """Copies until `source` ends, then passes the end on."""
    try:
        while True:
            data = source.recv(65536)
            if not data:
                break
            destination.sendall(data)
    except OSError:
        pass
    try:
        destination.shutdown(socket.SHUT_WR)
    except OSError:
        pass


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--log", required=True)
    options = parser.parse_args()
    server = Proxy(options.log)
    print(server.server_address[1], flush=True)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass


if __name__ == "__main__":
    sys.exit(main())
