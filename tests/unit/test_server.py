"""server.py as a real process: API, bad input over raw sockets, signals."""

from __future__ import annotations

import json
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request

import pytest

from tests.support.http import BAD_INPUT, get_json, raw, read_response, status_of
from tests.support.process import free_port, wait_for
from tests.support.project import FILES

SYSTEM_FIELDS = ("hostname", "os", "kernel", "python", "pid", "uptime_s", "load_average", "memory_total_kib",
                 "memory_available_kib", "cpu_count", "time_utc", "requests_served", "container")


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


@pytest.mark.parametrize("args", [
    ["--port", "70000"], ["--port", "abc"], ["--timeout", "0"], ["--timeout", "nan"], ["--timeout", "inf"],
    ["--grace", "-1"], ["--grace", "nan"], ["--max-connections", "0"], ["--log-file", "/nonexistent-dir/server.log"],
    ["--no-such-flag"], ["--port"]])
def test_bad_arguments_exit_2(start_service, args):
    assert start_service("server.py", *args).proc.wait(10) == 2


# ---- hostile clients and real load (each with the server as a real process) ----------------

def raise_fd_limit(wanted: int) -> None:
    import resource

    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < wanted:
        if hard != resource.RLIM_INFINITY and hard < wanted:
            pytest.fail(f"this test needs {wanted} descriptors; the hard limit is {hard}")
        resource.setrlimit(resource.RLIMIT_NOFILE, (wanted, hard))


def server_connections(service) -> int:
    """Client connections the server holds: its sockets less the listener and its signal wake-up pair."""
    import os

    fds = f"/proc/{service.proc.pid}/fd"
    return sum(os.readlink(f"{fds}/{fd}").startswith("socket:") for fd in os.listdir(fds)) - 3


def test_trickling_client_is_dropped_at_its_request_deadline(server):
    """One byte every 0.5 s resets no timer: the whole request has --timeout (1 s) to arrive."""
    _, port = server
    payload = b"GET /healthz HTTP/1.1\r\nX-Slow: " + b"a" * 40
    with socket.create_connection(("127.0.0.1", port), timeout=5) as sock:
        sent = 0
        try:
            for byte in payload:
                sock.sendall(bytes([byte]))
                sent += 1
                time.sleep(0.5)
        except (BrokenPipeError, ConnectionResetError):
            pass
        else:
            assert sock.recv(1) == b"", "the server kept a trickling request past its deadline"
    assert sent < len(payload) // 2, f"the trickle sent {sent} of {len(payload)} bytes before the server dropped it"


def test_1000_slow_senders_are_held_while_healthz_answers(start_service):
    # A request deadline longer than the test: with the fixture's 1 s the first senders could be dropped
    # (rightly) before the last one connects on a loaded machine.
    port = free_port()
    service = start_service("server.py", "--host", "127.0.0.1", "--port", str(port), "--timeout", "60")
    wait_for(lambda: get_json(f"http://127.0.0.1:{port}/healthz"), 10, "server /healthz")
    raise_fd_limit(4096)
    held = [socket.create_connection(("127.0.0.1", port)) for _ in range(1000)]
    try:
        for sock in held:
            sock.sendall(b"GET / HT")
        for _ in range(20):
            assert get_json(f"http://127.0.0.1:{port}/healthz") == {"status": "ok"}
        wait_for(lambda: server_connections(service) >= 1000, 5, "the server holding all 1000 connections")
    finally:
        for sock in held:
            sock.close()
    wait_for(lambda: server_connections(service) == 0, 10, "the server holding no connection")


def test_resets_leave_only_json_lines(server):
    import struct

    service, port = server
    for _ in range(200):
        sock = socket.create_connection(("127.0.0.1", port))
        sock.sendall(b"GET / HTTP/1.1\r\n\r\n")
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))  # close with RST
        sock.close()
    assert get_json(f"http://127.0.0.1:{port}/healthz") == {"status": "ok"}
    lines = service.log.read_text().splitlines()
    assert all(line.startswith("{") and line.endswith("}") for line in lines), \
        [line for line in lines if not line.startswith("{")][:5]


def test_keep_alive_has_no_nagle_stall(server):
    """Head and body leave in one write with TCP_NODELAY: Nagle plus delayed ACK would cost ~40 ms each."""
    _, port = server
    took = []
    with socket.create_connection(("127.0.0.1", port), timeout=5) as sock:
        for _ in range(100):
            started = time.perf_counter()
            sock.sendall(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
            head, _ = read_response(sock)
            took.append(time.perf_counter() - started)
            assert head.startswith(b"HTTP/1.1 200")
    took.sort()
    assert took[50] < 0.02, f"median keep-alive request took {took[50] * 1000:.1f} ms"


def test_http10_keep_alive_is_answered_keep_alive(server):
    _, port = server
    with socket.create_connection(("127.0.0.1", port), timeout=5) as sock:
        for _ in range(3):
            sock.sendall(b"GET /healthz HTTP/1.0\r\nConnection: keep-alive\r\n\r\n")
            head, body = read_response(sock)
            assert b"connection: keep-alive" in head.lower() and body == b'{"status":"ok"}'


def test_logged_latency_excludes_idle_keep_alive_time(start_service):
    port = free_port()
    service = start_service("server.py", "--host", "127.0.0.1", "--port", str(port), "--timeout", "5")
    wait_for(lambda: get_json(f"http://127.0.0.1:{port}/healthz"), 10, "server")
    with socket.create_connection(("127.0.0.1", port), timeout=5) as sock:
        sock.sendall(b"GET /nope HTTP/1.1\r\n\r\n")
        read_response(sock)
        time.sleep(1.0)  # idle on the kept connection: not part of the next request
        sock.sendall(b"GET /nope HTTP/1.1\r\n\r\n")
        read_response(sock)
    lines = wait_for(lambda: len(found := [e for e in service.events("request") if e["path"] == "/nope"]) == 2
                     and found, 5, "two access lines")
    assert lines[1]["ms"] < 500, lines[1]


def test_503_is_sent_after_the_head_and_rejections_are_summarised(start_service):
    port = free_port()
    service = start_service("server.py", "--host", "127.0.0.1", "--port", str(port), "--max-connections", "4")
    wait_for(lambda: get_json(f"http://127.0.0.1:{port}/healthz"), 10, "server")
    held = [socket.create_connection(("127.0.0.1", port)) for _ in range(4)]
    try:
        wait_for(lambda: status_of(raw(port, b"GET /healthz HTTP/1.1\r\n\r\n")) == 503, 5, "a 503 past the bound")
        for _ in range(50):  # a head with a body: the 503 arrives whole, the unread body causes no reset
            answer = raw(port, b"POST / HTTP/1.1\r\nContent-Length: 20000\r\n\r\n" + b"x" * 20000)
            assert status_of(answer) == 503 and answer.endswith(b'"status":503}'), answer[:200]
    finally:
        for sock in held:
            sock.close()
    wait_for(lambda: sum(line["rejected"] for line in service.events("connections_dropped")) >= 51, 5,
             "all 51 rejections counted in the dropped-connections summary")
    summary = service.events("connections_dropped")
    assert len(summary) <= 10, f"{len(summary)} summary lines for 51 rejections: one a second at most"


def test_request_without_version_gets_a_status_line(server):
    answer = raw(server[1], b"GET /\r\n\r\n")
    assert answer.startswith(b"HTTP/1.0 400 "), answer[:80]


def test_ipv6_listen_address(start_service):
    try:
        with socket.socket(socket.AF_INET6) as probe:
            probe.bind(("::1", 0))
    except OSError as exc:
        pytest.skip(f"no IPv6 loopback on this machine: {exc}")
    port = free_port()
    start_service("server.py", "--host", "::1", "--port", str(port))
    assert wait_for(lambda: raw(port, b"GET /healthz HTTP/1.0\r\n\r\n", host="::1"), 10, "an answer on [::1]") \
        .endswith(b'{"status":"ok"}')


def test_in_flight_request_finishes_on_stop(server):
    """SIGTERM mid-request: the request still gets its answer (with Connection: close), then exit 0."""
    service, port = server
    with socket.create_connection(("127.0.0.1", port), timeout=5) as sock:
        sock.sendall(b"GET /healthz HTTP/1.1\r\n")
        # Another request answered means the loop has passed over the first one's bytes.
        assert get_json(f"http://127.0.0.1:{port}/healthz") == {"status": "ok"}
        service.proc.send_signal(signal.SIGTERM)
        wait_for(lambda: service.events("stopping"), 5, "the stopping line")
        sock.sendall(b"\r\n")
        head, _ = read_response(sock)
    assert head.startswith(b"HTTP/1.1 200") and b"connection: close" in head.lower()
    assert service.proc.wait(5) == 0


def test_log_file_is_reopened_after_logrotate_moves_it(start_service, tmp_path):
    port = free_port()
    log = tmp_path / "server.log"
    start_service("server.py", "--host", "127.0.0.1", "--port", str(port), "--log-file", str(log))
    wait_for(lambda: get_json(f"http://127.0.0.1:{port}/healthz"), 10, "server")
    log.rename(tmp_path / "server.log.1")  # what logrotate does without copytruncate

    def logged_in_new_file() -> bool:
        get_json(f"http://127.0.0.1:{port}/healthz")
        return log.exists() and '"path":"/healthz"' in log.read_text()

    wait_for(logged_in_new_file, 10, "access lines in the reopened log file", step_s=0.2)
    assert '"event":"started"' in (tmp_path / "server.log.1").read_text()


def capped_server(start_service, tmp_path, backups: int) -> int:
    """A server logging to tmp_path/server.log, rotated past 4000 bytes; its port once it answers."""
    port = free_port()
    start_service("server.py", "--host", "127.0.0.1", "--port", str(port), "--log-file", str(tmp_path / "server.log"),
                  "--log-max-bytes", "4000", "--log-backups", str(backups))
    wait_for(lambda: get_json(f"http://127.0.0.1:{port}/healthz"), 10, "server")
    return port


def test_log_file_is_capped_by_the_server_itself(start_service, tmp_path):
    """--log-max-bytes: the file turns into .1, .2 past the size; no more than --log-backups are kept."""
    port = capped_server(start_service, tmp_path, backups=2)
    for _ in range(200):  # about 130 bytes a line: 26,000 bytes in all
        get_json(f"http://127.0.0.1:{port}/healthz")
    wait_for((tmp_path / "server.log.2").exists, 5, "two rotations")
    files = sorted(p.name for p in tmp_path.glob("server.log*"))
    assert files == ["server.log", "server.log.1", "server.log.2"], files
    sizes = {name: (tmp_path / name).stat().st_size for name in files}
    assert all(size <= 4000 for size in sizes.values()), sizes
    lines = [line for name in files for line in (tmp_path / name).read_text().splitlines()]
    assert all(line.startswith("{") and line.endswith("}") for line in lines)


def test_start_needs_no_name_lookup(tmp_path, free_udp_nameserver):
    """With a resolver that never answers (and no /etc/hosts), a name lookup at start would hang 20 s;
    the server answers at once. Run in a mount namespace of its own (root), so the machine's files stay."""
    import os
    import subprocess
    import sys

    from tests.support.project import FILES

    if os.geteuid() != 0:
        pytest.skip("a private /etc/resolv.conf needs root (unshare --mount)")
    resolv, hosts = tmp_path / "resolv.conf", tmp_path / "hosts"
    resolv.write_text(f"nameserver {free_udp_nameserver}\noptions timeout:10 attempts:2\n")
    hosts.write_text("")
    port = free_port()
    script = (f"mount --bind {resolv} /etc/resolv.conf && mount --bind {hosts} /etc/hosts && "
              f"exec {sys.executable} {FILES / 'server.py'} --host 127.0.0.1 --port {port}")
    proc = subprocess.Popen(["unshare", "--mount", "sh", "-c", script], stdout=subprocess.DEVNULL)
    try:
        assert wait_for(lambda: get_json(f"http://127.0.0.1:{port}/healthz"), 5, "an answer despite a silent resolver")
    finally:
        proc.terminate()
        proc.wait(10)


@pytest.fixture
def free_udp_nameserver():
    """An address whose port 53 takes queries and never answers."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sink:
        sink.bind(("127.0.0.77", 53))
        yield "127.0.0.77"


def test_log_rotation_under_load_loses_no_line(start_service, tmp_path):
    """20 clients at once while the file rotates every ~30 lines: every request is in exactly one file."""
    import concurrent.futures

    port = capped_server(start_service, tmp_path, backups=50)
    with concurrent.futures.ThreadPoolExecutor(20) as pool:
        list(pool.map(lambda i: get_json(f"http://127.0.0.1:{port}/?n={i}"), range(600)))

    def numbers() -> list[int]:
        found = []
        for path in tmp_path.glob("server.log*"):
            found += [int(line.split('"path":"/?n=')[1].split('"')[0]) for line in path.read_text().splitlines()
                      if '"path":"/?n=' in line]
        return sorted(found)

    wait_for(lambda: numbers() == list(range(600)), 5, "all 600 requests logged, once each")
    assert len(list(tmp_path.glob("server.log*"))) > 10, "the file should have rotated many times"


def test_a_stdout_nobody_reads_does_not_stop_the_server():
    """stdout is a pipe (journald, the engine's log pipe, supervisord): when its reader falls behind, the server
    keeps answering and the lines wait in a backlog, written in full once the reader catches up. With a
    blocking write the server stops at the first write the full pipe cannot take (64 KiB, ~400 lines)."""
    port = free_port()
    proc = subprocess.Popen([sys.executable, str(FILES / "server.py"), "--host", "127.0.0.1", "--port", str(port)],
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    try:
        wait_for(lambda: get_json(f"http://127.0.0.1:{port}/healthz"), 10, "server /healthz")
        requests = 2000  # about 300 KiB of access lines, nobody reading
        with socket.create_connection(("127.0.0.1", port), timeout=5) as sock:
            for _ in range(requests):
                sock.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
                head, _ = read_response(sock)
                assert head.startswith(b"HTTP/1.1 200")
        proc.send_signal(signal.SIGTERM)
        out, _ = proc.communicate(timeout=10)
    finally:
        proc.kill()
    lines = [json.loads(line) for line in out.splitlines()]
    assert sum(1 for e in lines if e["event"] == "request" and e["path"] == "/healthz") >= requests
    assert lines[-1]["event"] == "stopped" and lines[-1]["stdout_dropped_bytes"] == 0, lines[-1]
