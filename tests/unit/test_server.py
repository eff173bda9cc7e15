"""server.py as a real process: API, bad input over raw sockets, signals."""

from __future__ import annotations

import signal
import socket
import time
import urllib.error
import urllib.request

import pytest

from tests.conftest import free_port, get_json, wait_for

SYSTEM_FIELDS = ("hostname", "os", "kernel", "python", "pid", "uptime_s", "load_average", "memory_total_kib",
                 "memory_available_kib", "cpu_count", "time_utc", "requests_served", "container")


def raw(port: int, payload: bytes, timeout: float = 3.0) -> bytes:
    """Send raw bytes, return everything the server answers before closing."""
    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as sock:
        sock.sendall(payload)
        chunks = []
        while chunk := sock.recv(65536):
            chunks.append(chunk)
    return b"".join(chunks)


def status_of(response: bytes) -> int:
    return int(response.split(b" ", 2)[1])


def test_root_reports_system_info(server):
    service, port = server
    body = get_json(f"http://127.0.0.1:{port}/")
    missing = [field for field in SYSTEM_FIELDS if field not in body]
    assert not missing, f"GET / lacks {missing}: {body}"
    assert body["pid"] == service.proc.pid


def test_requests_served_counts_up(server):
    _, port = server
    first = get_json(f"http://127.0.0.1:{port}/")["requests_served"]
    assert get_json(f"http://127.0.0.1:{port}/")["requests_served"] == first + 1


def test_healthz(server):
    assert get_json(f"http://127.0.0.1:{server[1]}/healthz") == {"status": "ok"}


@pytest.mark.parametrize(("method", "path", "status"), [("GET", "/nope", 404), ("POST", "/", 405),
                                                        ("DELETE", "/healthz", 405), ("HEAD", "/healthz", 200)])
def test_status_codes_are_json(server, method, path, status):
    request = urllib.request.Request(f"http://127.0.0.1:{server[1]}{path}", method=method)
    try:
        with urllib.request.urlopen(request, timeout=2) as response:
            code, ctype = response.status, response.headers["Content-Type"]
    except urllib.error.HTTPError as exc:
        code, ctype = exc.code, exc.headers["Content-Type"]
    assert (code, ctype) == (status, "application/json")


def test_one_log_line_per_request(server):
    service, port = server
    get_json(f"http://127.0.0.1:{port}/healthz")
    line = wait_for(lambda: [e for e in service.events("request") if e["path"] == "/healthz"], 5, "request log")
    assert line[-1]["status"] == 200 and line[-1]["method"] == "GET"


BAD_INPUT = {
    "malformed request line": (b"GARBAGE\r\n\r\n", 400),
    "bad version": (b"GET / HTTP/9.x\r\n\r\n", 400),
    "non-utf8 bytes": (b"GET /\xff\xfe HTTP/1.1\r\nHost: x\r\n\r\n", 404),
    "oversized request line": (b"GET /" + b"a" * 70000 + b" HTTP/1.1\r\n\r\n", 414),
    "oversized header": (b"GET / HTTP/1.1\r\nX: " + b"a" * 70000 + b"\r\n\r\n", 431),
    "too many headers": (b"GET / HTTP/1.1\r\n" + b"".join(b"X%d: y\r\n" % i for i in range(150)) + b"\r\n", 431),
    "body with POST": (b"POST / HTTP/1.1\r\nContent-Length: 1000000\r\n\r\n" + b"x" * 5000, 405),
}


@pytest.mark.parametrize("case", sorted(BAD_INPUT))
def test_bad_input_gets_4xx_and_server_keeps_answering(server, case):
    _, port = server
    payload, expected = BAD_INPUT[case]
    assert status_of(raw(port, payload)) == expected
    assert get_json(f"http://127.0.0.1:{port}/healthz") == {"status": "ok"}


def test_silent_client_is_dropped_after_timeout(server):
    _, port = server  # the fixture starts the server with --timeout 1
    with socket.create_connection(("127.0.0.1", port), timeout=5) as sock:
        started = time.monotonic()
        assert sock.recv(1) == b"", "server should close a silent connection"
        assert time.monotonic() - started < 4
    assert get_json(f"http://127.0.0.1:{port}/healthz") == {"status": "ok"}


def test_200_slow_clients_do_not_block_others(server):
    _, port = server
    held = [socket.create_connection(("127.0.0.1", port)) for _ in range(200)]
    try:
        for sock in held:
            sock.sendall(b"GET / HTTP/1.1\r\n")  # headers never finished
        assert get_json(f"http://127.0.0.1:{port}/healthz") == {"status": "ok"}
    finally:
        for sock in held:
            sock.close()


def test_connection_flood_is_bounded_with_503(start_service):
    port = free_port()
    start_service("server.py", "--host", "127.0.0.1", "--port", str(port), "--max-connections", "8")
    wait_for(lambda: get_json(f"http://127.0.0.1:{port}/healthz"), 10, "server")
    held = [socket.create_connection(("127.0.0.1", port)) for _ in range(8)]
    try:
        wait_for(lambda: status_of(raw(port, b"GET /healthz HTTP/1.1\r\n\r\n")) == 503, 5, "a 503 past the bound")
    finally:
        for sock in held:
            sock.close()
    wait_for(lambda: get_json(f"http://127.0.0.1:{port}/healthz"), 5, "service after the flood")


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT])
def test_signal_stops_cleanly_within_2s(server, sig):
    service, port = server
    idle = socket.create_connection(("127.0.0.1", port))  # an open keep-alive must not hold the stop
    try:
        code, took = service.stop(sig)
    finally:
        idle.close()
    assert code == 0
    assert took < 2.0, f"stop took {took:.2f}s"
    assert service.events("stopped"), "no 'stopped' log line"


def test_port_in_use_exits_3(server, start_service):
    other = start_service("server.py", "--host", "127.0.0.1", "--port", str(server[1]))
    assert other.proc.wait(10) == 3
    assert other.events("bind_failed")


@pytest.mark.parametrize("args", [["--port", "70000"], ["--port", "abc"], ["--timeout", "0"],
                                  ["--log-file", "/nonexistent-dir/server.log"]])
def test_bad_arguments_exit_2(start_service, args):
    assert start_service("server.py", *args).proc.wait(10) == 2
