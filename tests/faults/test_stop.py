"""docker stop: every service gets SIGTERM and exits cleanly, well before Docker's 10 s SIGKILL.

supervisord forwards SIGTERM to its programs (stopwaitsecs=5); systemd as PID 1 stops on
SIGRTMIN+3 and stops its units with SIGTERM (TimeoutStopSec=5); in split each service is PID 1 and
handles SIGTERM itself. The topology is started again afterwards.
"""

from __future__ import annotations

import tempfile
import time
from pathlib import Path

from benchmark import stats
from tests.support.docker import engine
from tests.support.process import wait_for
from tests.support.project import CLIENT_LOG, SERVER_LOG


def test_docker_stop_is_clean_for_every_service(topology):
    containers = topology.containers
    stop_asked = time.time()
    started = time.monotonic()
    engine("stop", "-t", "10", *containers, timeout=60)
    took = time.monotonic() - started
    try:
        assert took < 8, f"docker stop took {took:.1f}s: something waited for SIGKILL"
        with tempfile.TemporaryDirectory() as tmp:
            for container, path in ((topology.server, SERVER_LOG), (topology.client, CLIENT_LOG)):
                local = Path(tmp) / Path(path).name
                engine("cp", f"{container}:{path}", str(local))
                events = [e for e in stats.parse_json_lines(local.read_text())
                          if e.get("event") in ("stopping", "stopped") and stats.parse_ts(e["ts"]) >= stop_asked - 1]
                assert [e["event"] for e in events[-2:]] == ["stopping", "stopped"], f"{path}: {events}"
                assert events[-2]["signal"] == "SIGTERM", events[-2]
        for container in containers:
            state = engine("inspect", "-f", "{{.State.ExitCode}} {{.State.OOMKilled}}", container)
            assert state.split()[0] != "137", f"{container} was SIGKILLed ({state})"
    finally:
        restarted_at = time.time()
        engine("start", *containers)
        wait_for(lambda: topology.health(0.5), 60, "the server after docker start")
        wait_for(lambda: topology.client_ok_after(restarted_at), 30, "a client success after docker start")
