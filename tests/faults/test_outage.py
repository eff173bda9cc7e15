"""The server down for 30 s (stopped, not killed): the client logs failures with reasons, never
exits, and succeeds again within one poll interval (5 s) of the server's return."""

from __future__ import annotations

import time

from tests.support.docker import engine
from tests.support.process import wait_for
from tests.support.project import CLIENT_LOG

OUTAGE_S = 30
INTERVAL_S = 5


def client_identity(topology) -> str:
    """The client process, or in split the client container's start, which a crash would change."""
    if topology.manager == "none":
        return engine("inspect", "-f", "{{.State.StartedAt}} {{.RestartCount}}", topology.client)
    return str(topology.service_pid("client"))


def test_client_survives_a_30s_outage_and_recovers_within_an_interval(topology):
    before = client_identity(topology)
    stopped_at = time.time()
    topology.control("server", "stop")
    try:
        # The outage itself: 30 s during which the client must keep running.
        end = time.monotonic() + OUTAGE_S
        while time.monotonic() < end:
            assert client_identity(topology) == before, "the client exited during the outage"
            time.sleep(1)
    finally:
        topology.control("server", "start")
    back_at = wait_for(lambda: topology.health(0.5) and time.time(), 60, "the server back")
    failures = [e for e in topology.events(topology.client, CLIENT_LOG)
                if e.get("event") == "poll_failed" and e["ts"] >= time.strftime("%Y-%m-%dT%H:%M:%S",
                                                                                  time.gmtime(stopped_at))]
    assert failures, "no failure logged while the server was down"
    reasons = {e["reason"] for e in failures}
    assert reasons <= {"refused", "unreachable", "dns", "timeout", "closed"}, reasons
    assert all(e["detail"] for e in failures), "every failure names its cause"
    wait_for(lambda: topology.client_ok_after(back_at), INTERVAL_S + 2, "a success within one interval")
    assert client_identity(topology) == before, "the client restarted instead of riding out the outage"
