"""kill -9 of the server, then of the client, three times in a row, under every manager.

Each time the service must come back and the client must log successes again; the manager must
not end in a permanent failure (supervisord FATAL, systemd's start-rate limit, Docker giving up).
Settings that make this hold: supervisord startretries=100; systemd Restart=always with
StartLimitIntervalSec=0 and RestartSec=200ms; Docker restart policy unless-stopped.
"""

from __future__ import annotations

import time

import pytest

from benchmark import stats
from tests.support.process import wait_for
from tests.support.project import CLIENT_LOG


@pytest.mark.parametrize("role", ["server", "client"])
def test_three_kills_in_a_row_recover(topology, role):
    for attempt in range(1, 4):
        killed_at = time.time()
        topology.kill9(role)
        if role == "server":
            wait_for(lambda t=killed_at: (body := topology.health(0.5)) and body["uptime_s"] < time.time() - t,
                       30, f"a restarted server after kill {attempt}")
            wait_for(lambda t=killed_at: topology.client_ok_after(t), 30, f"a client success after kill {attempt}")
        else:
            wait_for(lambda t=killed_at: stats.first_poll_of_restarted_client(
                topology.events(topology.client, CLIENT_LOG), t), 30,
                f"a restarted client polling after kill {attempt}")
    wait_for(lambda: any(word in topology.manager_state(role) for word in ("RUNNING", "active", "running"))
               and "inactive" not in topology.manager_state(role), 30, f"{role} reported running by its manager")
