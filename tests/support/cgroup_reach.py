"""What root in a container can write of the host's cgroup tree, measured with a real neighbour.

The probe (reach_probe.py) runs as root inside the container. It rewrites a neighbour container's CPU
and pids knobs with the values they have, creates a cgroup at the root of every hierarchy it sees from
the host's view, and checks whether each hierarchy's release_agent sits on a writable mount (never
writing it). A container that reaches nothing outside its own cgroup reports three empty lists.
"""

from __future__ import annotations

import contextlib
import json
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from tests.support.docker import docker, inspect

PROBE = Path(__file__).with_name("reach_probe.py")
LABEL = "container-topology-lab"


@dataclass(frozen=True)
class Reach:
    knobs_written: list[str]
    cgroups_created: list[str]
    release_agents_writable: list[str]

    @property
    def outside_own(self) -> bool:
        return bool(self.knobs_written or self.cgroups_created or self.release_agents_writable)

    @property
    def summary(self) -> str:
        """What the report's recipe table says root in the container can write."""
        if self.knobs_written:
            return "every container's cgroups"
        if self.cgroups_created or self.release_agents_writable:
            return "cgroups outside its own (no other container's knobs)"
        return "its own cgroup only"


def knob_paths(container: str) -> list[str]:
    """A container's CPU and pids knobs, at the paths a host-cgroup-namespace view shows them."""
    info = inspect(container)
    engine = json.loads(docker("info", "--format", "{{json .}}"))
    if engine.get("CgroupDriver") == "systemd":
        path = f"/{info['HostConfig'].get('CgroupParent') or 'system.slice'}/docker-{info['Id']}.scope"
    else:
        path = f"{info['HostConfig'].get('CgroupParent') or '/docker'}/{info['Id']}"
    if str(engine.get("CgroupVersion")) == "2":
        return [f"/sys/fs/cgroup{path}/cpu.weight", f"/sys/fs/cgroup{path}/pids.max"]
    return [f"/sys/fs/cgroup/cpu{path}/cpu.shares", f"/sys/fs/cgroup/pids{path}/pids.max"]


@contextlib.contextmanager
def neighbour(image: str = "lab-python:latest") -> Iterator[str]:
    """Another container on the same engine, removed afterwards."""
    name = docker("run", "-d", "--label", f"{LABEL}=probe", "--network", "none", "--entrypoint", "sleep", image,
                  "300")
    try:
        yield name
    finally:
        subprocess.run(["docker", "rm", "-f", name], capture_output=True, check=False)


def measure(container: str, neighbour_container: str) -> Reach:
    """Run the probe as root in `container` against `neighbour_container`'s knobs."""
    stdin = json.dumps({"knobs": knob_paths(neighbour_container)})
    script = PROBE.read_text()
    out = docker("exec", "-i", "-u", "0", container, "python3", "-c", script, stdin=stdin)
    return Reach(**json.loads(out))
