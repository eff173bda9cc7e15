"""The three topologies as the lab's inventory deploys them (names, manager, published port), and what
the fault suite does to their services: read their logs, find, kill and control their processes."""

from __future__ import annotations

import functools
from dataclasses import dataclass

from benchmark import stats
from tests.support import ansible, docker
from tests.support.http import json_or_none
from tests.support.process import sh, wait_for
from tests.support.project import CLIENT_LOG


@dataclass
class Topology:
    name: str
    manager: str
    server: str
    client: str
    port: int  # published on 127.0.0.1
    url: str = "http://localhost:8080/"  # what the client polls
    network: str = ""  # the user-defined network of split, else the engine's default
    group: str = ""  # the inventory group of its hosts (lab_supervisord_hosts, ...)

    @property
    def containers(self) -> list[str]:
        """The server's container, then the client's when that is another one."""
        return list(dict.fromkeys((self.server, self.client)))

    def health(self, timeout: float = 1.0) -> dict | None:
        return json_or_none(f"http://127.0.0.1:{self.port}/", timeout)

    def events(self, container: str, path: str) -> list[dict]:
        return docker.events(container, path)

    def client_ok_after(self, when: float) -> float | None:
        return stats.first_event_after(self.events(self.client, CLIENT_LOG), "poll_ok", when)

    def container(self, role: str) -> str:
        return self.server if role == "server" else self.client

    def service_pid(self, role: str) -> int | None:
        return docker.service_pid(self.container(role), role)

    def kill9(self, role: str) -> None:
        """A crash: SIGKILL to the service's process. In split the service is PID 1 of its container,
        which the kernel shields from signals sent inside it, so it is killed from the host."""
        container = self.container(role)
        if self.manager == "none":
            sh("kill", "-9", str(docker.inspect(container)["State"]["Pid"]))
        else:
            pid = wait_for(lambda: self.service_pid(role), 10, f"{role} process")
            docker.engine("exec", container, "kill", "-9", str(pid))

    def control(self, role: str, action: str) -> None:
        """start, stop or restart a service through whatever runs it (in split, its container)."""
        container = self.container(role)
        if self.manager == "supervisord":
            docker.engine("exec", container, "supervisorctl", action, f"lab-{role}")
        elif self.manager == "systemd":
            docker.engine("exec", container, "systemctl", action, f"lab-{role}")
        else:
            docker.engine(action, container, timeout=60)

    def manager_state(self, role: str) -> str:
        container = self.container(role)
        if self.manager == "supervisord":
            return docker.engine("exec", container, "supervisorctl", "status", f"lab-{role}", check=False)
        if self.manager == "systemd":
            return docker.engine("exec", container, "systemctl", "is-active", f"lab-{role}", check=False)
        return docker.inspect(container)["State"]["Status"]


@functools.cache
def load_topologies() -> tuple[Topology, ...]:
    """Read once per run (ansible-inventory)."""
    inventory = ansible.inventory()
    hostvars = inventory["_meta"]["hostvars"]
    found = []
    for group in ("lab_supervisord_hosts", "lab_systemd_hosts", "lab_split_hosts"):
        hosts = inventory[group]["hosts"]
        server = next(h for h in hosts if h in inventory["lab_server_hosts"]["hosts"])
        client = next(h for h in hosts if h in inventory["lab_client_hosts"]["hosts"])
        hv = hostvars[server]
        found.append(Topology(hv["lab_topology"], hv["lab_manager"], server, client,
                              int(hv["lab_container_published_port"]),
                              hostvars[client].get("lab_client_url", Topology.url),
                              hv.get("lab_container_network", ""), group))
    return tuple(found)
