"""What root in a container can write of the host's cgroup tree, measured with a real neighbour.

The probe (reach_probe.py) runs as root inside the container. It rewrites a neighbour container's CPU
and pids knobs with the values they have, creates a cgroup at the root of every hierarchy it sees from
the host's view, and checks whether each hierarchy's release_agent sits on a writable mount (never
writing it). A container that reaches nothing outside its own cgroup reports three empty lists.
"""

from __future__ import annotations

import contextlib
import json
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from tests.support import process
from tests.support.docker import ENGINE, ENGINE_RUN_FLAGS, inspect, run
from tests.support.project import LABEL

PROBE = Path(__file__).with_name("reach_probe.py")


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
            where = sorted({Path(p).parent.name for p in self.cgroups_created + self.release_agents_writable})
            return f"cgroups outside its own in the {', '.join(where)} hierarchy"
        return "its own cgroup only"

    def known_failure(self, recipe: str) -> str | None:
        """Why this reach is a known, narrow failure: Podman's --systemd=always on cgroup v1 creating
        cgroups in the host's name=systemd hierarchy, and nothing more (a knob, a release_agent or another
        hierarchy is not known). None when it is not that case."""
        if (recipe == "podman-systemd" and self.cgroups_created and not self.knobs_written
                and not self.release_agents_writable and all("/systemd/" in p for p in self.cgroups_created)):
            return (f"Podman's --systemd=always binds the host's whole name=systemd hierarchy read-write on "
                    f"cgroup v1: root in the container creates cgroups outside its own there ({self.cgroups_created})")
        return None


def knob_paths(container: str, engine: str = ENGINE) -> list[str]:
    """A container's CPU and pids knobs, at the paths a host-cgroup-namespace view shows them."""
    info = inspect(container, engine)
    if engine == "podman":  # cgroupfs manager (a host without systemd): /libpod_parent/libpod-<id>
        pid = info["State"]["Pid"]
        with open(f"/proc/{pid}/cgroup") as lines:
            cpu = next(line.split(":", 2)[2].strip() for line in lines if line.split(":")[1] in ("cpu", "cpu,cpuacct"))
        return [f"/sys/fs/cgroup/cpu{cpu}/cpu.shares", f"/sys/fs/cgroup/pids{cpu}/pids.max"]
    engine_info = json.loads(run(engine, "info", "--format", "{{json .}}"))
    if engine_info.get("CgroupDriver") == "systemd":
        path = f"/{info['HostConfig'].get('CgroupParent') or 'system.slice'}/docker-{info['Id']}.scope"
    else:
        path = f"{info['HostConfig'].get('CgroupParent') or '/docker'}/{info['Id']}"
    if str(engine_info.get("CgroupVersion")) == "2":
        return [f"/sys/fs/cgroup{path}/cpu.weight", f"/sys/fs/cgroup{path}/pids.max"]
    return [f"/sys/fs/cgroup/cpu{path}/cpu.shares", f"/sys/fs/cgroup/pids{path}/pids.max"]


@contextlib.contextmanager
def neighbour(image: str, engine: str = ENGINE) -> Iterator[str]:
    """Another container on the same engine (from an image it has), removed afterwards."""
    name = run(engine, "run", "-d", "--label", f"{LABEL}=probe", "--network", "none", "--entrypoint", "sleep",
               *ENGINE_RUN_FLAGS.get(engine, ()), image, "300")
    try:
        yield name
    finally:
        process.run(engine, "rm", "-f", name, check=False)


def measure_beside(container: str, engine: str = ENGINE) -> Reach:
    """The probe in `container` against a fresh neighbour run from the container's own image."""
    info = inspect(container, engine)
    with neighbour(info.get("ImageName") or info["Config"]["Image"], engine) as other:
        return measure(container, other, engine)


def measure(container: str, neighbour_container: str, engine: str = ENGINE) -> Reach:
    """Run the probe as root in `container` against `neighbour_container`'s knobs."""
    stdin = json.dumps({"knobs": knob_paths(neighbour_container, engine)})
    script = PROBE.read_text()
    out = run(engine, "exec", "-i", "-u", "0", container, "python3", "-c", script, stdin=stdin)
    return Reach(**json.loads(out))
