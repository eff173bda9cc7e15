"""The lab client: it runs, and its log shows polls answered by the right server."""

from __future__ import annotations

import itertools
from urllib.parse import urlsplit

from benchmark import stats
from tests.support.testinfra_host import (
    CLIENT_LOG,
    client_events,
    expected_server_hostname,
    host_vars,
    poll_until,
)

testinfra_hosts = ["ansible://lab_client_hosts"]


def test_client_log_shows_success_from_the_server(host):
    expected = expected_server_hostname(host)
    ok = poll_until(lambda: [e for e in client_events(host, "poll_ok") if e["server_hostname"] == expected],
                    30, f"poll_ok from {expected} in {CLIENT_LOG}")
    assert ok[-1]["status"] == 200


def test_client_reaches_the_server_its_url_names(host):
    """On localhost the server is this container; otherwise another one, found by Docker DNS."""
    server = expected_server_hostname(host)
    own = host.check_output("hostname")
    if urlsplit(host_vars(host).get("lab_client_url", "http://localhost/")).hostname == "localhost":
        assert server == own
    else:
        assert server != own, "a split client must poll another container"
        assert not host.file("/etc/hosts").contains(server), "the name must come from Docker DNS, not /etc/hosts"
        assert host.run(f"getent hosts {server}").rc == 0, f"{server} does not resolve"


def test_client_log_file_ownership(host):
    log = host.file(CLIENT_LOG)
    assert (log.user, log.group) == ("lab", "lab")


def last_clean_polls(host, count: int) -> list[dict] | None:
    """The last `count` successes if nothing failed between them (the client retries sooner after a failure)."""
    polls = client_events(host, "poll_ok")[-count:]
    clean = len(polls) == count and len({p["failed"] for p in polls}) == 1
    return polls if clean and polls[-1]["ok"] - polls[0]["ok"] == count - 1 else None


def test_client_polls_every_interval(host):
    """Consecutive successful polls come one interval apart (5 s unless lab_client_interval says otherwise)."""
    interval = float(host_vars(host).get("lab_client_interval", 5))
    polls = poll_until(lambda: last_clean_polls(host, 3), interval * 4, "three successful polls in a row")
    gaps = [stats.parse_ts(b["ts"]) - stats.parse_ts(a["ts"]) for a, b in itertools.pairwise(polls)]
    assert all(interval - 0.5 < gap < interval + 1.0 for gap in gaps), f"gaps between polls: {gaps}"
