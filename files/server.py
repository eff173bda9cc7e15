#!/usr/bin/env python3
"""Lab HTTP server: answers GET / with JSON system information.

Stdlib only (Python 3.10+).  One JSON log line per request and per lifecycle
event.  Exit codes: 0 clean stop (SIGTERM/SIGINT), 2 bad arguments, 3 cannot bind.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import logging
import os
import signal
import socket
import sys
import threading
import time

# http.server imports http.client, which loads ssl (about 2 MiB of RSS) only
# to offer HTTPS clients; this server never uses it.
sys.modules.setdefault("ssl", None)  # type: ignore[arg-type]
from http import HTTPStatus  # noqa: E402
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer  # noqa: E402

LOG = logging.getLogger("lab.server")
STARTED = time.monotonic()
# A handler thread needs little stack; a small one keeps hundreds of held
# connections cheap in memory.
threading.stack_size(512 * 1024)


class JsonFormatter(logging.Formatter):
    """One JSON object per line: the record's message is the event name."""

    def format(self, record: logging.LogRecord) -> str:
        line = {"ts": self.formatTime(record, "%Y-%m-%dT%H:%M:%S") + f".{int(record.msecs):03d}Z",
                "level": record.levelname, "event": record.getMessage()}
        line.update(getattr(record, "fields", {}))
        return json.dumps(line, separators=(",", ":"))


def setup_logging(name: str, log_file: str | None) -> None:
    logging.Formatter.converter = time.gmtime
    handlers: list[logging.Handler] = [logging.StreamHandler(sys.stdout)]
    if log_file:
        from logging.handlers import WatchedFileHandler  # reopened after logrotate moves it

        handlers.append(WatchedFileHandler(log_file))
    for handler in handlers:
        handler.setFormatter(JsonFormatter())
    logging.basicConfig(level=logging.INFO, handlers=handlers)
    logging.getLogger(name).setLevel(logging.INFO)


def event(name: str, level: int = logging.INFO, **fields: object) -> None:
    LOG.log(level, name, extra={"fields": fields})


def read_os_release(path: str = "/etc/os-release") -> str:
    try:
        with open(path, encoding="utf-8") as handle:
            for line in handle:
                key, _, value = line.strip().partition("=")
                if key == "PRETTY_NAME":
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
                key, _, rest = line.partition(":")
                if key in wanted:
                    found[wanted[key]] = int(rest.split()[0])
    except (OSError, ValueError, IndexError):
        pass
    return found


def in_container() -> bool:
    # systemd's convention for "running in a container" is the lower-case variable.
    if os.environ.get("container") or os.path.exists("/.dockerenv"):  # noqa: SIM112
        return True
    try:
        with open("/proc/1/cgroup", encoding="ascii") as handle:
            return any(word in handle.read() for word in ("docker", "containerd", "kubepods"))
    except OSError:
        return False


class SystemInfo:
    """Static facts gathered once; /proc figures re-read at most once a second."""

    def __init__(self) -> None:
        uname = os.uname()
        self.static = {
            "hostname": socket.gethostname(),
            "os": read_os_release(),
            "kernel": uname.release,
            "python": ".".join(map(str, sys.version_info[:3])),
            "pid": os.getpid(),
            "cpu_count": os.cpu_count(),
            "container": in_container(),
        }
        self._lock = threading.Lock()
        self._dynamic: dict[str, object] = {}
        self._read_at = -1.0
        self.requests = 0

    def count_request(self) -> None:
        with self._lock:
            self.requests += 1

    def snapshot(self) -> dict[str, object]:
        now = time.monotonic()
        with self._lock:
            if now - self._read_at >= 1.0:
                self._dynamic = {"load_average": list(os.getloadavg()), **read_meminfo()}
                self._read_at = now
            body = dict(self.static, **self._dynamic)
            body["requests_served"] = self.requests
        body["uptime_s"] = round(now - STARTED, 3)
        body["time_utc"] = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
        return body


class LabServer(ThreadingHTTPServer):
    daemon_threads = True
    request_queue_size = 128

    def __init__(self, address: tuple[str, int], max_connections: int, timeout_s: float) -> None:
        self.info = SystemInfo()
        self.stopping = threading.Event()
        self.handler_timeout = timeout_s
        self.slots = threading.BoundedSemaphore(max_connections)
        self._inflight = 0
        self._idle = threading.Condition()
        super().__init__(address, LabHandler)

    def process_request(self, request: socket.socket, client_address: tuple[str, int]) -> None:
        # Bounded: beyond max_connections a connection is refused with 503 at
        # once instead of growing threads without limit.
        if not self.slots.acquire(blocking=False):
            event("connection_rejected", logging.WARNING, client=client_address[0], reason="max_connections")
            with contextlib.suppress(OSError):
                request.sendall(b"HTTP/1.0 503 Service Unavailable\r\nContent-Length: 0\r\nConnection: close\r\n\r\n")
            self.shutdown_request(request)
            return
        super().process_request(request, client_address)

    def process_request_thread(self, request: socket.socket, client_address: tuple[str, int]) -> None:
        try:
            super().process_request_thread(request, client_address)
        finally:
            self.slots.release()

    def request_started(self) -> None:
        with self._idle:
            self._inflight += 1

    def request_finished(self) -> None:
        with self._idle:
            self._inflight -= 1
            self._idle.notify_all()

    def wait_idle(self, deadline_s: float) -> int:
        """Wait for in-flight requests to finish; return how many were left."""
        end = time.monotonic() + deadline_s
        with self._idle:
            while self._inflight and (left := end - time.monotonic()) > 0:
                self._idle.wait(left)
            return self._inflight


class LabHandler(BaseHTTPRequestHandler):
    server: LabServer
    protocol_version = "HTTP/1.1"
    server_version = "lab-server/1.0"
    sys_version = ""

    def setup(self) -> None:
        self.timeout = self.server.handler_timeout  # a silent client is dropped after this
        super().setup()

    def handle_one_request(self) -> None:
        self._started = time.perf_counter()
        self._counted = False
        try:
            super().handle_one_request()
        finally:
            if self._counted:
                self.server.request_finished()
        if self.server.stopping.is_set():
            self.close_connection = True

    def parse_request(self) -> bool:
        ok = super().parse_request()
        if ok:
            self.server.request_started()
            self._counted = True
        return ok

    def send_json(self, status: HTTPStatus, body: dict[str, object], extra: dict[str, str] | None = None) -> None:
        payload = json.dumps(body, separators=(",", ":")).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(payload)))
        for key, value in (extra or {}).items():
            self.send_header(key, value)
        if self.server.stopping.is_set():
            self.send_header("Connection", "close")
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(payload)

    def send_error(self, code: int, message: str | None = None, explain: str | None = None) -> None:
        # Errors found while parsing (bad request line, oversized headers) get
        # the same JSON shape as the rest and close the connection.
        self.close_connection = True
        # An unparsable request line leaves the version at HTTP/0.9, which
        # would send the error without a status line.
        if self.request_version == "HTTP/0.9":
            self.request_version = "HTTP/1.0"
        status = HTTPStatus(code)
        with contextlib.suppress(OSError):
            self.send_json(status, {"error": message or status.phrase, "status": code}, {"Connection": "close"})

    def do_GET(self) -> None:
        path = self.path.split("?", 1)[0]
        if path == "/":
            self.server.info.count_request()
            self.send_json(HTTPStatus.OK, self.server.info.snapshot())
        elif path == "/healthz":
            self.send_json(HTTPStatus.OK, {"status": "ok"})
        else:
            self.send_json(HTTPStatus.NOT_FOUND, {"error": "not found", "status": 404, "path": path})

    def do_HEAD(self) -> None:
        self.do_GET()

    def method_not_allowed(self) -> None:
        # The body, if any, is not read: close so it is not taken for a request.
        self.close_connection = True
        self.send_json(HTTPStatus.METHOD_NOT_ALLOWED, {"error": "method not allowed", "status": 405},
                       {"Allow": "GET, HEAD", "Connection": "close"})

    do_POST = do_PUT = do_DELETE = do_PATCH = do_OPTIONS = do_TRACE = do_CONNECT = method_not_allowed

    def log_request(self, code: int | str = "-", size: int | str = "-") -> None:
        # path is unset when the request line itself was malformed.
        event("request", method=self.command, path=getattr(self, "path", None),
              status=int(code) if str(code).isdigit() else code,
              ms=round((time.perf_counter() - self._started) * 1000, 3), client=self.client_address[0])

    def log_error(self, format: str, *args: object) -> None:  # noqa: A002 - stdlib signature
        event("request_error", logging.WARNING, client=self.client_address[0], detail=format % args)

    def log_message(self, format: str, *args: object) -> None:  # noqa: A002 - stdlib signature
        event("message", detail=format % args)


def env_default(name: str, fallback: str) -> str:
    return os.environ.get(name) or fallback


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description="Lab HTTP server: JSON system info on GET /.")
    parser.add_argument("--host", default=env_default("LAB_SERVER_HOST", "0.0.0.0"),
                        help="address to bind (LAB_SERVER_HOST)")
    parser.add_argument("--port", type=int, default=int(env_default("LAB_SERVER_PORT", "8080")),
                        help="TCP port (LAB_SERVER_PORT)")
    parser.add_argument("--log-file", default=os.environ.get("LAB_SERVER_LOG_FILE"),
                        help="also log to this file (LAB_SERVER_LOG_FILE)")
    parser.add_argument("--max-connections", type=int, default=int(env_default("LAB_SERVER_MAX_CONNECTIONS", "512")),
                        help="connections handled at once; more get 503 (LAB_SERVER_MAX_CONNECTIONS)")
    parser.add_argument("--timeout", type=float, default=float(env_default("LAB_SERVER_TIMEOUT", "10")),
                        help="seconds a connection may stay silent (LAB_SERVER_TIMEOUT)")
    parser.add_argument("--grace", type=float, default=1.5, help="seconds in-flight requests get on stop")
    args = parser.parse_args(argv)
    if not 0 < args.port < 65536:
        parser.error(f"--port must be 1-65535, got {args.port}")
    if args.max_connections < 1 or args.timeout <= 0:
        parser.error("--max-connections and --timeout must be positive")
    return args


def main(argv: list[str] | None = None) -> int:
    try:
        args = parse_args(argv)
    except ValueError as exc:  # a non-numeric environment variable
        print(f"server.py: error: {exc}", file=sys.stderr)
        return 2
    try:
        setup_logging("lab.server", args.log_file)
    except OSError as exc:
        print(f"server.py: error: cannot open log file: {exc}", file=sys.stderr)
        return 2
    try:
        server = LabServer((args.host, args.port), args.max_connections, args.timeout)
    except OSError as exc:
        event("bind_failed", logging.ERROR, host=args.host, port=args.port, error=str(exc))
        return 3

    def stop(signum: int, _frame: object) -> None:
        if not server.stopping.is_set():
            server.stopping.set()
            event("stopping", signal=signal.Signals(signum).name)
            # shutdown() waits for serve_forever(), which runs in this thread.
            threading.Thread(target=server.shutdown, daemon=True).start()

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    event("started", host=args.host, port=server.server_address[1], pid=os.getpid(),
          max_connections=args.max_connections)
    server.serve_forever(poll_interval=0.2)
    left = server.wait_idle(args.grace)
    server.server_close()
    event("stopped", unfinished_requests=left, requests_served=server.info.requests)
    return 0


if __name__ == "__main__":
    sys.exit(main())
