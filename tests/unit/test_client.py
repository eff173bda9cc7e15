"""client.py as a real process against the real server and a deliberately bad one."""

from __future__ import annotations

import errno
import json
import signal
import socket
import sys
import threading
import time
import urllib.error
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from tests.conftest import FILES, free_port, json_lines, wait_for

BAD_BODIES = {
    "http_error": (500, b'{"error": "boom"}'),
    "not_json": (200, b"<html>garbage</html>"),
    "missing_fields": (200, b'{"status": "ok"}'),
}


class BadServer:
    """A local server whose behaviour each test sets: bad status, garbage, slow, hang-up, or good."""

    def __init__(self) -> None:
        self.mode = "good"
        bad = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                if bad.mode == "slow":
                    time.sleep(1.5)
                if bad.mode == "closed":
                    self.close_connection = True
                    return  # no response at all
                status, body = BAD_BODIES.get(bad.mode, (200, json.dumps(
                    {"hostname": "bad-server", "pid": 1, "requests_served": 0}).encode()))
                self.send_response(status)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args: object) -> None:
                pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}/"
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


@pytest.fixture
def bad_server() -> Iterator[BadServer]:
    server = BadServer()
    yield server
    server.close()


def test_once_succeeds_against_real_server(server, start_service):
    service, port = server
    client = start_service("client.py", "--once", "--url", f"http://127.0.0.1:{port}/")
    assert client.proc.wait(10) == 0
    line = client.events("poll_ok")[0]
    assert line["status"] == 200 and line["server_pid"] == service.proc.pid and line["latency_ms"] > 0


def test_once_fails_when_refused(start_service):
    client = start_service("client.py", "--once", "--url", f"http://127.0.0.1:{free_port()}/")
    assert client.proc.wait(10) == 1
    assert client.events("poll_failed")[0]["reason"] == "refused"


def test_dns_failure_is_named(start_service):
    client = start_service("client.py", "--once", "--url", "http://lab-no-such-host.invalid:8080/", "--timeout", "5")
    assert client.proc.wait(30) == 1
    assert client.events("poll_failed")[0]["reason"] == "dns"


@pytest.mark.parametrize("mode", ["http_error", "not_json", "missing_fields", "timeout", "closed"])
def test_bad_server_reason_logged_and_client_recovers(bad_server, start_service, mode):
    bad_server.mode = "slow" if mode == "timeout" else mode
    client = start_service("client.py", "--url", bad_server.url, "--interval", "0.5", "--timeout", "0.5")
    failed = wait_for(lambda: client.events("poll_failed"), 10, f"a {mode} failure")
    assert failed[0]["reason"] == mode, failed[0]
    assert client.proc.poll() is None, "client died on a bad answer"
    bad_server.mode = "good"
    ok = wait_for(lambda: client.events("poll_ok"), 10, "success after the server is fixed")
    assert ok[0]["server_hostname"] == "bad-server"
    assert ok[0]["failed"] >= 1, "counters should carry the failures"


def test_back_within_one_interval_after_server_returns(start_service):
    port = free_port()
    interval = 2.0
    client = start_service("client.py", "--url", f"http://127.0.0.1:{port}/", "--interval", str(interval))
    wait_for(lambda: len(client.events("poll_failed")) >= 3, 10, "failures while the server is down")
    start_service("server.py", "--host", "127.0.0.1", "--port", str(port))
    wait_for(lambda: client.events("poll_ok"), interval + 3, "success within one interval of the server's return")
    assert client.proc.poll() is None


def test_sigterm_mid_wait_exits_0_promptly(server, start_service):
    client = start_service("client.py", "--url", f"http://127.0.0.1:{server[1]}/", "--interval", "60")
    wait_for(lambda: client.events("poll_ok"), 10, "first poll")
    code, took = client.stop(signal.SIGTERM)
    assert code == 0
    assert took < 1.0, f"client took {took:.2f}s to stop"
    assert client.events("stopped")[0]["ok"] >= 1


def test_log_file_survives_logrotate_move(server, start_service, tmp_path):
    log = tmp_path / "client.log"
    client = start_service("client.py", "--url", f"http://127.0.0.1:{server[1]}/", "--interval", "0.2",
                           "--log-file", str(log))
    wait_for(lambda: len(json_lines(log)) >= 2, 10, "lines in the log file")
    rotated = tmp_path / "client.log.1"
    log.rename(rotated)  # what logrotate does without copytruncate
    wait_for(lambda: json_lines(log), 10, "lines in the reopened log file")
    client.stop()
    counts = [line["ok"] for line in json_lines(rotated) + json_lines(log) if line["event"] == "poll_ok"]
    assert counts == list(range(1, len(counts) + 1)), "a poll line was lost across the rotation"


@pytest.mark.parametrize("args", [["--interval", "0"], ["--url", "ftp://x/"], ["--timeout", "-1"]])
def test_bad_arguments_exit_2(start_service, args):
    assert start_service("client.py", *args).proc.wait(10) == 2


@pytest.mark.parametrize(("exc", "reason"), [
    (ConnectionRefusedError(errno.ECONNREFUSED, "refused"), "refused"),
    (OSError(errno.EADDRNOTAVAIL, "Cannot assign requested address"), "unreachable"),
    (OSError(errno.ENETUNREACH, "Network is unreachable"), "unreachable"),
    (socket.gaierror(-2, "Name or service not known"), "dns"),
    (TimeoutError("timed out"), "timeout"),
    (ConnectionResetError(errno.ECONNRESET, "reset"), "closed"),
])
def test_failure_reasons_are_classified(exc, reason):
    """Errors that cannot be provoked on every machine (no IPv6 in a container, say), classified directly."""
    sys.path.insert(0, str(FILES))
    try:
        import client
    finally:
        sys.path.remove(str(FILES))
    assert client.classify(urllib.error.URLError(exc))[0] == reason
