"""The client log loses no line across a service restart and across a logrotate-style move."""

from __future__ import annotations

import time

from benchmark import stats
from tests.support.docker import engine
from tests.support.process import wait_for
from tests.support.project import CLIENT_LOG


def gaps(events: list[dict]) -> list[str]:
    """Within one client process (between 'started' lines) every poll adds one to ok+failed."""
    found, last = [], None
    for event in events:
        if event.get("event") == "started":
            last = 0
        elif event.get("event") in ("poll_ok", "poll_failed") and last is not None:
            count = event["ok"] + event["failed"]
            if count != last + 1:
                found.append(f"{event['ts']}: count {count} after {last}")
            last = count
    return found


def test_no_line_lost_across_restart_and_rotation(topology):
    restarted_at = time.time()
    topology.control("client", "restart")
    wait_for(lambda: topology.client_ok_after(restarted_at), 30, "a success after the client restart")
    engine("exec", topology.client, "mv", CLIENT_LOG, CLIENT_LOG + ".1")
    rotated_at = time.time()
    wait_for(lambda: topology.client_ok_after(rotated_at), 30, "a success logged to the new file")
    events = topology.events(topology.client, CLIENT_LOG + ".1") + topology.events(topology.client, CLIENT_LOG)
    assert stats.first_event_after(events, "started", restarted_at), "the restart wrote no 'started' line"
    assert stats.first_event_after(events, "stopped", restarted_at - 1), "the old client did not stop cleanly"
    assert not gaps(events), gaps(events)
    engine("exec", topology.client, "rm", "-f", CLIENT_LOG + ".1")
