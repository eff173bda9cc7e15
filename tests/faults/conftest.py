"""Fault injection against the lab deployed by site.yml (real containers, bounded in time).

Run by `scripts/lab test` after site.yml and before the teardown:
    pytest tests/faults
The topologies are read from the real inventory, so the tests follow its names and ports.
"""

from __future__ import annotations

import json
import sys
import urllib.request
from dataclasses import dataclass
from pathlib import Path

import pytest

from benchmark import run as bench
from benchmark import stats
from tests.conftest import sh, wait_for

ROOT = Path(__file__).resolve().parents[2]
CLIENT_LOG = "/var/log/lab/client.log"
SERVER_LOG = "/var/log/lab/server.log"


poll_until = wait_for


@dataclass
class Topology:
    name: str
    manager: str
    server: str
    client: str
    port: int

    def health(self, timeout: float = 1.0) -> dict | None:
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{self.port}/", timeout=timeout) as response:
                return json.loads(response.read())
        except (OSError, ValueError):
            return None

    def events(self, container: str, path: str) -> list[dict]:
        return stats.parse_json_lines(sh("docker", "exec", container, "cat", path, check=False))

    def client_ok_after(self, when: float) -> float | None:
        return stats.first_event_after(self.events(self.client, CLIENT_LOG), "poll_ok", when)

    def container(self, role: str) -> str:
        return self.server if role == "server" else self.client

    def service_pid(self, role: str) -> int | None:
        return bench.service_pid(self.container(role), role)

    def kill9(self, role: str) -> None:
        """A crash: SIGKILL to the service's process. In split the service is PID 1 of its container,
        which the kernel shields from signals sent inside it, so it is killed from the host."""
        container = self.container(role)
        if self.manager == "none":
            sh("kill", "-9", sh("docker", "inspect", "-f", "{{.State.Pid}}", container))
        else:
            pid = poll_until(lambda: self.service_pid(role), 10, f"{role} process")
            sh("docker", "exec", container, "kill", "-9", str(pid))

    def control(self, role: str, action: str) -> None:
        """start, stop or restart a service through whatever runs it (in split, its container)."""
        container = self.container(role)
        if self.manager == "supervisord":
            sh("docker", "exec", container, "supervisorctl", action, f"lab-{role}")
        elif self.manager == "systemd":
            sh("docker", "exec", container, "systemctl", action, f"lab-{role}")
        else:
            sh("docker", action, container, timeout=60)

    def manager_state(self, role: str) -> str:
        container = self.container(role)
        if self.manager == "supervisord":
            return sh("docker", "exec", container, "supervisorctl", "status", f"lab-{role}", check=False)
        if self.manager == "systemd":
            return sh("docker", "exec", container, "systemctl", "is-active", f"lab-{role}", check=False)
        return sh("docker", "inspect", "-f", "{{.State.Status}}", container)


def load_topologies() -> list[Topology]:
    ansible_inventory = str(Path(sys.executable).with_name("ansible-inventory"))
    inventory = json.loads(sh(ansible_inventory, "-i", str(ROOT / "inventory/lab/hosts.yml"), "--list"))
    hostvars = inventory["_meta"]["hostvars"]
    found = []
    for group in ("lab_supervisord_hosts", "lab_systemd_hosts", "lab_split_hosts"):
        hosts = inventory[group]["hosts"]
        server = next(h for h in hosts if h in inventory["lab_server_hosts"]["hosts"])
        client = next(h for h in hosts if h in inventory["lab_client_hosts"]["hosts"])
        hv = hostvars[server]
        found.append(Topology(hv["lab_topology"], hv["lab_manager"], server, client,
                              int(hv["lab_container_published_port"])))
    return found


TOPOLOGIES = load_topologies()


@pytest.fixture(params=TOPOLOGIES, ids=[t.name for t in TOPOLOGIES])
def topology(request) -> Topology:
    topo = request.param
    running = sh("docker", "ps", "--format", "{{.Names}}")
    missing = {topo.server, topo.client} - set(running.split())
    if missing:
        pytest.fail(f"the deployed lab is not running ({', '.join(sorted(missing))}); run ansible-playbook site.yml")
    poll_until(topo.health, 30, f"{topo.name} server answering")
    return topo
