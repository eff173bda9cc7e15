"""Shared helpers for the lab's tests: real processes, free ports, deadline polling."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TypeVar

import pytest

ROOT = Path(__file__).resolve().parent.parent
FILES = ROOT / "files"
T = TypeVar("T")


def sh(*args: str, check: bool = True, timeout: float = 120) -> str:
    """Run a command (docker, mostly); its stdout. A failure fails the test with the command's stderr."""
    result = subprocess.run(list(args), capture_output=True, text=True, timeout=timeout, check=False)
    if check and result.returncode:
        raise AssertionError(f"{' '.join(args)} failed: {result.stderr.strip() or result.stdout[-2000:]}")
    return result.stdout.strip()


def pytest_runtest_logreport(report: pytest.TestReport) -> None:
    """Every skipped test is a caveat of the run: scripts/lab lists them at the end (LAB_CAVEATS)."""
    caveats = os.environ.get("LAB_CAVEATS")
    if caveats and report.skipped:
        reason = report.longrepr[2] if isinstance(report.longrepr, tuple) else str(report.longrepr)
        with open(caveats, "a") as out:
            out.write(f"{report.nodeid}: skipped: {reason.removeprefix('Skipped: ')}\n")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def wait_for(check: Callable[[], T], deadline_s: float, what: str, step_s: float = 0.05) -> T:
    """Poll `check` until it returns something truthy; fail with `what` at the deadline."""
    end = time.monotonic() + deadline_s
    last: object = None
    while time.monotonic() < end:
        try:
            result = check()
        except (OSError, ValueError) as exc:
            last = exc
        else:
            if result:
                return result
            last = result
        time.sleep(step_s)
    pytest.fail(f"timed out after {deadline_s}s waiting for {what} (last: {last!r})")


def get_json(url: str, timeout: float = 2.0) -> dict:
    with urllib.request.urlopen(url, timeout=timeout) as response:
        return json.loads(response.read())


def json_lines(path: Path) -> list[dict]:
    if not path.exists():
        return []
    return [json.loads(line) for line in path.read_text().splitlines() if line.startswith("{")]


class Service:
    """A lab service started as a real subprocess, stdout captured to a file."""

    def __init__(self, script: str, args: list[str], tmp_path: Path, name: str) -> None:
        self.log = tmp_path / f"{name}.stdout"
        self._out = self.log.open("w")
        self.proc = subprocess.Popen([sys.executable, str(FILES / script), *args],
                                     stdout=self._out, stderr=subprocess.STDOUT)

    def events(self, name: str | None = None) -> list[dict]:
        return [line for line in json_lines(self.log) if name is None or line["event"] == name]

    def stop(self, sig: int = 15, deadline_s: float = 5.0) -> tuple[int, float]:
        started = time.monotonic()
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
        code = self.proc.wait(deadline_s)
        self._out.close()
        return code, time.monotonic() - started

    def kill(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(5)
        self._out.close()


@pytest.fixture
def start_service(tmp_path: Path) -> Iterator[Callable[..., Service]]:
    started: list[Service] = []

    def start(script: str, *args: str, name: str | None = None) -> Service:
        service = Service(script, list(args), tmp_path, name or f"{Path(script).stem}{len(started)}")
        started.append(service)
        return service

    yield start
    for service in started:
        service.kill()


@pytest.fixture
def server(start_service: Callable[..., Service]) -> Iterator[tuple[Service, int]]:
    port = free_port()
    service = start_service("server.py", "--host", "127.0.0.1", "--port", str(port), "--timeout", "1")
    wait_for(lambda: get_json(f"http://127.0.0.1:{port}/healthz"), 10, "server /healthz")
    yield service, port
