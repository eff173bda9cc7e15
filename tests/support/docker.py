"""The container engine's CLI (docker or podman) for tests and the benchmark: a failure raises with the
engine's own words (process.CommandFailed). inspect, health_status and `engine` follow LAB_ENGINE (ENGINE:
tests/infra runs on either engine); the other helpers default to Docker, where the fault suite and the
benchmark run, and take the engine as an argument (the recipe comparison's Podman row)."""

from __future__ import annotations

import functools
import json
import os
import time

from benchmark import stats
from tests.support import process


def run(engine: str, *args: str, **kwargs) -> str:
    return process.sh(engine, *args, **kwargs)


# The engine this run's lab is on (LAB_ENGINE, as the inventory reads it).
ENGINE = os.environ.get("LAB_ENGINE") or "docker"
docker = functools.partial(run, "docker")
# The lab's engine CLI: docker or podman.
engine = functools.partial(run, ENGINE)


def inspect(container: str, engine: str = ENGINE) -> dict:
    return json.loads(run(engine, "inspect", container))[0]


def read_file(container: str, path: str, engine: str = "docker") -> str:
    """A file in the container; empty when it is not there (yet)."""
    return process.run(engine, "exec", container, "cat", path, check=False).stdout


def events(container: str, path: str, engine: str = "docker") -> list[dict]:
    """A service's JSON-lines log in the container."""
    return stats.parse_json_lines(read_file(container, path, engine))


def processes(container: str, engine: str = "docker") -> list[dict]:
    """The container's processes (user, pid, rss, args), without the ps that listed them."""
    rows = stats.parse_ps(run(engine, "exec", container, "ps", "-eo", "user=,pid=,rss=,args="))
    return [row for row in rows if not row["args"].startswith("ps ")]


def service_pid(container: str, role: str, engine: str = "docker") -> int | None:
    """The pid of the lab service (server or client) in the container, or None while it is not running."""
    return next((row["pid"] for row in processes(container, engine) if stats.role_of(row["args"]) == role), None)


def kill9_back_s(container: str, role: str, engine: str = "docker") -> float:
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
