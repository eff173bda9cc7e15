#!/usr/bin/env python3
"""Lab client: polls the lab server and logs one JSON line per poll.

Stdlib only (Python 3.10+).  Polls every --interval seconds while the server
answers; after a failure it retries sooner (--retry-min, doubling up to the
interval) so that a server that is starting or restarting is seen at once.
Exit codes: 0 clean stop, or --once succeeded; 1 --once failed; 2 bad arguments.
"""

from __future__ import annotations

import argparse
import errno
import http.client
import json
import logging
import os
import signal
import socket
import sys
import threading
import time
import urllib.error
import urllib.request

LOG = logging.getLogger("lab.client")
REQUIRED_FIELDS = ("hostname", "pid", "requests_served")


class JsonFormatter(logging.Formatter):
    """One JSON object per line: the record's message is the event name."""

    def format(self, record: logging.LogRecord) -> str:
        line = {"ts": self.formatTime(record, "%Y-%m-%dT%H:%M:%S") + f".{int(record.msecs):03d}Z",
                "level": record.levelname, "event": record.getMessage()}
        line.update(getattr(record, "fields", {}))
        return json.dumps(line, separators=(",", ":"))


class PollError(Exception):
    """A failed poll; `reason` is a short stable word for logs and tests."""

    def __init__(self, reason: str, detail: str, status: int | None = None) -> None:
        super().__init__(detail)
        self.reason = reason
        self.detail = detail
        self.status = status


def setup_logging(log_file: str | None) -> None:
    logging.Formatter.converter = time.gmtime
    handlers: list[logging.Handler] = [logging.StreamHandler(sys.stdout)]
    if log_file:
        from logging.handlers import WatchedFileHandler  # reopened after logrotate moves it

        handlers.append(WatchedFileHandler(log_file))
    for handler in handlers:
        handler.setFormatter(JsonFormatter())
    logging.basicConfig(level=logging.INFO, handlers=handlers)


def event(name: str, level: int = logging.INFO, **fields: object) -> None:
    LOG.log(level, name, extra={"fields": fields})


# Exception types to the reason word logged for them, first match wins.
REASONS: tuple[tuple[tuple[type[BaseException], ...], str], ...] = (
    ((socket.gaierror,), "dns"),
    ((TimeoutError, socket.timeout), "timeout"),
    ((ConnectionRefusedError,), "refused"),
    ((ConnectionResetError, BrokenPipeError, http.client.RemoteDisconnected, http.client.IncompleteRead), "closed"),
    ((http.client.HTTPException,), "bad_response"),
)
# Connecting to localhost tries every address; in a container without IPv6 the
# last one, ::1, fails with EADDRNOTAVAIL, and that is the error raised.
UNREACHABLE = (errno.EADDRNOTAVAIL, errno.ENETUNREACH, errno.EHOSTUNREACH)


def classify(exc: BaseException) -> tuple[str, str]:
    """Map a network exception to (reason, detail)."""
    cause = exc.reason if isinstance(exc, urllib.error.URLError) else exc
    detail = str(cause) or type(cause).__name__
    for types, reason in REASONS:
        if isinstance(cause, types):
            return reason, detail
    if isinstance(cause, OSError) and cause.errno in UNREACHABLE:
        return "unreachable", detail
    return "error", f"{type(cause).__name__}: {cause}"


def poll(url: str, timeout: float) -> dict[str, object]:
    """One GET; return the fields to log on success, raise PollError otherwise."""
    headers = {"User-Agent": "lab-client/1.0", "Accept": "application/json"}
    request = urllib.request.Request(url, headers=headers)  # noqa: S310 - scheme checked in parse_args
    started = time.perf_counter()
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:  # noqa: S310 - URL is the operator's setting
            status = response.status
            raw = response.read(1024 * 1024)
    except urllib.error.HTTPError as exc:
        raise PollError("http_error", f"HTTP {exc.code} {exc.reason}", exc.code) from None
    except (OSError, http.client.HTTPException) as exc:
        reason, detail = classify(exc)
        raise PollError(reason, detail) from None
    latency_ms = round((time.perf_counter() - started) * 1000, 3)
    try:
        body = json.loads(raw)
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise PollError("not_json", f"body is not JSON: {exc}", status) from None
    if not isinstance(body, dict):
        raise PollError("not_json", "body is not a JSON object", status)
    missing = [field for field in REQUIRED_FIELDS if field not in body]
    if missing:
        raise PollError("missing_fields", "missing " + ",".join(missing), status)
    return {"status": status, "latency_ms": latency_ms, "server_hostname": body["hostname"],
            "server_pid": body["pid"]}


class Poller:
    def __init__(self, url: str, interval: float, timeout: float, retry_min: float) -> None:
        self.url = url
        self.interval = interval
        self.timeout = timeout
        self.retry_min = retry_min
        self.ok = 0
        self.failed = 0
        self.stop = threading.Event()

    def poll_once(self) -> bool:
        try:
            fields = poll(self.url, self.timeout)
        except PollError as exc:
            self.failed += 1
            event("poll_failed", logging.WARNING, url=self.url, reason=exc.reason, detail=exc.detail,
                  status=exc.status, ok=self.ok, failed=self.failed)
            return False
        self.ok += 1
        event("poll_ok", url=self.url, **fields, ok=self.ok, failed=self.failed)
        return True

    def run(self) -> None:
        retry = self.retry_min
        next_at = time.monotonic()
        while not self.stop.is_set():
            if self.poll_once():
                retry = self.retry_min
                next_at += self.interval
            else:
                next_at = time.monotonic() + retry
                retry = min(retry * 2, self.interval)
            # Keep the schedule when a poll was slow, never busy-loop behind it.
            next_at = max(next_at, time.monotonic())
            self.stop.wait(next_at - time.monotonic())


def positive_float(text: str) -> float:
    value = float(text)
    if value <= 0:
        raise argparse.ArgumentTypeError(f"must be > 0, got {text}")
    return value


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    env = os.environ.get
    parser = argparse.ArgumentParser(description="Poll the lab server and log each result as one JSON line.")
    parser.add_argument("--url", default=env("LAB_CLIENT_URL") or "http://localhost:8080/",
                        help="server URL (LAB_CLIENT_URL)")
    parser.add_argument("--interval", type=positive_float, default=env("LAB_CLIENT_INTERVAL") or "5",
                        help="seconds between polls while the server answers (LAB_CLIENT_INTERVAL)")
    parser.add_argument("--timeout", type=positive_float, default=env("LAB_CLIENT_TIMEOUT") or "2",
                        help="seconds one request may take (LAB_CLIENT_TIMEOUT)")
    parser.add_argument("--retry-min", type=positive_float, default=env("LAB_CLIENT_RETRY_MIN") or "0.1",
                        help="first retry delay after a failure, doubled up to the interval (LAB_CLIENT_RETRY_MIN)")
    parser.add_argument("--log-file", default=env("LAB_CLIENT_LOG_FILE"),
                        help="also log to this file (LAB_CLIENT_LOG_FILE)")
    parser.add_argument("--once", action="store_true", help="poll once; exit 0 on success, 1 on failure")
    args = parser.parse_args(argv)
    if not args.url.startswith(("http://", "https://")):
        parser.error(f"--url must be an http:// or https:// URL, got {args.url!r}")
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    try:
        setup_logging(args.log_file)
    except OSError as exc:
        print(f"client.py: error: cannot open log file: {exc}", file=sys.stderr)
        return 2
    poller = Poller(args.url, args.interval, args.timeout, args.retry_min)
    if args.once:
        return 0 if poller.poll_once() else 1

    def stop(signum: int, _frame: object) -> None:
        event("stopping", signal=signal.Signals(signum).name)
        poller.stop.set()

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    event("started", url=args.url, interval=args.interval, timeout=args.timeout, pid=os.getpid())
    poller.run()
    event("stopped", ok=poller.ok, failed=poller.failed)
    return 0


if __name__ == "__main__":
    sys.exit(main())
