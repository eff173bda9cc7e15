"""Container restarts, and in split a replaced server container with a new IP address."""

from __future__ import annotations

import time

import pytest

from tests.support import ansible
from tests.support.docker import ENGINE, ENGINE_RUN_FLAGS, engine, inspect
from tests.support.process import wait_for
from tests.support.project import CLIENT_LOG, LABEL
from tests.support.topology import load_topologies

SPLIT = next(t for t in load_topologies() if t.manager == "none")


def test_container_restart_recovers(topology):
    restarted_at = time.time()
    engine("restart", *topology.containers, timeout=60)
    wait_for(lambda: topology.health(0.5), 60, "the server after the restart")
    wait_for(lambda: topology.client_ok_after(restarted_at), 30, "a client success after the restart")


def ip_of(container: str) -> str:
    return engine("inspect", "-f", "{{range .NetworkSettings.Networks}}{{.IPAddress}}{{end}}", container)


# The split topology's own test (it runs beside split's others, never at the same time: tests/faults/conftest.py).
@pytest.mark.parametrize("topology", [SPLIT], ids=[SPLIT.name], indirect=True)
def test_split_server_replaced_with_a_new_address(topology):
    network = engine("inspect", "-f", "{{range $k, $v := .NetworkSettings.Networks}}{{$k}}{{end}}",
                 topology.server)
    old_ip = ip_of(topology.server)
    image = inspect(topology.server)["Image"]
    engine("rm", "-f", topology.server)
    # Hold the freed address, so the replacement really gets another one.
    placeholder = "lab-faults-placeholder"
    engine("run", "-d", "--name", placeholder, "--label", f"{LABEL}=faults", "--network", network,
           *ENGINE_RUN_FLAGS.get(ENGINE, ()), "--entrypoint", "sleep", image, "infinity")
    try:
        replaced_at = time.time()
        result = ansible.playbook("playbooks/deploy.yml", "playbooks/configure.yml",
                                  "--limit", f"localhost:{topology.server}", timeout=300)
        assert result.returncode == 0, result.stdout[-3000:]
        new_ip = ip_of(topology.server)
        assert new_ip != old_ip, f"the replacement kept {old_ip}"
        since = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(replaced_at))
        try:
            # The client resolves the name at every poll, at most an interval apart; the network's DNS server
            # may lose a query while the engine reloads it: aardvark-dns before 1.11 (Debian 12 ships 1.4) drops
            # its listeners on every container start or stop (containers/aardvark-dns#389), and glibc waits 5 s
            # per attempt (a 10 s lookup was measured beside the other topologies' restarts). Hence a deadline
            # of several intervals.
            ok = wait_for(lambda: [e for e in topology.events(topology.client, CLIENT_LOG)
                                   if e.get("event") == "poll_ok" and e["ts"] >= since], 60,
                          "a client success from the replaced server")
        except TimeoutError as exc:
            seen = engine("exec", topology.client, "getent", "ahostsv4", topology.server, check=False)
            last = topology.events(topology.client, CLIENT_LOG)[-5:]
            raise AssertionError(f"{exc}; the server now at {new_ip}, the client's lookup gives {seen!r}, "
                                 f"its last events: {last}") from exc
        assert ok[-1]["server_hostname"] == topology.server
    finally:
        engine("rm", "-f", placeholder, check=False)
