"""A changed setting reaches the running service under every manager.

The roles restart exactly the services whose script, settings or unit changed: supervisorctl
restart, systemctl restart, or, with no manager, a restart of the container. Runs the real
configure playbook with another poll interval, then restores it.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

from benchmark import stats
from tests.faults.conftest import CLIENT_LOG, ROOT, TOPOLOGIES, poll_until


def configure(*extra: str) -> str:
    env = dict(os.environ, ANSIBLE_CONFIG=str(ROOT / "ansible.cfg"), ANSIBLE_NOCOLOR="1")
    result = subprocess.run([str(Path(sys.executable).with_name("ansible-playbook")), "playbooks/configure.yml",
                             *extra], cwd=ROOT, env=env, capture_output=True, text=True, timeout=600, check=False)
    assert result.returncode == 0, result.stdout[-3000:]
    return result.stdout


def restarted_with_interval(topology, since: float, interval: float) -> bool:
    events = topology.events(topology.client, CLIENT_LOG)
    return any(e.get("event") == "started" and e.get("interval") == interval and stats.parse_ts(e["ts"]) >= since
               for e in events)


def test_changed_interval_restarts_every_client_with_it():
    changed_at = time.time()
    configure("-e", "lab_client_interval=4")
    try:
        for topology in TOPOLOGIES:
            poll_until(lambda t=topology: restarted_with_interval(t, changed_at, 4.0), 60,
                       f"{topology.name}: the client restarted with interval 4")
            poll_until(lambda t=topology: t.client_ok_after(changed_at), 30, f"{topology.name}: a success")
    finally:
        restored_at = time.time()
        configure()
        for topology in TOPOLOGIES:
            poll_until(lambda t=topology: restarted_with_interval(t, restored_at, 5.0), 60,
                       f"{topology.name}: the client back on interval 5")
