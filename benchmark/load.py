"""Load on a lab server over its container's own loopback, from separate processes on the engine host.

Each load generator runs in the server container's network namespace (`nsenter -n`), so it reaches
127.0.0.1:8080 inside the container without a bridge, a port mapping or anything installed in the
image, and it is never a thread of the process that measures: wrk (C, from Debian's archive) for
throughput and keep-alive latency, and this module as its own process for the slow senders.
"""

from __future__ import annotations

import contextlib
import json
import os
import resource
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import NamedTuple

from benchmark import stats

ROOT = Path(__file__).resolve().parent.parent
# wrk reports through this script: one JSON object, latencies in microseconds.
WRK_REPORT = """
done = function(summary, latency, requests)
  local e = summary.errors
  io.write(string.format('{"requests":%d,"duration_us":%d,"errors":%d,"p50_us":%d,"p99_us":%d,"max_us":%d}\\n',
    summary.requests, summary.duration, e.connect + e.read + e.write + e.status + e.timeout,
    latency:percentile(50), latency:percentile(99), latency.max))
end
"""
# The throughput reference: a minimal stdlib JSON server with the same fields the client requires and
# the lab server's listen backlog (128), so that its p99 is no artifact of dropped SYNs.
MINIMAL_SERVER = r"""
import json, os, socket, sys
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
BODY = json.dumps({"hostname": socket.gethostname(), "pid": os.getpid(), "requests_served": 0}).encode()
class H(BaseHTTPRequestHandler):
    def do_GET(self):
        self.send_response(200); self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(BODY))); self.end_headers(); self.wfile.write(BODY)
    def log_message(self, *args):
        pass
class S(ThreadingHTTPServer):
    daemon_threads = True
    request_queue_size = 128
S(("0.0.0.0", int(sys.argv[1])), H).serve_forever()
"""


# What one connection's sequential requests cost on this machine with no server in the way: a blocking loop
# that answers each read at once, no parsing, no log. The keep-alive p99 is read beside it, as the start
# beside the engine's floor: scheduling jitter on the host shows in both.
FLOOR_SERVER = r"""
import socket, sys
s = socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind(("0.0.0.0", int(sys.argv[1]))); s.listen(128)
ANSWER = b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 2\r\n\r\n{}"
while True:
    conn, _ = s.accept()
    conn.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    try:  # a load generator may reset its connections when it ends; the loop outlives them
        with conn:
            while data := conn.recv(65536):
                conn.sendall(ANSWER)
                if b"close" in data.lower():
                    break
    except OSError:
        pass
"""


class Reference(NamedTuple):
    """A server the benchmark starts beside the lab server, in its container, and stops by its mark."""
    name: str
    code: str
    port: int

    @property
    def mark(self) -> str:
        """An argument the code ignores, on its command line only so that `pkill -f` finds this server."""
        return f"lab-reference-{self.name}"

    def command(self, python: str = "python3", port: int | None = None) -> list[str]:
        return [python, "-c", self.code, str(port or self.port), self.mark]


MINIMAL = Reference("minimal", MINIMAL_SERVER, 8081)
FLOOR = Reference("keep-alive-floor", FLOOR_SERVER, 8082)


class ToolMissing(RuntimeError):
    pass


def require_tools() -> None:
    """The load generators this module runs on the engine host; a clear error before any container starts."""
    packages = {"wrk": "wrk", "nsenter": "util-linux"}
    missing = [tool for tool in packages if not shutil.which(tool)]
    if missing:
        raise ToolMissing(f"the benchmark needs {', '.join(missing)} on this host (Debian/Ubuntu: apt-get install "
                          f"{' '.join(packages[t] for t in missing)}; scripts/lab bench installs them as root)")
    if os.geteuid() != 0:
        raise ToolMissing("entering a container's network namespace (nsenter -n) needs root on the engine host")


def in_netns(pid: int, *command: str, timeout: float = 120) -> str:
    result = subprocess.run(["nsenter", "-t", str(pid), "-n", "--", *command], capture_output=True, text=True,
                            timeout=timeout, check=False, cwd=ROOT)
    if result.returncode:
        raise RuntimeError(f"{' '.join(command[:3])} in the network namespace of pid {pid} failed: "
                           f"{result.stderr.strip() or result.stdout.strip()[-500:]}")
    return result.stdout


def wrk(pid: int, url: str, connections: int, seconds: float, keep_alive: bool) -> dict:
    """wrk against `url` with `connections` at once; `keep_alive=False` opens a connection per request,
    as the lab's client does. Returns requests per second, p50/p99/max latency in ms and errors."""
    threads = min(2, connections)
    close = [] if keep_alive else ["-H", "Connection: close"]
    with tempfile.NamedTemporaryFile("w", suffix=".lua", prefix="lab-wrk-") as script:
        script.write(WRK_REPORT)
        script.flush()
        out = in_netns(pid, "wrk", f"-t{threads}", f"-c{connections}", f"-d{seconds:g}s", "-s", script.name, *close,
                       url, timeout=seconds + 60)
    line = next((line for line in out.splitlines() if line.startswith("{")), None)
    if line is None:
        raise RuntimeError(f"wrk printed no report: {out[-500:]}")
    raw = json.loads(line)
    return {"rps": raw["requests"] / (raw["duration_us"] / 1e6), "requests": raw["requests"],
            "errors": raw["errors"], "p50_ms": raw["p50_us"] / 1000, "p99_ms": raw["p99_us"] / 1000,
            "max_ms": raw["max_us"] / 1000, "connections": connections, "seconds": seconds,
            "keep_alive": keep_alive}


def slow_senders(pid: int, port: int, count: int, seconds: float) -> dict:
    """`count` connections each sending one byte of a request head a second, while a normal client
    asks /healthz every 50 ms on fresh connections; both in a process of their own in the netns."""
    out = in_netns(pid, sys.executable, "-m", "benchmark.load", "slow", str(port), str(count), str(seconds),
                   timeout=seconds + 120)
    return json.loads(out)


# ---- the slow-senders process (python -m benchmark.load slow PORT COUNT SECONDS) ------------------------

def wait_ready(pid: int, port: int, deadline_s: float = 20) -> None:
    """Until GET / on the port answers 200 in the netns (a server just started there); RuntimeError after."""
    in_netns(pid, sys.executable, "-m", "benchmark.load", "ready", str(port), str(deadline_s), timeout=deadline_s + 30)


def answers(port: int, path: str = "/healthz") -> float | None:
    """Milliseconds for a 200 to GET path on a fresh connection; None for anything else."""
    started = time.perf_counter()
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=2) as sock:
            sock.sendall(f"GET {path} HTTP/1.1\r\nHost: lab\r\nConnection: close\r\n\r\n".encode())
            answer = b""
            while chunk := sock.recv(4096):
                answer += chunk
    except OSError:
        return None
    return (time.perf_counter() - started) * 1000 if answer[:12] in (b"HTTP/1.1 200", b"HTTP/1.0 200") else None


def run_slow(port: int, count: int, seconds: float) -> dict:
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (min(hard, max(soft, count + 256)), hard))
    held = []
    for _ in range(count):
        sock = socket.create_connection(("127.0.0.1", port), timeout=5)
        sock.setblocking(False)
        sock.send(b"GET / HTTP/1.1\r\nX-Slow: ")
        held.append(sock)
    samples: list[float] = []
    failures = 0
    end = time.monotonic() + seconds
    next_byte = time.monotonic() + 1.0
    while time.monotonic() < end:
        if time.monotonic() >= next_byte:
            next_byte += 1.0
            for sock in held:
                with contextlib.suppress(OSError):  # a connection the server dropped is counted below
                    sock.send(b"a")
        took = answers(port)
        if took is None:
            failures += 1
        else:
            samples.append(took)
        time.sleep(0.05)
    still_open = 0
    for sock in held:
        try:
            sock.recv(1)  # an answer or a close: the server let go of it
        except BlockingIOError:
            still_open += 1  # nothing to read and not closed: the server still holds it
        except OSError:
            pass
        sock.close()
    return {"slow_connections": count, "held_to_the_end": still_open, "seconds": seconds,
            "healthz_ms": stats.summarize(samples), "healthz_failures": failures}


def run_ready(port: int, deadline_s: float) -> int:
    end = time.monotonic() + deadline_s
    while time.monotonic() < end:
        if answers(port, "/") is not None:
            return 0
        time.sleep(0.05)
    print(f"nothing answered 200 on 127.0.0.1:{port} within {deadline_s:g} s", file=sys.stderr)
    return 1


if __name__ == "__main__":
    mode = sys.argv[1:2]
    if mode == ["slow"]:
        print(json.dumps(run_slow(int(sys.argv[2]), int(sys.argv[3]), float(sys.argv[4]))))
    elif mode == ["ready"]:
        sys.exit(run_ready(int(sys.argv[2]), float(sys.argv[3])))
    else:
        sys.exit("usage: python -m benchmark.load slow PORT COUNT SECONDS | ready PORT SECONDS")
