#!/usr/bin/env python3
"""Lab client: polls the lab server and logs one JSON line per poll.

Stdlib only (Python 3.10+, with labkit.py beside it). Polls every --interval
seconds while the server answers; after a failure it retries sooner (--retry-min
for the first few retries, then doubling up to the interval) so that a server that
is starting or restarting is seen at once. One deadline (--timeout) covers a whole
poll: name lookup, connect, request, headers and body. No proxy is ever used:
the client talks to the server it is given. SIGTERM ends a poll in progress.
Exit codes: 0 clean stop, or --once succeeded; 1 --once failed; 2 bad arguments.
"""

from __future__ import annotations

import errno
import json
import os
import signal
import socket
import sys
import threading
import time
from urllib.parse import quote, urlsplit

import labkit

REQUIRED_FIELDS = ("hostname", "pid", "requests_served")
MAX_BODY = 1024 * 1024
MAX_HEAD = 65536
FAST_RETRIES = 5       # retries at --retry-min before the delay starts doubling
RESOLVERS_MAX = 4      # name lookups left running past their deadline before polls fail fast
ABANDONED: list[threading.Thread] = []
# Connecting to localhost tries every address; in a container without IPv6 the
# last one, ::1, fails with EADDRNOTAVAIL, and that is the error raised.
UNREACHABLE = (errno.EADDRNOTAVAIL, errno.ENETUNREACH, errno.EHOSTUNREACH)


class PollError(Exception):
    """A failed poll; `reason` is a short stable word for logs and tests."""

    def __init__(self, reason: str, detail: str, status: int | None = None) -> None:
        super().__init__(detail)
        self.reason = reason
        self.detail = detail
        self.status = status


class Stopping(BaseException):
    """Raised by the SIGTERM/SIGINT handler to end a poll or a wait at once."""


class Target(tuple):
    """(host, port, request bytes) of a checked URL."""

    @classmethod
    def parse(cls, url: str) -> Target:
        try:
            parts = urlsplit(url)
            port = parts.port or 80
        except ValueError as exc:
            raise labkit.UsageError(f"not a valid URL: {exc}") from None
        if parts.scheme != "http":
            raise labkit.UsageError(f"only http:// URLs are supported, got {url!r}")
        if not parts.hostname:
            raise labkit.UsageError(f"no host in {url!r}")
        try:
            host = parts.hostname.encode("idna").decode("ascii")
        except UnicodeError as exc:
            raise labkit.UsageError(f"host {parts.hostname!r} is not a valid name: {exc}") from None
        path = quote(parts.path or "/", safe="/%:@!$&'()*+,;=~-._")
        if parts.query:
            path += "?" + quote(parts.query, safe="/%:@!$&'()*+,;=~-._?")
        authority = f"[{host}]" if ":" in host else host
        if parts.port:
            authority += f":{port}"
        request = (f"GET {path} HTTP/1.1\r\nHost: {authority}\r\nUser-Agent: lab-client/2.0\r\n"
                   "Accept: application/json\r\nConnection: close\r\n\r\n").encode("ascii")
        return cls((host, port, request))


def resolve(host: str, port: int, deadline: float) -> list[tuple]:
    """getaddrinfo within the deadline: addresses at once, names in a helper thread."""
    try:
        return socket.getaddrinfo(host, port, type=socket.SOCK_STREAM, flags=socket.AI_NUMERICHOST)
    except socket.gaierror:
        pass
    ABANDONED[:] = [worker for worker in ABANDONED if worker.is_alive()]
    if len(ABANDONED) >= RESOLVERS_MAX:
        raise PollError("dns", f"{len(ABANDONED)} earlier lookups past their deadline are still unanswered")
    result: list = []

    def lookup() -> None:
        try:
            result.append(socket.getaddrinfo(host, port, type=socket.SOCK_STREAM))
        except OSError as exc:
            result.append(exc)

    worker = threading.Thread(target=lookup, daemon=True)
    worker.start()
    worker.join(max(0.0, deadline - time.monotonic()))
    if not result:
        ABANDONED.append(worker)
        raise PollError("timeout", f"name lookup of {host} took longer than the poll's deadline")
    if isinstance(result[0], OSError):
        raise classify(result[0])
    return result[0]


def remaining(deadline: float, sock: socket.socket) -> None:
    left = deadline - time.monotonic()
    if left <= 0:
        raise PollError("timeout", "the poll's deadline passed")
    sock.settimeout(left)


def connect(target: Target, deadline: float) -> socket.socket:
    host, port, _ = target
    error: OSError | None = None
    for family, kind, proto, _, address in resolve(host, port, deadline):
        sock = socket.socket(family, kind, proto)
        try:
            remaining(deadline, sock)
            sock.connect(address)
            return sock
        except PollError:
            sock.close()
            raise
        except OSError as exc:
            sock.close()
            error = exc
    raise classify(error or OSError("no address to connect to"))


def classify(exc: OSError) -> PollError:
    detail = str(exc) or type(exc).__name__
    if isinstance(exc, socket.gaierror):
        return PollError("dns", detail)
    if isinstance(exc, TimeoutError):
        return PollError("timeout", detail)
    if isinstance(exc, ConnectionRefusedError):
        return PollError("refused", detail)
    if isinstance(exc, (ConnectionResetError, BrokenPipeError)):
        return PollError("closed", detail)
    if exc.errno in UNREACHABLE:
        return PollError("unreachable", detail)
    return PollError("error", f"{type(exc).__name__}: {detail}")


def exchange(target: Target, deadline: float) -> tuple[int, bytes]:
    """Send the request, return (status, body); every step within the deadline."""
    sock = connect(target, deadline)
    try:
        remaining(deadline, sock)
        sock.sendall(target[2])
        data = bytearray()
        while (end := data.find(b"\r\n\r\n")) < 0:
            if len(data) > MAX_HEAD:
                raise PollError("bad_response", "response head too large")
            chunk = read(sock, deadline)
            if not chunk:
                raise PollError("closed", "the server closed the connection before answering"
                                if not data else "the response head was cut short")
            data += chunk
        status, headers = parse_head(bytes(data[:end]))
        body = data[end + 4:]
        length = headers.get("content-length")
        if "chunked" in headers.get("transfer-encoding", "").lower():
            return status, read_chunked(sock, body, deadline)
        if length is not None:
            if not length.isdigit() or int(length) > MAX_BODY:
                raise PollError("bad_response", f"bad Content-Length {length!r}", status)
            while len(body) < int(length):
                chunk = read(sock, deadline)
                if not chunk:
                    raise PollError("closed", f"body cut short at {len(body)} of {length} bytes", status)
                body += chunk
            return status, bytes(body[:int(length)])
        while chunk := read(sock, deadline):  # no length: the body ends at the close
            body += chunk
            if len(body) > MAX_BODY:
                raise PollError("bad_response", "body larger than 1 MiB", status)
        return status, bytes(body)
    except OSError as exc:
        raise classify(exc) from None
    finally:
        sock.close()


def read(sock: socket.socket, deadline: float) -> bytes:
    remaining(deadline, sock)
    return sock.recv(65536)


def read_chunked(sock: socket.socket, data: bytearray, deadline: float) -> bytes:
    body = bytearray()
    while True:
        while (line_end := data.find(b"\r\n")) < 0:
            if not (chunk := read(sock, deadline)):
                raise PollError("closed", "chunked body cut short")
            data += chunk
        size_text = data[:line_end].split(b";")[0].strip()
        try:
            size = int(size_text, 16)
        except ValueError:
            raise PollError("bad_response", f"bad chunk size {bytes(size_text)!r}") from None
        if len(body) + size > MAX_BODY:
            raise PollError("bad_response", "body larger than 1 MiB")
        while len(data) < line_end + 2 + size + 2:
            if not (chunk := read(sock, deadline)):
                raise PollError("closed", "chunked body cut short")
            data += chunk
        if size == 0:
            return bytes(body)
        body += data[line_end + 2:line_end + 2 + size]
        del data[:line_end + 2 + size + 2]


def parse_head(head: bytes) -> tuple[int, dict[str, str]]:
    lines = head.decode("latin-1").split("\r\n")
    version, _, rest = lines[0].partition(" ")
    code = rest[:3]
    if not version.startswith("HTTP/1.") or not code.isdigit():
        raise PollError("bad_response", f"not an HTTP/1.x status line: {lines[0][:80]!r}")
    headers = {}
    for line in lines[1:]:
        name, colon, value = line.partition(":")
        if not colon:
            raise PollError("bad_response", f"bad header line: {line[:80]!r}", int(code))
        headers[name.strip().lower()] = value.strip()
    return int(code), headers


def poll(url: str | Target, timeout: float) -> dict[str, object]:
    """One GET; return the fields to log on success, raise PollError otherwise."""
    target = url if isinstance(url, Target) else Target.parse(url)
    started = time.perf_counter()
    status, raw = exchange(target, time.monotonic() + timeout)
    latency_ms = round((time.perf_counter() - started) * 1000, 3)
    if status != 200:
        raise PollError("http_error", f"HTTP {status}", status)
    try:
        body = json.loads(raw)
    except (UnicodeDecodeError, ValueError, RecursionError) as exc:
        raise PollError("not_json", f"body is not JSON: {str(exc)[:200]}", status) from None
    if not isinstance(body, dict):
        raise PollError("not_json", "body is not a JSON object", status)
    missing = [field for field in REQUIRED_FIELDS if field not in body]
    if missing:
        raise PollError("missing_fields", "missing " + ",".join(missing), status)
    return {"status": status, "latency_ms": latency_ms, "server_hostname": body["hostname"],
            "server_pid": body["pid"]}


class Poller:
    def __init__(self, settings: dict, log: labkit.Log) -> None:
        self.url = settings["url"]
        self.target = Target.parse(self.url)
        self.interval = settings["interval"]
        self.timeout = settings["timeout"]
        self.retry_min = settings["retry_min"]
        self.log = log
        self.ok = 0
        self.failed = 0

    def poll_once(self) -> bool:
        started = time.perf_counter()
        try:
            fields = poll(self.target, self.timeout)
        except PollError as exc:
            self.failed += 1
            self.log.event("poll_failed", "WARNING", now=True, url=self.url, reason=exc.reason, detail=exc.detail,
                           status=exc.status, ms=round((time.perf_counter() - started) * 1000, 3), ok=self.ok,
                           failed=self.failed)
            return False
        self.ok += 1
        self.log.event("poll_ok", now=True, url=self.url, **fields, ok=self.ok, failed=self.failed)
        return True

    def run(self) -> None:
        failures = 0
        next_at = time.monotonic()
        while True:
            if self.poll_once():
                failures = 0
                next_at += self.interval
            else:
                failures += 1
                delay = self.retry_min * 2 ** max(0, failures - FAST_RETRIES)
                next_at = time.monotonic() + min(delay, self.interval)
            # Keep the schedule when a poll was slow, never busy-loop behind it.
            next_at = max(next_at, time.monotonic())
            time.sleep(next_at - time.monotonic())


def url(value: str) -> str:
    Target.parse(value)  # refused at start, not at every poll
    return value


OPTIONS = [
    labkit.Option("--url", "LAB_CLIENT_URL", "http://localhost:8080/", url, "server URL"),
    labkit.Option("--interval", "LAB_CLIENT_INTERVAL", "5", labkit.number(float, high=86400, above=0),
                  "seconds between polls while the server answers"),
    labkit.Option("--timeout", "LAB_CLIENT_TIMEOUT", "2", labkit.number(float, high=3600, above=0),
                  "seconds one whole poll may take"),
    labkit.Option("--retry-min", "LAB_CLIENT_RETRY_MIN", "0.02", labkit.number(float, high=3600, above=0),
                  "retry delay after a failure, doubled after a few retries up to the interval"),
    labkit.Option("--log-file", "LAB_CLIENT_LOG_FILE", None, labkit.text, "also log to this file"),
    labkit.Option("--log-max-bytes", "LAB_CLIENT_LOG_MAX_BYTES", "10485760", labkit.number(int, 0),
                  "rotate the log file past this size (0: never; logrotate may move it too)"),
    labkit.Option("--log-backups", "LAB_CLIENT_LOG_BACKUPS", "3", labkit.number(int, 0, 100),
                  "rotated log files kept"),
]
FLAGS = {"--once": "poll once; exit 0 on success, 1 on failure"}


def main(argv: list[str] | None = None) -> int:
    settings = labkit.parse("client.py", "Poll the lab server and log each result as one JSON line.",
                            OPTIONS, FLAGS, argv)
    try:
        log = labkit.Log(settings["log_file"], settings["log_max_bytes"], settings["log_backups"])
    except OSError as exc:
        print(f"client.py: error: cannot open log file: {exc}", file=sys.stderr)
        return 2
    poller = Poller(settings, log)
    if settings["once"]:
        return 0 if poller.poll_once() else 1

    def stop(signum: int, _frame: object) -> None:
        log.buffer.clear()  # a line cut by the signal is dropped, never written half
        log.event("stopping", signal=signal.Signals(signum).name)
        raise Stopping

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    labkit.wait_for_orphans_as_init()
    try:
        log.event("started", now=True, url=poller.url, interval=poller.interval, timeout=poller.timeout,
                  pid=os.getpid())
        poller.run()
    except Stopping:
        pass
    finally:
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        signal.signal(signal.SIGINT, signal.SIG_IGN)
    log.event("stopped", now=True, ok=poller.ok, failed=poller.failed)
    return 0


if __name__ == "__main__":
    sys.exit(main())
