"""A bounded bad-input corpus against each deployed server, through its published port.

The server must keep answering /healthz throughout, and its memory must not keep growing."""

from __future__ import annotations

import socket
import threading
import time

from tests.support.docker import engine
from tests.support.http import BAD_INPUT, raw, status_of
from tests.support.process import wait_for

FLOOD = 300


def server_rss_mib(topology) -> float:
    pid = wait_for(lambda: topology.service_pid("server"), 10, "server process")
    status = engine("exec", topology.server, "cat", f"/proc/{pid}/status")
    return int(next(line.split()[1] for line in status.splitlines() if line.startswith("VmRSS"))) / 1024


def test_corpus_gets_4xx_and_healthz_keeps_answering(topology):
    rss_before = server_rss_mib(topology)
    for case, (payload, expected) in sorted(BAD_INPUT.items()):
        answer = raw(topology.port, payload)
        assert status_of(answer) == expected, f"{case}: {answer[:80]!r}"
        assert topology.health(), f"server stopped answering after {case}"

    # Slow senders and half-open connections, while /healthz keeps answering.
    slow = [socket.create_connection(("127.0.0.1", topology.port)) for _ in range(20)]
    half_open = [socket.create_connection(("127.0.0.1", topology.port)) for _ in range(20)]
    for sock in half_open:
        sock.sendall(b"GET / HTTP/1.1\r\n")
        sock.shutdown(socket.SHUT_WR)
    try:
        for byte in b"GET /healthz HT":
            for sock in slow:
                sock.sendall(bytes([byte]))
            assert topology.health(), "server stopped answering while slow senders dribble"
            time.sleep(0.05)
    finally:
        for sock in slow + half_open:
            sock.close()

    # A bounded flood of idle connections, held while /healthz is asked.
    held: list[socket.socket] = []
    lock = threading.Lock()

    def open_one() -> None:
        try:
            sock = socket.create_connection(("127.0.0.1", topology.port), timeout=5)
        except OSError:
            return
        with lock:
            held.append(sock)

    workers = [threading.Thread(target=open_one) for _ in range(FLOOD)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join()
    try:
        assert len(held) >= FLOOD * 0.9, f"only {len(held)} of {FLOOD} connections opened"
        assert topology.health(2), "server stopped answering under the connection flood"
    finally:
        for sock in held:
            sock.close()
    wait_for(topology.health, 30, "/healthz after the flood")
    # Threads end as their connections close; what stays must be bounded, not grow per connection.
    rss_after = wait_for(lambda: (rss := server_rss_mib(topology)) < rss_before + 16 and rss, 30,
                           f"server RSS back under {rss_before + 16:.0f} MiB (was {rss_before:.1f})")
    print(f"{topology.name}: server RSS {rss_before:.1f} MiB before, {rss_after:.1f} MiB after "
          f"{len(BAD_INPUT)} bad requests, 40 slow/half-open and {FLOOD} flood connections")
