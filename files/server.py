#!/usr/bin/env python3
"""Lab HTTP server: answers GET / with JSON system information.

Stdlib only (Python 3.10+, with labkit.py beside it). One thread: an epoll loop
(`selectors`) with its own bounded HTTP/1.x parser, one write per response and
TCP_NODELAY. Every request has one deadline (--timeout) from the moment the
connection waits for it until its response is written, so a client that trickles
bytes is dropped as surely as a silent one. Access lines are buffered and written
in one write at most every 50 ms or per 16 lines; lifecycle lines at once: each
write wakes whatever reads the log (supervisord, journald, the engine), which
competes with the server for the CPU, and a large batch makes it compete longer.
Exit codes: 0 clean stop (SIGTERM/SIGINT), 2 bad arguments, 3 cannot bind.
"""

from __future__ import annotations

import errno
import os
import resource
import selectors
import signal
import socket
import sys
import time

import labkit

STARTED = time.monotonic()
BACKLOG = 128
MAX_LINE = 8192         # request line (414) and each header line (431)
MAX_HEADERS = 100       # more header lines: 431
MAX_HEAD = 32768        # a whole request head (431): 4096 connections hold 128 MiB at most
READ_SIZE = 65536
ACCEPTS_PER_PASS = 64
SHORT_DEADLINE_S = 1.0   # to send a head over the bound, or to close after the answer
REJECTING_MAX = 64       # connections being answered 503 at once; more are closed unanswered
FD_RESERVE = 32          # descriptors kept for the log file, /proc reads and the listener
FLUSH_S = 0.05           # access lines are written at most this often (lifecycle lines at once) ...
# ... or when this many wait. Measured on one keep-alive connection: batches of 512 lines put p99 at 2.2-2.7 ms
# under journald and 0.7-1.0 ms under the engine's json-file log (a reader working through 100 KB at once);
# 4-32 lines, 0.2-0.5 ms under both, with the same throughput.
FLUSH_LINES = 16
ACTIVE, REJECTING, DRAINING = "active", "rejecting", "draining"
HEALTHY = b'{"status":"ok"}'
REASONS = {200: "OK", 400: "Bad Request", 404: "Not Found", 405: "Method Not Allowed",
           408: "Request Timeout", 414: "URI Too Long", 431: "Request Header Fields Too Large",
           503: "Service Unavailable", 505: "HTTP Version Not Supported"}


def read_os_release(path: str = "/etc/os-release") -> str:
    try:
        with open(path, encoding="utf-8") as handle:
            for line in handle:
                name, _, value = line.strip().partition("=")
                if name == "PRETTY_NAME":
                    return value.strip('"')
    except OSError:
        pass
    return "unknown"


def read_meminfo(path: str = "/proc/meminfo") -> dict[str, int]:
    wanted = {"MemTotal": "memory_total_kib", "MemAvailable": "memory_available_kib"}
    found: dict[str, int] = {}
    try:
        with open(path, encoding="ascii") as handle:
            for line in handle:
                name, _, rest = line.partition(":")
                if name in wanted:
                    found[wanted[name]] = int(rest.split()[0])
    except (OSError, ValueError, IndexError):
        pass
    return found


def in_container() -> bool:
    # systemd's convention for "running in a container" is the lower-case variable, which systemd as PID 1
    # keeps from its services but writes to /run/systemd/container; the engines mark /.dockerenv and
    # /run/.containerenv (Podman).
    if os.environ.get("container") or any(  # noqa: SIM112
            os.path.exists(path) for path in ("/.dockerenv", "/run/.containerenv", "/run/systemd/container")):
        return True
    try:
        with open("/proc/1/cgroup", encoding="ascii") as handle:
            return any(word in handle.read() for word in ("docker", "containerd", "kubepods", "libpod"))
    except OSError:
        return False


class SystemInfo:
    """Static facts gathered once (no DNS); /proc figures re-read at most once a second."""

    def __init__(self) -> None:
        self.static = {
            "hostname": socket.gethostname(),
            "os": read_os_release(),
            "kernel": os.uname().release,
            "python": ".".join(map(str, sys.version_info[:3])),
            "pid": os.getpid(),
            "cpu_count": os.cpu_count(),
            "container": in_container(),
        }
        self._prefix = ""
        self._read_at = -1.0
        self._second = -1
        self._time_utc = ""
        self.requests = 0

    def body(self, now: float) -> bytes:
        """GET /'s JSON: the facts that change at most once a second are encoded once a second."""
        if now - self._read_at >= 1.0:
            dynamic = {"load_average": list(os.getloadavg()), **read_meminfo()}
            self._prefix = labkit.DUMPS(dict(self.static, **dynamic))[:-1]
            self._read_at = now
        second = int(time.time())
        if second != self._second:
            self._second, self._time_utc = second, time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(second))
        return (f'{self._prefix},"requests_served":{self.requests},"uptime_s":{round(now - STARTED, 3)},'
                f'"time_utc":"{self._time_utc}"}}').encode()


class Conn:
    """One client connection: bytes in, bytes out, and the request being answered."""

    __slots__ = ("client", "events", "inbuf", "keep", "out", "pending", "sock", "started", "state", "unread")

    def __init__(self, sock: socket.socket, client: str, state: str) -> None:
        self.sock = sock
        self.client = client
        self.inbuf = bytearray()
        self.out = b""
        self.started = 0.0        # when the current request's first byte arrived (0: none yet)
        self.keep = True          # keep the connection after the current response
        self.state = state        # ACTIVE, REJECTING (over the bound: 503) or DRAINING (answered, closing)
        self.pending: dict[str, object] | None = None  # access-log fields of the response in `out`
        self.unread = False       # the client may have sent bytes we never read (a body, a refused head)
        self.events = selectors.EVENT_READ


class Request:
    """A parsed request head, or the status to refuse it with."""

    __slots__ = ("error", "headers", "method", "path", "version")

    def __init__(self) -> None:
        self.method = self.path = self.version = None
        self.headers: dict[str, str] = {}
        self.error = 0


def head_end(buf: bytearray) -> tuple[int, int]:
    """(end of the head, length of its terminator) or (-1, 0) while incomplete; LF-only heads too."""
    end = buf.find(b"\r\n\r\n")
    if end >= 0:
        return end, 4
    end = buf.find(b"\n\n")
    return (end, 2) if end >= 0 else (-1, 0)


def check_incomplete(buf: bytearray) -> int:
    """The status that refuses a head still arriving, or 0 while it may still become valid."""
    first = buf.find(b"\n")
    if first < 0:
        return 414 if len(buf) > MAX_LINE else 0
    if first > MAX_LINE:
        return 414
    if len(buf) > MAX_HEAD or buf.count(b"\n") > MAX_HEADERS + 1:
        return 431
    last = buf.rfind(b"\n")
    return 431 if len(buf) - last > MAX_LINE else 0


def parse_head(head: bytes) -> Request:
    request = Request()
    lines = head.decode("latin-1").replace("\r\n", "\n").split("\n")
    if len(lines[0]) > MAX_LINE:
        request.error = 414
        return request
    parts = lines[0].split()
    if len(parts) != 3:
        request.error = 400  # includes HTTP/0.9's "GET /": answered with an HTTP/1.0 status line
        return request
    request.method, request.path, request.version = parts
    if request.version not in ("HTTP/1.1", "HTTP/1.0"):
        major, dot, minor = request.version.removeprefix("HTTP/").partition(".")
        valid = request.version.startswith("HTTP/") and dot and major.isdigit() and minor.isdigit()
        request.error = 505 if valid and int(major) >= 2 else 400
        return request
    if len(lines) - 1 > MAX_HEADERS or any(len(line) > MAX_LINE for line in lines):
        request.error = 431
        return request
    for line in lines[1:]:
        name, colon, value = line.partition(":")
        if not colon or not name or name != name.strip():
            request.error = 400
            return request
        request.headers[name.lower()] = value.strip()
    return request


class Server:
    def __init__(self, settings: dict, log: labkit.Log) -> None:
        self.log = log
        self.timeout = settings["timeout"]
        self.grace = settings["grace"]
        self.info = SystemInfo()
        self.listener = bind(settings["host"], settings["port"])
        self.max_connections = fit_to_fd_limit(settings["max_connections"])
        self.selector = selectors.DefaultSelector()
        self.selector.register(self.listener, selectors.EVENT_READ, None)
        # Deadlines per state, in insertion order: within a state every deadline is "now + the
        # same delay" when set, so the oldest entry expires first and a check stops at the
        # first one still in time. Only ACTIVE connections count against the bound.
        self.deadlines: dict[str, dict[Conn, float]] = {ACTIVE: {}, REJECTING: {}, DRAINING: {}}
        self.delays = {ACTIVE: self.timeout, REJECTING: min(self.timeout, SHORT_DEADLINE_S),
                       DRAINING: min(self.timeout, SHORT_DEADLINE_S)}
        self.active = self.deadlines[ACTIVE]
        self.stopping = ""
        self.dropped = {"rejected": 0, "unanswered": 0, "timed_out": 0, "reset": 0}
        self.dropped_logged_at = 0.0
        self.flush_at = 0.0
        self.wake_r, self.wake_w = socket.socketpair()
        for end in (self.wake_r, self.wake_w):
            end.setblocking(False)
        self.selector.register(self.wake_r, selectors.EVENT_READ, "wake")
        signal.set_wakeup_fd(self.wake_w.fileno(), warn_on_full_buffer=False)

    # ---- the loop ------------------------------------------------------------------------

    def serve(self) -> int:
        """Run until a signal and the grace that follows; return requests left unfinished."""
        stop_by = None
        while True:
            now = time.monotonic()
            if self.stopping and stop_by is None:
                stop_by = now + self.grace
                self.begin_stop()
            if stop_by is not None and (not self.active or now >= stop_by):
                break
            wait = self.next_wait(now, stop_by)
            for key, mask in self.selector.select(wait):
                if key.data is None:
                    self.accept()
                elif key.data == "wake":
                    self.drain_wake()
                else:
                    self.on_ready(key.data, mask)
            now = time.monotonic()
            self.expire(now)
            self.log_dropped(now)
            if self.log.buffer and (now >= self.flush_at or len(self.log.buffer) >= FLUSH_LINES):
                self.log.flush()
                self.flush_at = now + FLUSH_S
            elif self.log.backlog and now >= self.flush_at:
                self.log.drain()
                self.flush_at = now + FLUSH_S
        unfinished = sum(1 for conn in self.active if conn.started or conn.out)
        for table in self.deadlines.values():
            for conn in list(table):
                self.close(conn)
        return unfinished

    def next_wait(self, now: float, stop_by: float | None) -> float:
        wait = 1.0 if not (self.log.buffer or self.log.backlog) else self.flush_at - now
        for table in self.deadlines.values():
            for deadline in table.values():
                wait = min(wait, deadline - now)
                break
        if stop_by is not None:
            wait = min(wait, stop_by - now)
        return max(wait, 0.0)

    def drain_wake(self) -> None:
        try:
            while self.wake_r.recv(64):
                pass
        except OSError:
            pass

    def begin_stop(self) -> None:
        self.log.event("stopping", now=True, signal=self.stopping)
        self.selector.unregister(self.listener)
        self.listener.close()
        for conn in list(self.active):
            if not conn.started and not conn.out and not conn.inbuf:
                self.close(conn)  # idle keep-alive: nothing to finish
            else:
                conn.keep = False

    def accept(self) -> None:
        for _ in range(ACCEPTS_PER_PASS):
            try:
                sock, address = self.listener.accept()
            except (BlockingIOError, InterruptedError):
                return
            except OSError as exc:
                if exc.errno in (errno.EMFILE, errno.ENFILE, errno.ENOBUFS, errno.ENOMEM):
                    self.dropped["unanswered"] += 1
                    return  # left in the backlog until descriptors free up
                continue  # ECONNABORTED and the like: that client is gone
            sock.setblocking(False)
            state = ACTIVE if len(self.active) < self.max_connections else REJECTING
            if state == REJECTING:
                self.dropped["rejected"] += 1
                if len(self.deadlines[REJECTING]) >= REJECTING_MAX:
                    self.dropped["unanswered"] += 1
                    sock.close()
                    continue
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            conn = Conn(sock, address[0], state)
            self.selector.register(sock, selectors.EVENT_READ, conn)
            self.deadlines[state][conn] = time.monotonic() + self.delays[state]

    def on_ready(self, conn: Conn, mask: int) -> None:  # noqa: PLR0911 - one return per outcome of a read
        if conn.sock.fileno() < 0:
            return  # closed earlier in this pass
        if mask & selectors.EVENT_WRITE and conn.out:
            self.send(conn)
            return
        if not mask & selectors.EVENT_READ:
            return
        try:
            data = conn.sock.recv(READ_SIZE)
        except (BlockingIOError, InterruptedError):
            return
        except OSError:
            self.dropped["reset"] += 1
            self.close(conn)
            return
        if not data:
            self.close(conn)
            return
        if conn.state == DRAINING:
            return  # the answer is out; what the client still sends is read and dropped
        if conn.out:
            conn.inbuf += data  # pipelined: answered once the current response is out
            return
        if not conn.inbuf:
            conn.started = time.perf_counter()
        conn.inbuf += data
        self.process(conn)

    def process(self, conn: Conn) -> None:
        end, size = head_end(conn.inbuf)
        if end < 0:
            status = check_incomplete(conn.inbuf)
            if status:
                self.respond(conn, 503 if conn.state == REJECTING else status, error_request(), close=True)
            return
        head = bytes(conn.inbuf[:end])
        del conn.inbuf[:end + size]
        request = parse_head(head)
        if conn.state == REJECTING:
            self.respond(conn, 503, request, close=True)
        elif request.error:
            self.respond(conn, request.error, request, close=True)
        else:
            self.answer(conn, request)

    def answer(self, conn: Conn, request: Request) -> None:
        headers = request.headers
        tokens = {token.strip().lower() for token in headers.get("connection", "").split(",")}
        keep = "close" not in tokens if request.version == "HTTP/1.1" else "keep-alive" in tokens
        # A request body is never read: close after the answer so it is not taken for a request.
        if "transfer-encoding" in headers or headers.get("content-length", "0").strip() not in ("", "0"):
            keep, conn.unread = False, True
        if request.method not in ("GET", "HEAD"):
            self.respond(conn, 405, request, close=True, extra="Allow: GET, HEAD\r\n")
            return
        path = request.path.split("?", 1)[0]
        if path == "/":
            self.info.requests += 1
            self.respond(conn, 200, request, close=not keep, payload=self.info.body(time.monotonic()))
        elif path == "/healthz":
            self.respond(conn, 200, request, close=not keep, payload=HEALTHY)
        else:
            self.respond(conn, 404, request, close=not keep,
                         payload=labkit.DUMPS({"error": "not found", "status": 404, "path": path}).encode())

    def respond(self, conn: Conn, status: int, request: Request, *, close: bool,
                payload: bytes | None = None, extra: str = "") -> None:
        if payload is None:
            payload = labkit.DUMPS({"error": REASONS[status].lower(), "status": status}).encode()
        close = close or bool(self.stopping)
        conn.keep = not close
        conn.unread = conn.unread or (close and status >= 400)  # a refused request may have more bytes
        version = request.version if request.version in ("HTTP/1.1", "HTTP/1.0") else "HTTP/1.0"
        connection = "close" if close else ("keep-alive" if version == "HTTP/1.0" else "")
        head = (f"{version} {status} {REASONS[status]}\r\nServer: lab-server/2.0\r\n"
                f"Content-Type: application/json\r\nContent-Length: {len(payload)}\r\n{extra}"
                + (f"Connection: {connection}\r\n" if connection else "") + "\r\n").encode()
        conn.out = head if request.method == "HEAD" else head + payload
        if conn.state == REJECTING:
            conn.pending = None  # counted in the dropped summary, not one line each
        else:
            conn.pending = {"method": request.method, "path": request.path, "status": status,
                            "client": conn.client}
        self.send(conn)

    def send(self, conn: Conn) -> None:
        try:
            sent = conn.sock.send(conn.out)
        except (BlockingIOError, InterruptedError):
            sent = 0
        except OSError:
            self.dropped["reset"] += 1
            self.close(conn)
            return
        conn.out = conn.out[sent:]
        if conn.out:
            self.watch(conn, selectors.EVENT_READ | selectors.EVENT_WRITE)
            return
        self.watch(conn, selectors.EVENT_READ)
        if conn.pending is not None:
            conn.pending["ms"] = round((time.perf_counter() - conn.started) * 1000, 3)
            self.log.event("request", **conn.pending)
            conn.pending = None
        conn.started = 0.0
        if not conn.keep:
            self.finish(conn)
            return
        # The next request's deadline starts now; pipelined bytes are answered at once.
        del self.active[conn]
        self.active[conn] = time.monotonic() + self.timeout
        if conn.inbuf:
            conn.started = time.perf_counter()
            self.process(conn)

    def finish(self, conn: Conn) -> None:
        """Close after the response. With nothing left unread, at once; otherwise half-close and drain,
        so that the unread bytes cause no reset that would destroy the answer before the client reads it."""
        if not conn.unread and not conn.inbuf:
            self.close(conn)
            return
        try:
            conn.sock.shutdown(socket.SHUT_WR)
        except OSError:
            self.close(conn)
            return
        conn.inbuf.clear()
        # The client closes its end on seeing our FIN; a short deadline bounds the wait.
        del self.deadlines[conn.state][conn]
        conn.state = DRAINING
        self.deadlines[DRAINING][conn] = time.monotonic() + self.delays[DRAINING]

    def watch(self, conn: Conn, events: int) -> None:
        if conn.events != events:
            conn.events = events
            self.selector.modify(conn.sock, events, conn)

    def expire(self, now: float) -> None:
        for state, table in self.deadlines.items():
            while table:
                conn, deadline = next(iter(table.items()))
                if deadline > now:
                    break
                if state == ACTIVE and (conn.inbuf or conn.out):
                    self.dropped["timed_out"] += 1
                self.close(conn)

    def close(self, conn: Conn) -> None:
        self.deadlines[conn.state].pop(conn, None)
        if conn.pending is not None:
            conn.pending["ms"] = round((time.perf_counter() - conn.started) * 1000, 3)
            self.log.event("request", "WARNING", sent=False, **conn.pending)
            conn.pending = None
        if conn.sock.fileno() >= 0:
            self.selector.unregister(conn.sock)
        conn.sock.close()

    def log_dropped(self, now: float) -> None:
        """One summary line a second at most: a flood of bad clients is no flood of log lines."""
        if now - self.dropped_logged_at < 1.0 or not any(self.dropped.values()):
            return
        self.dropped_logged_at = now
        self.log.event("connections_dropped", "WARNING", **self.dropped, open=len(self.active))
        self.dropped = dict.fromkeys(self.dropped, 0)


def error_request() -> Request:
    request = Request()
    request.version = "HTTP/1.0"
    return request


def bind(host: str, port: int) -> socket.socket:
    """Listen on an IPv4 or IPv6 address; a name is resolved here, an address never is."""
    family, kind, proto, _, address = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM,
                                                         flags=socket.AI_PASSIVE)[0]
    sock = socket.socket(family, kind, proto)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(address)
        sock.listen(BACKLOG)
    except OSError:
        sock.close()
        raise
    sock.setblocking(False)
    return sock


def fit_to_fd_limit(wanted: int) -> int:
    """Raise the descriptor limit to its hard limit; the bound never exceeds what it allows."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if hard == resource.RLIM_INFINITY or soft < hard:
        target = hard if hard != resource.RLIM_INFINITY else max(soft, wanted + FD_RESERVE + REJECTING_MAX)
        try:
            resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))
            soft = target
        except (ValueError, OSError):
            pass
    return max(1, min(wanted, soft - FD_RESERVE - REJECTING_MAX))


OPTIONS = [
    labkit.Option("--host", "LAB_SERVER_HOST", "0.0.0.0", labkit.text, "address to bind, IPv4 or IPv6"),
    labkit.Option("--port", "LAB_SERVER_PORT", "8080", labkit.number(int, 1, 65535), "TCP port"),
    labkit.Option("--log-file", "LAB_SERVER_LOG_FILE", None, labkit.text, "also log to this file"),
    labkit.Option("--log-max-bytes", "LAB_SERVER_LOG_MAX_BYTES", "10485760", labkit.number(int, 0),
                  "rotate the log file past this size (0: never; logrotate may move it too)"),
    labkit.Option("--log-backups", "LAB_SERVER_LOG_BACKUPS", "3", labkit.number(int, 0, 100),
                  "rotated log files kept"),
    labkit.Option("--max-connections", "LAB_SERVER_MAX_CONNECTIONS", "4096", labkit.number(int, 1, 1 << 20),
                  "connections held at once; more get 503"),
    labkit.Option("--timeout", "LAB_SERVER_TIMEOUT", "10", labkit.number(float, high=3600, above=0),
                  "seconds a request may take, from waiting for it to its answer written"),
    labkit.Option("--grace", "LAB_SERVER_GRACE", "1.5", labkit.number(float, 0, 3600),
                  "seconds requests in flight get to finish on stop"),
]


def main(argv: list[str] | None = None) -> int:
    settings = labkit.parse("server.py", "Lab HTTP server: JSON system info on GET /.", OPTIONS, {}, argv)
    try:
        # The loop never waits for a slow stdout reader (labkit.Log.STDOUT_BACKLOG_MAX).
        log = labkit.Log(settings["log_file"], settings["log_max_bytes"], settings["log_backups"],
                         wait_for_stdout=False)
    except OSError as exc:
        print(f"server.py: error: cannot open log file: {exc}", file=sys.stderr)
        return 2
    try:
        server = Server(settings, log)
    except (OSError, UnicodeError) as exc:
        log.wait_for_stdout(True)
        log.event("bind_failed", "ERROR", now=True, host=settings["host"], port=settings["port"], error=str(exc))
        return 3

    def stop(signum: int, _frame: object) -> None:
        server.stopping = server.stopping or signal.Signals(signum).name

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    labkit.wait_for_orphans_as_init()
    log.event("started", now=True, host=settings["host"], port=server.listener.getsockname()[1], pid=os.getpid(),
              max_connections=server.max_connections)
    unfinished = server.serve()
    log.flush()
    log.wait_for_stdout(True)  # the backlog and the last line reach stdout before the process ends
    log.event("stopped", now=True, unfinished_requests=unfinished, requests_served=server.info.requests,
              stdout_dropped_bytes=log.stdout_dropped)
    return 0


if __name__ == "__main__":
    sys.exit(main())
