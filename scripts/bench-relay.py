#!/usr/bin/env python3
"""A byte-counting TCP relay for scripts/bench.

    bench-relay.py --target PORT --port-file FILE --stats FILE

Listens on 127.0.0.1 on a free port (written to --port-file once it listens),
forwards every connection to 127.0.0.1:PORT and counts the bytes it carries in
each direction: the TCP payload, i.e. everything the SSH client and server send
each other, encrypted and framed, which is what would cross a real network.
Whenever a connection opens or closes it rewrites --stats (atomically) as one
line:

    open=N connections=N up=BYTES down=BYTES

up is client to server, down server to client, both totals since the start and
counting only connections that have closed. A reader waits for open=0 after its
client exited, then takes the difference of two readings. Runs until SIGTERM or
SIGINT.
"""

import argparse
import os
import signal
import socket
import sys
import threading

BUFFER = 1 << 20


class Totals:
    def __init__(self, path):
        self.path = path
        self.lock = threading.Lock()
        self.open = 0
        self.connections = 0
        self.up = 0
        self.down = 0
        self.write()

    def write(self):
        tmp = f"{self.path}.tmp"
        with open(tmp, "w", encoding="ascii") as f:
            f.write(f"open={self.open} connections={self.connections} up={self.up} down={self.down}\n")
        os.replace(tmp, self.path)

    def opened(self):
        with self.lock:
            self.open += 1
            self.connections += 1
            self.write()

    def closed(self, up, down):
        with self.lock:
            self.open -= 1
            self.up += up
            self.down += down
            self.write()


def pump(src, dst, count, failed):
    """Copies src to dst until EOF; count[0] gets the bytes. On EOF the write
    side of dst is shut so the peer sees it; on an error both sockets are shut
    so the other direction's pump wakes up too."""
    buf = bytearray(BUFFER)
    view = memoryview(buf)
    try:
        while True:
            n = src.recv_into(view)
            if n == 0:
                break
            dst.sendall(view[:n])
            count[0] += n
        dst.shutdown(socket.SHUT_WR)
    except OSError:
        failed.set()
        for s in (src, dst):
            try:
                s.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass


def serve(client, target, totals):
    up, down = [0], [0]
    try:
        server = socket.create_connection(("127.0.0.1", target))
    except OSError as e:
        print(f"bench-relay: cannot reach 127.0.0.1:{target}: {e}", file=sys.stderr)
        client.close()
        totals.closed(0, 0)
        return
    for s in (client, server):
        s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    failed = threading.Event()
    back = threading.Thread(target=pump, args=(server, client, down, failed), daemon=True)
    back.start()
    pump(client, server, up, failed)
    back.join()
    client.close()
    server.close()
    totals.closed(up[0], down[0])


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--target", type=int, required=True, help="sshd's port on 127.0.0.1")
    parser.add_argument("--port-file", required=True, help="where to write the port this relay listens on")
    parser.add_argument("--stats", required=True, help="the file holding the running totals")
    args = parser.parse_args()

    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    totals = Totals(args.stats)
    listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    listener.bind(("127.0.0.1", 0))
    listener.listen(16)
    tmp = f"{args.port_file}.tmp"
    with open(tmp, "w", encoding="ascii") as f:
        f.write(f"{listener.getsockname()[1]}\n")
    os.replace(tmp, args.port_file)
    try:
        while True:
            client, _ = listener.accept()
            totals.opened()
            threading.Thread(target=serve, args=(client, args.target, totals), daemon=True).start()
    except KeyboardInterrupt:
        pass


if __name__ == "__main__":
    main()
