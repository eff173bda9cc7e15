"""client.py as a real process against the real server and a deliberately bad one."""

from __future__ import annotations

import errno
import json
import signal
import socket
import sys
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from tests.support.logs import json_lines
from tests.support.process import free_port, wait_for
from tests.support.project import FILES

BAD_BODIES = {
    "http_error": (500, b'{"error": "boom"}'),
    "not_json": (200, b"<html>garbage</html>"),
    "missing_fields": (200, b'{"status": "ok"}'),
    "nested": (200, b"[" * 100000 + b"]" * 100000),
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
                if bad.mode == "hang":
                    time.sleep(30)
                    return
                if bad.mode == "trickle":  # the head at once, then a byte of body every 0.3 s
                    self.send_response(200)
                    self.send_header("Content-Length", "100")
                    self.end_headers()
                    for _ in range(100):
                        self.wfile.write(b" ")
                        self.wfile.flush()
                        time.sleep(0.3)
                    return
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
    assert import_client().classify(exc).reason == reason


def import_client():
    sys.path.insert(0, str(FILES))
    try:
        import client
    finally:
        sys.path.remove(str(FILES))
    return client


def test_proxy_settings_are_ignored(server, start_service, monkeypatch):
    monkeypatch.setenv("http_proxy", f"http://127.0.0.1:{free_port()}")
    monkeypatch.setenv("HTTP_PROXY", f"http://127.0.0.1:{free_port()}")
    client = start_service("client.py", "--once", "--url", f"http://127.0.0.1:{server[1]}/")
    assert client.proc.wait(10) == 0, client.events()


def test_one_deadline_covers_the_whole_poll(bad_server, start_service):
    """A body trickling in (100 bytes, 0.3 s each) is cut at --timeout, not allowed 30 s."""
    bad_server.mode = "trickle"
    client = start_service("client.py", "--once", "--url", bad_server.url, "--timeout", "1")
    assert client.proc.wait(10) == 1
    failed = client.events("poll_failed")[0]
    assert failed["reason"] == "timeout" and failed["ms"] < 5000, failed


def test_name_lookup_is_inside_the_deadline(monkeypatch):
    """A resolver that hangs (broken DNS) ends the poll at its deadline as a timeout."""
    client = import_client()
    real = socket.getaddrinfo

    def hanging(host, *args, **kwargs):
        if kwargs.get("flags") == socket.AI_NUMERICHOST:
            return real(host, *args, **kwargs)
        time.sleep(5)
        raise socket.gaierror(-2, "too late")

    monkeypatch.setattr(socket, "getaddrinfo", hanging)
    started = time.monotonic()
    with pytest.raises(client.PollError) as failed:
        client.poll("http://lab-slow-dns.invalid:8080/", 0.3)
    assert failed.value.reason == "timeout" and time.monotonic() - started < 2


def test_sigterm_ends_a_poll_in_progress(bad_server, start_service):
    bad_server.mode = "hang"
    client = start_service("client.py", "--url", bad_server.url, "--timeout", "60")
    wait_for(lambda: client.events("started"), 10, "the client's started line")
    time.sleep(0.3)  # let the poll reach the hanging server: the point is to stop mid-poll
    code, _ = client.stop(signal.SIGTERM)
    assert code == 0
    assert not client.events("poll_ok") and not client.events("poll_failed"), "the poll was not in progress"
    assert client.events("stopped"), client.events()


@pytest.mark.parametrize("args", [["--url", "http://[::1/"], ["--url", "http://127.0.0.1:abc/"],
                                  ["--url", "https://127.0.0.1/"], ["--interval", "nan"], ["--interval", "inf"],
                                  ["--timeout", "nan"], ["--retry-min", "0"], ["--bogus"]])
def test_bad_settings_exit_2_at_start(start_service, args):
    client = start_service("client.py", *args)
    assert client.proc.wait(10) == 2


def test_bad_settings_from_the_environment_exit_2_naming_it(tmp_path):
    import os
    import subprocess

    env = dict(os.environ, LAB_CLIENT_INTERVAL="soon")
    result = subprocess.run([sys.executable, str(FILES / "client.py"), "--once"], env=env, capture_output=True,
                            text=True, timeout=10, check=False)
    assert result.returncode == 2 and "LAB_CLIENT_INTERVAL" in result.stderr, result.stderr


def test_non_ascii_url_is_a_logged_failure_not_a_crash(start_service):
    url = "http://b\u00fccher.invalid/\u00e4?q=\u00f6"
    client = start_service("client.py", "--once", "--url", url, "--timeout", "5")
    assert client.proc.wait(30) == 1
    assert client.events("poll_failed")[0]["reason"] == "dns"


def test_deeply_nested_json_is_not_json(bad_server, start_service):
    bad_server.mode = "nested"
    client = start_service("client.py", "--once", "--url", bad_server.url)
    assert client.proc.wait(10) == 1
    assert client.events("poll_failed")[0]["reason"] in ("not_json",)


def test_concurrent_polls_by_name_all_succeed(server):
    """poll() from many threads at once (the benchmark's Swarm load does this): each lookup is its own."""
    import concurrent.futures

    client = import_client()
    url = f"http://localhost:{server[1]}/"
    with concurrent.futures.ThreadPoolExecutor(20) as pool:
        results = list(pool.map(lambda _: client.poll(url, 5.0)["status"], range(200)))
    assert results == [200] * 200
