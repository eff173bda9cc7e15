"""Docker and Podman side by side in one run: each topology deployed on each engine by the lab's own
playbooks (LAB_ENGINE), then measured in place the same way on both: converge, stop and start of the
deployed containers, idle memory, latency, kill -9 recovery and posture. The main comparison (benchmark/run.py)
runs fresh containers from committed images on Docker; this one compares engines, not topologies."""

from __future__ import annotations

import argparse
import shutil
import time
from typing import Any

from benchmark import stats
from benchmark.lab import ansible, container_mem_mib, deploy_cost, probe, progress, stop_containers
from benchmark.run import measure_recovery
from tests.support import posture
from tests.support.docker import events, started_at
from tests.support.docker import run as engine_cli
from tests.support.http import json_or_none
from tests.support.process import at_once, wait_for
from tests.support.process import run as sh
from tests.support.project import CLIENT_LOG

ENGINES = ("docker", "podman")


def unavailable(engine: str) -> str | None:
    """Why the engine cannot be measured here, or None."""
    if shutil.which(engine) is None:
        return f"{engine} is not installed (scripts/lab bench installs podman as root on Debian/Ubuntu)"
    if sh(engine, "info", check=False, timeout=60).returncode:
        return f"{engine} info failed: no engine answers"
    return None


def clean_stop(stop: dict[str, Any]) -> bool:
    """Both services' logs were read after the stop (stop_containers) and each logged SIGTERM and a clean
    stop: a log that could not be read is not a clean stop."""
    services = stop["services"]
    return ({key.rsplit("/", 1)[1] for key in services} == {"server", "client"}
            and all(s["got_sigterm"] and s["exited_cleanly"] for s in services.values()))


def restart(topo: dict[str, Any], engine: str) -> dict[str, Any]:
    """Stop every container at once (timed, each service's SIGTERM checked), then start them at once: time to
    the server answering and to the client's first success, from the start command and from StartedAt."""
    stop = stop_containers(topo, engine)
    t0 = time.time()
    at_once(lambda c: engine_cli(engine, "start", c), topo["containers"])
    wait_for(lambda: json_or_none(f"http://127.0.0.1:{topo['port']}/healthz"), 60, "server answer", 0.01)
    t_server = time.time()
    t_client = wait_for(lambda: stats.first_event_after(events(topo["client"], CLIENT_LOG, engine), "poll_ok", t0),
                        60, "client success", 0.05)
    first = min(started_at(c, engine) for c in topo["containers"])
    return {"stop": stop, "server_s": t_server - t0, "client_s": t_client - t0,
            "client_from_started_at_s": t_client - first}


def measure(engine: str, name: str, topo: dict[str, Any], args: argparse.Namespace) -> dict[str, Any]:
    env = {"LAB_ENGINE": engine}
    progress(f"{engine}: {name}: deploying with the lab's roles")
    result: dict[str, Any] = {"deploy": deploy_cost(f"{engine} {name}", topo, env)}
    cycles = []
    for i in range(args.runs):
        cycles.append(restart(topo, engine))
        progress(f"{engine}: {name}: stop {cycles[-1]['stop']['stop_s']:.2f}s, start to the client's first "
                 f"success {cycles[-1]['client_s']:.2f}s ({i + 1}/{args.runs})")
    result["startup"] = {key: stats.summarize([c[key] for c in cycles])
                         for key in ("server_s", "client_s", "client_from_started_at_s")}
    result["stop_s"] = stats.summarize([c["stop"]["stop_s"] for c in cycles])
    result["stop_clean"] = all(clean_stop(c["stop"]) for c in cycles)
    time.sleep(3)  # idle: start-up work done, polls every 5 s
    result["memory_idle_mib"] = container_mem_mib(list(topo["containers"]), engine)
    lat = probe(topo["client"], "latency", topo["url"], str(args.requests), engine=engine)
    result["latency_ms"] = {**stats.summarize(lat["latency_ms"]), "failures": lat["failures"]}
    progress(f"{engine}: {name}: recovery after kill -9, {args.runs} times each")
    result["recovery_s"] = {role: stats.summarize(measure_recovery(topo, role, args.runs, engine))
                            for role in ("server", "client")}
    result["posture"] = posture.measure(list(topo["containers"]), engine)
    return result


def measure_engines(chosen: dict[str, dict[str, Any]], args: argparse.Namespace) -> dict[str, Any]:
    """{engine: {topology: measurements}}, or {engine: {"unavailable": why}}. The two engines' labs publish the
    same ports, so everything with the lab's label goes first (the teardown clears both engines, the topology
    comparison's containers too), and again after each engine is measured."""
    out: dict[str, Any] = {}
    ansible("playbooks/teardown.yml")
    for engine in args.engines:
        why = unavailable(engine)
        if why:
            progress(f"engine comparison: {why}")
            out[engine] = {"unavailable": why}
            continue
        try:
            out[engine] = {name: measure(engine, name, topo, args) for name, topo in chosen.items()}
        finally:
            ansible("playbooks/teardown.yml")
    return out
