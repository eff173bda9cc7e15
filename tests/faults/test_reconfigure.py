"""A changed setting reaches the running service under every manager, and only that service restarts.

The roles restart exactly the services whose script, settings or unit changed: supervisorctl
restart, systemctl restart, or, with no manager, a restart of the container. Runs the real
configure playbook with another poll interval, then restores it; the server, whose settings did
not change, keeps its process (and, in split, its container) throughout.

On Podman only split is reconfigured (--limit): a restart by supervisorctl or systemctl happens inside
the container, the same on either engine and tested by the Docker pass; with no manager the restart is a
new container from a new image, which is the engine's (the run took 6 min on Podman for all three).
"""

from __future__ import annotations

import time

import pytest

from benchmark import stats
from tests.support import ansible
from tests.support.docker import ENGINE, engine
from tests.support.process import wait_for
from tests.support.project import CLIENT_LOG
from tests.support.topology import load_topologies


def under_test() -> list:
    """Every topology on Docker; on Podman the one whose restart goes through the engine (see above)."""
    return [t for t in load_topologies() if ENGINE == "docker" or t.manager == "none"]


def configure(*extra: str) -> str:
    limit = ":".join(t.group for t in under_test())
    result = ansible.playbook("playbooks/configure.yml", "--limit", limit, *extra, timeout=600)
    assert result.returncode == 0, result.stdout[-3000:]
    return result.stdout


def restarted_with_interval(topology, since: float, interval: float) -> bool:
    events = topology.events(topology.client, CLIENT_LOG)
    return any(e.get("event") == "started" and e.get("interval") == interval and stats.parse_ts(e["ts"]) >= since
               for e in events)


def server_identity(topology) -> tuple:
    """The server's process and its container's start: both stay when only the client's settings change."""
    pid = wait_for(lambda: topology.service_pid("server"), 10, f"{topology.name}: server process")
    return pid, engine("inspect", "-f", "{{.State.StartedAt}}", topology.server)


@pytest.mark.exclusive
def test_changed_interval_restarts_every_client_with_it_and_no_server():
    servers = {topology.name: server_identity(topology) for topology in under_test()}
    changed_at = time.time()
    configure("-e", "lab_client_interval=4")
    try:
        for topology in under_test():
            wait_for(lambda t=topology: restarted_with_interval(t, changed_at, 4.0), 60,
                       f"{topology.name}: the client restarted with interval 4")
            wait_for(lambda t=topology: t.client_ok_after(changed_at), 30, f"{topology.name}: a success")
            assert server_identity(topology) == servers[topology.name], \
                f"{topology.name}: the server restarted, though only the client's settings changed"
    finally:
        restored_at = time.time()
        configure()
        for topology in under_test():
            wait_for(lambda t=topology: restarted_with_interval(t, restored_at, 5.0), 60,
                       f"{topology.name}: the client back on interval 5")
