"""Fixtures for the lab's tests (services as real processes) and the caveats hook; the helpers are in tests/support."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from tests.support.http import get_json
from tests.support.logs import json_lines
from tests.support.process import free_port, wait_for
from tests.support.project import FILES


def pytest_runtest_logreport(report: pytest.TestReport) -> None:
    """Every skipped test, and every known failure (xfail), is a caveat of the run: scripts/lab lists them at
    the end (LAB_CAVEATS), and LAB_STRICT=1 fails the run on them."""
    caveats = os.environ.get("LAB_CAVEATS")
    if caveats and report.skipped:
        if hasattr(report, "wasxfail"):
            line = f"{report.nodeid}: fails as known: {report.wasxfail.removeprefix('reason: ')}"
        else:
            reason = report.longrepr[2] if isinstance(report.longrepr, tuple) else str(report.longrepr)
            line = f"{report.nodeid}: skipped: {reason.removeprefix('Skipped: ')}"
        with open(caveats, "a") as out:
            out.write(line + "\n")


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
