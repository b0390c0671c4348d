#!/usr/bin/env python3
"""A small HTTPS static server that misbehaves on purpose, for the tests of an
HTTPS source against mirrors that are broken, lying or slow.

It serves --root over HTTP/1.1 with keep-alive: GET and HEAD, one
`Range: bytes=a-b` (also `a-` and `-n`; 206 with Content-Range, 416 past the
end; several ranges get the whole file), ETag with If-None-Match (304) and
If-Range, Content-Length on every answer that has a body. --mode picks one
misbehaviour, applied only to files with a `packages` folder in their path
(outside `.wpkgsync/`), so the signed records are served correctly unless the
mode is about them:

  ok           behave
  error500     answer 500 to every request for such a file
  cut          send the right headers, then close the connection after
               --after bytes of the body (counted per answer)
  full200      ignore Range and answer 200 with the whole file
  tamper       flip one byte in the middle of the file (length kept)
  stall        send the headers and the first --after bytes, then hang
               without closing
  wrong_range  answer a Range with 206 and a Content-Range naming the asked
               bytes, but send bytes from offset 0 (same length)
  stale        serve paths under `.wpkgsync/` from --stale-root (same layout,
               falling back to --root for files it lacks): an old version

It binds 127.0.0.1 on a free port, prints the port as the first line of
stdout and logs one line per request to --log: `METHOD PATH RANGE STATUS`
(RANGE is `-` without a Range header). Stdlib only.
"""

import argparse
import email.utils
import http.server
import os
import socket
import ssl
import sys
import threading
import time
import urllib.parse

META = ".wpkgsync"
MODES = ("ok", "error500", "cut", "full200", "tamper", "stall", "wrong_range", "stale")


class Mirror(http.server.ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = False

    def __init__(self, options, context):
        self.options = options
        self.context = context
        self.log_lock = threading.Lock()
        self.log_file = open(options.log, "a", encoding="utf-8", buffering=1)
        super().__init__(("127.0.0.1", 0), Handler)

    def finish_request(self, request, client_address):
        # The TLS handshake happens here, on the connection's own thread, so a
        # client that never finishes it does not hold up the others.
        try:
            tls = self.context.wrap_socket(request, server_side=True)
        except (OSError, ssl.SSLError):
            return
        try:
            self.RequestHandlerClass(tls, client_address, self)
        finally:
            try:
                tls.close()
            except OSError:
                pass

    def handle_error(self, request, client_address):
        # Clients that hang up are part of the tests; no tracebacks.
        pass

    def log_request_line(self, line):
        with self.log_lock:
            self.log_file.write(line + "\n")


class Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "bad-mirror"
    sys_version = ""

    def log_message(self, format, *args):
        pass

    def do_GET(self):
        self.answer(body=True)

    def do_HEAD(self):
        self.answer(body=False)

    def note(self, status):
        self.server.log_request_line(
            "%s %s %s %d" % (self.command, self.path, self.headers.get("Range", "-"), status)
        )

    def simple(self, status, text, body):
        data = text.encode()
        self.note(status)
        self.send_response(status)
        self.send_header("Content-Type", "text/plain")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        if body:
            self.wfile.write(data)

    def answer(self, body):
        options = self.server.options
        rel = urllib.parse.unquote(urllib.parse.urlsplit(self.path).path).lstrip("/")
        parts = [p for p in rel.split("/") if p not in ("", ".")]
        if ".." in parts:
            return self.simple(403, "no\n", body)
        is_meta = META in parts
        is_package = "packages" in parts and not is_meta
        mode = options.mode
        path = os.path.join(options.root, *parts)
        if mode == "stale" and is_meta:
            stale = os.path.join(options.stale_root, *parts)
            if os.path.isfile(stale):
                path = stale
        if not os.path.isfile(path):
            return self.simple(404, "not found\n", body)
        if mode == "error500" and is_package:
            return self.simple(500, "internal error\n", body)

        with open(path, "rb") as f:
            data = f.read()
        stat = os.stat(path)
        if mode == "tamper" and is_package and data:
            middle = len(data) // 2
            data = data[:middle] + bytes([data[middle] ^ 0xFF]) + data[middle + 1 :]
        size = len(data)
        etag = '"%x-%x"' % (stat.st_mtime_ns, stat.st_size)
        last_modified = email.utils.formatdate(stat.st_mtime, usegmt=True)

        if etag in [t.strip() for t in self.headers.get("If-None-Match", "").split(",")]:
            self.note(304)
            self.send_response(304)
            self.send_header("ETag", etag)
            self.send_header("Last-Modified", last_modified)
            self.end_headers()
            return

        wanted = self.headers.get("Range")
        if_range = self.headers.get("If-Range")
        if if_range is not None and if_range not in (etag, last_modified):
            wanted = None
        if mode == "full200" and is_package:
            wanted = None
        span = parse_range(wanted, size) if wanted else None

        if span == "unsatisfiable":
            self.note(416)
            self.send_response(416)
            self.send_header("Content-Range", "bytes */%d" % size)
            self.send_header("Content-Length", "0")
            self.end_headers()
            return
        if span is None:
            status, start, end = 200, 0, size
        else:
            status, (start, end) = 206, span
        chunk = data[start:end]
        if mode == "wrong_range" and is_package and status == 206:
            chunk = data[0 : end - start]

        self.note(status)
        self.send_response(status)
        self.send_header("Content-Type", "application/octet-stream")
        self.send_header("Content-Length", str(len(chunk)))
        self.send_header("Accept-Ranges", "bytes")
        self.send_header("ETag", etag)
        self.send_header("Last-Modified", last_modified)
        if status == 206:
            self.send_header("Content-Range", "bytes %d-%d/%d" % (start, end - 1, size))
        self.end_headers()
        if not body:
            return
        if mode in ("cut", "stall") and is_package:
            self.wfile.write(chunk[: options.after])
            self.wfile.flush()
            if mode == "stall":
                while True:
                    time.sleep(3600)
            # Drop the connection under the client: no close_notify, no more bytes.
            self.close_connection = True
            try:
                self.connection.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
            return
        self.wfile.write(chunk)


def parse_range(header, size):
    """(start, end) with end exclusive, "unsatisfiable", or None for a header
    to ignore (not bytes, several ranges, malformed)."""
    unit, _, spec = header.partition("=")
    if unit.strip().lower() != "bytes" or "," in spec:
        return None
    first, dash, last = spec.strip().partition("-")
    if not dash:
        return None
    try:
        if first == "":
            if last == "":
                return None
            length = int(last)
            if length == 0:
                return "unsatisfiable"
            return (max(0, size - length), size)
        start = int(first)
        end = size - 1 if last == "" else int(last)
    except ValueError:
        return None
    if start >= size:
        return "unsatisfiable"
    if end < start:
        return None
    return (start, min(end, size - 1) + 1)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--root", required=True)
    parser.add_argument("--mode", choices=MODES, default="ok")
    parser.add_argument("--cert", required=True)
    parser.add_argument("--key", required=True)
    parser.add_argument("--log", required=True)
    parser.add_argument("--after", type=int, default=100000)
    parser.add_argument("--stale-root")
    options = parser.parse_args()
    if options.mode == "stale" and not options.stale_root:
        parser.error("--mode stale needs --stale-root")

    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(options.cert, options.key)
    context.set_alpn_protocols(["http/1.1"])
    server = Mirror(options, context)
    print(server.server_address[1], flush=True)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass


if __name__ == "__main__":
    sys.exit(main())
