"""The container engine's CLI (docker or podman) for tests and the benchmark: a failure raises with the
engine's own words (process.CommandFailed). Every helper acts on the lab's engine (ENGINE, from LAB_ENGINE,
as the inventory reads it) unless given another (the recipe comparison's Podman row)."""

from __future__ import annotations

import functools
import json
import os
import time

from benchmark import stats
from tests.support import process
from tests.support.project import ROOT, role_yaml


def run(engine: str, *args: str, **kwargs) -> str:
    return process.sh(engine, *args, **kwargs)


# The engine this run's lab is on (LAB_ENGINE, as the inventory reads it).
ENGINE = os.environ.get("LAB_ENGINE") or "docker"
docker = functools.partial(run, "docker")
# The lab's engine CLI: docker or podman.
engine = functools.partial(run, ENGINE)
# Podman's ulimits, from the role that owns them (its default open-files limit is above some hosts' hard
# limit): what a container the tests start themselves needs on each engine.
PODMAN_ULIMITS = role_yaml(ROOT / "roles/lab_container/vars/main.yml")["__lab_container_podman_ulimits"]
ENGINE_RUN_FLAGS = {"podman": tuple(flag for limit in PODMAN_ULIMITS for flag in ("--ulimit", limit))}


def inspect(container: str, engine: str = ENGINE) -> dict:
    """The container's inspect. --type container: a bare name also matches an image of that name (the
    lab's images are called lab-systemd, lab-split-server, ...), which must be "no such container"."""
    return json.loads(run(engine, "inspect", "--type", "container", container))[0]


def started_at(container: str, engine: str = ENGINE) -> float:
    """The engine's StartedAt (RFC 3339 in its JSON, on both engines), to the millisecond, as epoch seconds."""
    return stats.parse_ts(inspect(container, engine)["State"]["StartedAt"][:23] + "Z")


def read_file(container: str, path: str, engine: str = ENGINE) -> str:
    """A file in the container; empty when it is not there (yet)."""
    return process.run(engine, "exec", container, "cat", path, check=False).stdout


def events(container: str, path: str, engine: str = ENGINE) -> list[dict]:
    """A service's JSON-lines log in the container."""
    return stats.parse_json_lines(read_file(container, path, engine))


def processes(container: str, engine: str = ENGINE) -> list[dict]:
    """The container's processes (stats.parse_ps: pid, ppid, user, rss_mib, started, args), without the ps
    that listed them. What is exec'd into the container from outside, that ps too, has ppid 0, as PID 1."""
    rows = stats.parse_ps(run(engine, "exec", container, "ps", "-eo", stats.PS_COLUMNS))
    return [row for row in rows if not (row["ppid"] == 0 and row["args"].startswith("ps -eo "))]


def unit_security(container: str, unit: str, engine: str = ENGINE) -> tuple[float, dict[str, float]]:
    """A systemd unit's overall exposure in the container and the checks that count against it
    (systemd-analyze security <unit>, stats.parse_unit_security)."""
    return stats.parse_unit_security(run(engine, "exec", container, "systemd-analyze", "security", "--no-pager",
                                         unit))


def service_pid(container: str, role: str, engine: str = ENGINE) -> int | None:
    """The pid of the lab service (server or client) in the container, or None while it is not running."""
    return next((row["pid"] for row in processes(container, engine) if stats.role_of(row["args"]) == role), None)


def kill9_back_s(container: str, role: str, engine: str = ENGINE) -> float:
    """kill -9 a systemd service; seconds until a new process runs and systemd reports it active."""
    before = process.wait_for(lambda: service_pid(container, role, engine), 10, f"{role} pid", 0.05)
    t0 = time.time()
    run(engine, "exec", container, "kill", "-9", str(before))
    process.wait_for(lambda: service_pid(container, role, engine) not in (None, before) and process.sh(
        engine, "exec", container, "systemctl", "is-active", f"lab-{role}", check=False) == "active",
        30, f"{role} back", 0.02)
    return time.time() - t0


def health_status(container: str, engine: str = ENGINE) -> str | None:
    """healthy or unhealthy once the engine's health check has run; None while it is starting. Podman
    schedules its checks with systemd timers, which a host without systemd does not run, so on Podman
    the check is run once here, through the engine (podman healthcheck run), before it is read."""
    if engine == "podman":
        process.run(engine, "healthcheck", "run", container, check=False)
    health = inspect(container, engine)["State"].get("Health") or {}
    return health.get("Status") if health.get("Status") in ("healthy", "unhealthy") else None


# What the lab's roles choose for a container, in the engine's inspect; the rest (ids, dates, state,
# published ports, which a Molecule container leaves out so as not to clash with the lab's) is the engine's.
RUN_OPTIONS = {
    "Config": ("User", "Entrypoint", "Cmd", "Healthcheck", "Labels", "StopSignal"),
    "HostConfig": ("Memory", "PidsLimit", "CpuShares", "CapAdd", "CapDrop", "SecurityOpt", "ReadonlyRootfs",
                   "Tmpfs", "RestartPolicy", "LogConfig", "Privileged", "CgroupnsMode", "CgroupParent", "Binds",
                   "Ulimits", "Init", "Devices"),
}
# Sets the engine lists in no fixed order (Podman's binds come from a map).
UNORDERED = ("Binds", "CapAdd", "CapDrop", "SecurityOpt")


def run_options(info: dict, label: str, names: dict[str, str]) -> dict:
    """The options a container runs with (RUN_OPTIONS), from its inspect, with what names it masked: the
    scope label's value (site, molecule), lab_harden's content hash, and every name in `names` ({its own
    name: placeholder}, its network, ...), so that two containers run by the same role for the same
    topology compare equal."""
    found = {section: {key: info.get(section, {}).get(key) for key in keys} for section, keys in RUN_OPTIONS.items()}
    for key in UNORDERED:
        found["HostConfig"][key] = sorted(found["HostConfig"][key] or [])
    labels = dict(found["Config"]["Labels"] or {})
    labels[label] = "<scope>" if label in labels else None
    # lab_harden's hash of what the roles wrote, which holds names (the client's URL): its bookkeeping.
    labels.pop(f"{label}.config", None)
    found["Config"]["Labels"] = labels
    # Podman reports where it keeps the log, a path with the container's id.
    found["HostConfig"]["LogConfig"] = {key: value for key, value in (found["HostConfig"]["LogConfig"] or {}).items()
                                        if key != "Path"}
    found["Mounts"] = sorted((m.get("Type"), m.get("Name", m.get("Source")), m.get("Destination"), m.get("RW"))
                             for m in info.get("Mounts", []))
    found["Networks"] = sorted((info.get("NetworkSettings", {}).get("Networks") or {}).keys())
    text = json.dumps(found, sort_keys=True)
    for name, placeholder in sorted(names.items(), key=lambda item: -len(item[0])):
        text = text.replace(name, placeholder)
    return json.loads(text)
