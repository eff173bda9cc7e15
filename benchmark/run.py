"""Measure the three topologies side by side in one run and write results/<timestamp>/.

Usage: python -m benchmark.run [--runs 5] [--requests 1000] [--load-seconds 5] [--out results]
Run through `scripts/lab bench`, which prepares the toolchain, engine, images and systemd mode.
Everything it creates carries the label container-topology-lab=bench and is removed at the end.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

from benchmark import load, stats
from benchmark.baseline import UNITS, baseline_cost
from benchmark.lab import (
    BENCH_LABEL,
    container_mem_mib,
    deploy_cost,
    deployed_flags,
    probe,
    progress,
    remove_lab_containers,
    remove_lab_leftovers,
    start_topology,
    stop_topology,
    topologies,
    wait_until,
)
from benchmark.swarm import measure_swarm
from tests.support import posture, recipes
from tests.support.docker import docker, inspect, kill9_back_s, processes, service_pid, started_at, unit_security
from tests.support.docker import events as container_events
from tests.support.docker import run as engine_cli
from tests.support.http import json_or_none as http_json
from tests.support.process import run as sh
from tests.support.project import (
    APP_DIR,
    CLIENT_LOG,
    LABEL,
    LOG_DIR,
    ROOT,
    SERVICE_NAMES,
    role_defaults,
)

# --- measurements per topology ------------------------------------------------------------------------------------

def server_sockets(container: str, pid: int) -> int:
    return int(docker("exec", container, "sh", "-c", f"find /proc/{pid}/fd -lname 'socket:*' | wc -l"))


def wrk_beside(container: str, netns: int, ref: load.Reference, connections: int, seconds: float, *,
               keep_alive: bool) -> dict[str, Any]:
    """wrk against a reference server started beside the lab server in its container, stopped afterwards."""
    docker("exec", "-d", container, *ref.command())
    try:
        load.wait_ready(netns, ref.port)
        return load.wrk(netns, f"http://127.0.0.1:{ref.port}/", connections, seconds, keep_alive=keep_alive)
    finally:
        docker("exec", container, "pkill", "-f", ref.mark, check=False)


def server_load(name: str, topo: dict[str, Any], args: argparse.Namespace) -> dict[str, Any]:
    """The server under load on its container's loopback, every generator a separate process (benchmark.load):
    20 connections, a connection per request, against the lab server and then a minimal stdlib server with
    the same backlog; keep-alive requests one after another; 1,000 slow senders with /healthz asked meanwhile."""
    netns = int(docker("inspect", "-f", "{{.State.Pid}}", topo["server"]))
    out: dict[str, Any] = {}
    progress(f"{name}: throughput, {args.threads} connections for {args.load_seconds}s (wrk, a connection per request)")
    sampled: dict[str, Any] = {}
    sampler = threading.Timer(args.load_seconds / 2, lambda: sampled.update(
        mem=container_mem_mib(list(topo["containers"])), rss=processes(topo["server"])))
    sampler.start()
    lab = load.wrk(netns, "http://127.0.0.1:8080/", args.threads, args.load_seconds, keep_alive=False)
    sampler.join()
    ref = wrk_beside(topo["server"], netns, load.MINIMAL, args.threads, args.load_seconds, keep_alive=False)
    out["throughput"] = {
        "lab_rps": lab["rps"], "minimal_rps": ref["rps"], "ratio_to_minimal": stats.ratio(lab["rps"], ref["rps"]),
        "lab_latency_ms": {"median": lab["p50_ms"], "p99": lab["p99_ms"], "max": lab["max_ms"]},
        "minimal_latency_ms": {"median": ref["p50_ms"], "p99": ref["p99_ms"], "max": ref["max_ms"]},
        "lab_failures": lab["errors"], "minimal_failures": ref["errors"], "connections": args.threads,
        "seconds": args.load_seconds, "generator": "wrk in the server container's network namespace"}
    out["memory_load_mib"] = sampled.get("mem", {})
    out["processes_under_load"] = sampled.get("rss", [])

    progress(f"{name}: keep-alive, one connection, requests one after another for {args.load_seconds}s")
    keep = load.wrk(netns, "http://127.0.0.1:8080/", 1, args.load_seconds, keep_alive=True)
    floor = wrk_beside(topo["server"], netns, load.FLOOR, 1, args.load_seconds, keep_alive=True)
    out["keep_alive_ms"] = {"median": keep["p50_ms"], "p99": keep["p99_ms"], "max": keep["max_ms"],
                            "requests": keep["requests"], "errors": keep["errors"],
                            "floor_median": floor["p50_ms"], "floor_p99": floor["p99_ms"]}

    progress(f"{name}: {args.slow_senders} slow senders (a byte a second) while /healthz is asked")
    pid = wait_until(lambda: service_pid(topo["server"], "server"), 30, "server process")
    before = server_sockets(topo["server"], pid)
    slow = load.slow_senders(netns, 8080, args.slow_senders, min(args.load_seconds, 8.0))
    after = wait_until(lambda: (n := server_sockets(topo["server"], pid)) <= before and n + 1, 30,
                       "the server's sockets back to where they were", 0.2) - 1
    out["slow_senders"] = {**slow, "server_sockets_before": before, "server_sockets_after": after,
                           "server_pid_unchanged": service_pid(topo["server"], "server") == pid}
    return out



# Docker's restart policy waits 100 ms before restarting a container and doubles the wait each time it dies
# again before it ran this long (seconds); a longer run resets the wait (moby's restartmanager).
DOCKER_BACKOFF_RESET_S = 10


def measure_recovery(topo: dict[str, Any], role: str, runs: int, engine: str = "docker") -> list[float]:
    """kill -9 the service; seconds until it serves again (server) or polls again (client). Each kill is a
    single crash: where the engine restarts the container (split on Docker), only once it has run long enough
    for the restart delay to be back at its first step, so the figure is not a crash loop's."""
    times = []
    container = topo["server"] if role == "server" else topo["client"]
    for _ in range(runs):
        if topo["manager"] == "none":
            if engine == "docker":
                ran = time.time() - started_at(container, engine)
                time.sleep(max(0.0, DOCKER_BACKOFF_RESET_S + 0.5 - ran))
            t0 = time.time()
            # The service is PID 1: a crash is its death seen from the host, then the engine's restart policy.
            sh("kill", "-9", str(inspect(container, engine)["State"]["Pid"]))
        else:
            pid = wait_until(lambda c=container: service_pid(c, role, engine), 10, f"{role} pid", 0.05)
            t0 = time.time()
            engine_cli(engine, "exec", container, "kill", "-9", str(pid))
        if role == "server":
            # A server answering with an uptime shorter than the time since the kill is the new one
            # (in split the server is PID 1 of its container, so its pid does not change).
            def restarted(start: float = t0) -> bool:
                body = http_json(f"http://127.0.0.1:{topo['port']}/", 0.5)
                return bool(body) and body["uptime_s"] < time.time() - start
            wait_until(restarted, 30, "server back", 0.005)
            times.append(time.time() - t0)
        else:
            times.append(wait_until(lambda c=container, start=t0: stats.first_poll_of_restarted_client(
                container_events(c, CLIENT_LOG, engine), start), 30, "client polling again", 0.05) - t0)
        # Let the restarted service settle so the next kill is not a start-up kill.
        time.sleep(1.2)
    return times


# A unit with systemd's defaults, started transiently, as the reference for the lab's hardened units.
DEFAULTS_UNIT = "lab-bench-defaults.service"


def unit_exposure(topo: dict[str, Any]) -> dict[str, Any] | None:
    """`systemd-analyze security` exposure of the lab's units and of a unit with systemd's defaults."""
    if topo["manager"] != "systemd":
        return None
    container = topo["server"]
    docker("exec", container, "systemd-run", "--quiet", "--collect", "--unit", DEFAULTS_UNIT, "sleep", "infinity")
    try:
        defaults, _ = unit_security(container, DEFAULTS_UNIT, "docker")
    finally:
        docker("exec", container, "systemctl", "stop", DEFAULTS_UNIT)
    # What counts against each unit, so a score that moves between runs can be traced to a check.
    measured = {unit: unit_security(container, unit, "docker") for unit in UNITS}
    return {"units": {unit: score for unit, (score, _) in measured.items()}, "defaults": defaults,
            "checks_against": {unit: checks for unit, (_, checks) in measured.items()}}


def log_streams(topo: dict[str, Any]) -> dict[str, Any]:
    """Where each service's lines can be read, and whether one place mixes them."""
    docker_logs = {c: sh("docker", "logs", c, check=False) for c in topo["containers"]}
    found = {}
    for container, result in docker_logs.items():
        text = result.stdout + result.stderr
        found[container] = {"server_lines": text.count('"event":"request"'), "client_lines": text.count('"poll_ok"')}
    mixed = any(v["server_lines"] and v["client_lines"] for v in found.values())
    names = SERVICE_NAMES.values()
    commands = {"supervisord": [f"docker exec C supervisorctl tail {name}" for name in names],
                "systemd": [f"docker exec C journalctl -u {name}" for name in names],
                "none": [f"docker logs {c}" for c in topo["containers"]]}[topo["manager"]]
    if topo["manager"] == "supervisord":
        files = docker("exec", topo["server"], "ls", role_defaults("supervisord")["supervisord_log_dir"]).split()
        separate = all(f"{name}.log" in files for name in names)
    elif topo["manager"] == "systemd":
        server_unit = docker("exec", topo["server"], "journalctl", "-u", SERVICE_NAMES["server"], "-o", "cat",
                             "--no-pager")
        separate = '"poll_ok"' not in server_unit and '"event":"request"' in server_unit
    else:
        separate = not mixed and all(v["server_lines"] or v["client_lines"] for v in found.values())
    return {"docker_logs": found, "docker_logs_mixes_services": mixed, "streams_separate": separate,
            "commands": commands, "config_lines": config_lines(topo)}


# Where each manager keeps a service's configuration; split's is the container's run options (no file).
SERVICE_CONFIG = {"supervisord": "/etc/supervisor/conf.d/{}.conf", "systemd": "/etc/systemd/system/{}.service"}


def config_lines(topo: dict[str, Any]) -> dict[str, int]:
    """Lines of configuration (no comments, no blanks) the manager needs per service, as deployed."""
    pattern = SERVICE_CONFIG.get(topo["manager"])
    if pattern is None:
        return {}
    lines = {}
    for service in SERVICE_NAMES.values():
        text = docker("exec", topo["server"], "cat", pattern.format(service))
        kept = [line for line in map(str.strip, text.splitlines()) if line and not line.startswith(("#", ";"))]
        lines[service] = len(kept)
    return lines


def scale_clients(name: str, topo: dict[str, Any], images: dict[str, str], extra: int = 2) -> dict[str, Any]:
    """Two more clients against the one server: cost in memory, whether they all succeed, and whether the server
    was left alone (same process before and after)."""
    server_pid = service_pid(topo["server"], "server")
    scaled = add_clients(topo, images, extra)
    untouched = server_pid is not None and service_pid(topo["server"], "server") == server_pid
    return {**scaled, "server_untouched": untouched}


def add_clients(topo: dict[str, Any], images: dict[str, str], extra: int) -> dict[str, Any]:
    if topo["manager"] == "none":
        names = [f"lab-split-client-{i}" for i in range(2, 2 + extra)]
        t0 = time.time()
        for container in names:
            docker("run", "-d", "--name", container, "--hostname", container, "--label", BENCH_LABEL,
                   "--network", topo["network"], *topo["containers"][topo["client"]], images[topo["client"]])
        for container in names:
            wait_until(lambda c=container: stats.first_event_after(
                container_events(c, CLIENT_LOG), "poll_ok", t0), 30, "extra client success", 0.1)
        time.sleep(1)
        mem = container_mem_mib(names)
        sh("docker", "rm", "-fv", *names, check=False)
        return {"extra_clients": extra, "added_mib": sum(mem.values()), "per_client_mib": sum(mem.values()) / extra,
                "added_containers": extra}
    before = container_mem_mib([topo["client"]])[topo["client"]]
    for i in range(extra):
        docker("exec", "-d", topo["client"], "setpriv", "--reuid=lab", "--regid=lab", "--init-groups",
               "python3", f"{APP_DIR}/client.pyc", "--url", topo["url"],
               "--log-file", f"{LOG_DIR}/client-extra{i}.log")
    for i in range(extra):
        wait_until(lambda i=i: stats.first_event_after(container_events(
            topo["client"], f"{LOG_DIR}/client-extra{i}.log"), "poll_ok", 0), 30, "extra client success", 0.1)
    time.sleep(1)
    after = container_mem_mib([topo["client"]])[topo["client"]]
    docker("exec", topo["client"], "pkill", "-f", "client-extra")
    return {"extra_clients": extra, "added_mib": after - before, "per_client_mib": (after - before) / extra,
            "added_containers": 0}


def measure_topology(name: str, topo: dict[str, Any], images: dict[str, str], args: argparse.Namespace) -> dict:
    result: dict[str, Any] = {"containers": len(topo["containers"]), "manager": topo["manager"]}
    result["image_mib"] = {c: int(docker("image", "inspect", "-f", "{{.Size}}", img)) / 2**20
                           for c, img in images.items()}
    # The engine's own floor: docker run of a container that does nothing.
    floor = []
    for _ in range(args.runs):
        t0 = time.monotonic()
        docker("run", "--rm", "--label", BENCH_LABEL, "--entrypoint", "/bin/true", images[topo["server"]])
        floor.append(time.monotonic() - t0)
    result["docker_run_floor_s"] = stats.summarize(floor)
    starts = []
    for i in range(args.runs):
        starts.append(start_topology(topo, images))
        progress(f"{name}: start {i + 1}/{args.runs}: server {starts[-1]['server_s']:.2f}s, "
                 f"client's first success {starts[-1]['client_s']:.2f}s")
    result["startup"] = {key: stats.summarize([s[key] for s in starts]) for key in starts[0]}
    result["startup_raw"] = starts

    time.sleep(3)  # idle: start-up work done, polls every 5 s
    result["memory_idle_mib"] = container_mem_mib(list(topo["containers"]))
    result["processes"] = {c: processes(c) for c in topo["containers"]}

    progress(f"{name}: latency, {args.requests} requests with the client's code")
    lat = probe(topo["client"], "latency", topo["url"], str(args.requests))
    result["latency_ms"] = {**stats.summarize(lat["latency_ms"]), "failures": lat["failures"]}
    result["latency_raw"] = lat["latency_ms"]

    result.update(server_load(name, topo, args))

    progress(f"{name}: recovery after kill -9, {args.runs} times each")
    result["recovery_s"] = {role: stats.summarize(times := measure_recovery(topo, role, args.runs)) | {"raw": times}
                            for role in ("server", "client")}
    progress(f"{name}: scale, two more clients")
    result["scale"] = scale_clients(name, topo, images)
    result["posture"] = posture.measure(list(topo["containers"]))
    result["unit_exposure"] = unit_exposure(topo)
    result["logs"] = log_streams(topo)
    progress(f"{name}: docker stop")
    result["stop"] = stop_topology(topo)
    return result


def machine() -> dict[str, Any]:
    info = json.loads(docker("info", "--format", "{{json .}}"))
    return {"cores": os.cpu_count(), "kernel": platform.release(), "engine": info.get("ServerVersion"),
            "storage_driver": info.get("Driver"), "cgroup_version": info.get("CgroupVersion"),
            "cgroup_driver": info.get("CgroupDriver"), "base_image": base_image(),
            "podman": sh("podman", "--version", check=False).stdout.strip() if shutil.which("podman") else None}


def base_image() -> str:
    """What the lab images were built on: the setting, or the label the local base build left on them."""
    labels = json.loads(docker("image", "inspect", "-f", "{{json .Config.Labels}}", "lab-python:latest")) or {}
    return os.environ.get("LAB_BASE_IMAGE") or labels.get(f"{LABEL}.source", "ubuntu:22.04 (pulled)")


# --- systemd's cgroup recipes, side by side --------------------------------------------------------------------

def measure_recipes(args: argparse.Namespace) -> list[dict[str, Any]]:
    """Each systemd recipe deployed by the lab's playbooks (inventory/recipes) and measured the same way:
    boot state, kill -9, what root can write, docker stop, posture. A refused recipe is a row with the
    engine's reason."""
    rows = []
    try:
        for recipe in recipes.RECIPES:
            progress(f"systemd recipe {recipe}: deploying")
            run = recipes.deploy(recipe)
            row: dict[str, Any] = {"recipe": recipe, "engine": run.engine, "refusal": run.refusal}
            if run.runs:
                c, engine = run.container, run.engine
                topo = {"containers": {c: []}}
                row["state"] = engine_cli(engine, "exec", c, "systemctl", "is-system-running")
                row["failed_units"] = engine_cli(engine, "exec", c, "systemctl", "--failed", "--no-legend",
                                                 "--plain").splitlines()
                row["kill9_back_s"] = {role: stats.summarize([kill9_back_s(c, role, engine) for _ in range(args.runs)])
                                       for role in ("server", "client")}
                row["posture"] = posture.measure([c], engine)[c]
                row["stop"] = stop_topology(topo, engine)
            rows.append(row)
    finally:
        recipes.remove()
    return rows


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=5, help="repetitions of each timing (default 5)")
    parser.add_argument("--requests", type=int, default=1000, help="sequential requests for latency (default 1000)")
    parser.add_argument("--threads", type=int, default=20, help="concurrent connections for throughput (default 20)")
    parser.add_argument("--slow-senders", type=int, default=1000,
                        help="connections sending a byte a second while /healthz is asked (default 1000)")
    parser.add_argument("--load-seconds", type=float, default=5.0, help="seconds of load (default 5)")
    parser.add_argument("--out", type=Path, default=ROOT / "results", help="results directory")
    parser.add_argument("--only", nargs="*", choices=["single", "systemd", "split"], help="topologies to measure")
    parser.add_argument("--swarm-max-replicas", type=int, default=3,
                        help="scale section: server replicas on Swarm from 1 to this (default 3; 0 skips it)")
    parser.add_argument("--engines", nargs="*", default=["docker", "podman"], choices=["docker", "podman"],
                        help="engine comparison: the topologies deployed and measured on each (default both; "
                             "none skips it)")
    parser.add_argument("--engines-only", action="store_true",
                        help="only the engine comparison (not the topology comparison, recipes or Swarm)")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if shutil.which("docker") is None or sh("docker", "info", check=False).returncode:
        print("bench: error: no Docker engine answers; run scripts/lab bench, which starts one", file=sys.stderr)
        return 2
    try:
        load.require_tools()
    except load.ToolMissing as exc:
        print(f"bench: error: {exc}", file=sys.stderr)
        return 2

    started = time.time()
    out_dir = args.out / time.strftime("%Y%m%dT%H%M%SZ", time.gmtime())
    results: dict[str, Any] = {"machine": machine(), "settings": vars(args) | {"out": str(args.out)},
                               "started": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()), "topologies": {}}
    chosen = {k: v for k, v in topologies().items() if not args.only or k in args.only}
    remove_lab_containers()
    with tempfile.TemporaryDirectory() as tmp:
        try:
            images = {}
            compared = {} if args.engines_only else chosen  # the topology comparison's
            for name, topo in compared.items():
                progress(f"{name}: deploying with the lab's roles")
                cost = deploy_cost(name, topo)
                topo["containers"] = {c: deployed_flags(c) for c in topo["containers"]}
                results["topologies"][name] = {"deploy": cost}
                for container in topo["containers"]:
                    images[container] = f"lab-bench-{container}:latest"
                    docker("commit", "--change", f"LABEL {BENCH_LABEL}", container, images[container])
                cost.update(baseline_cost(name, topo, Path(tmp)))
                cost["converge_to_baseline_ratio"] = stats.ratio(cost["converge_cold_s"], cost["baseline_total_s"])
            for name, topo in compared.items():
                topo_images = {c: images[c] for c in topo["containers"]}
                results["topologies"][name].update(measure_topology(name, topo, topo_images, args))
            if "systemd" in compared:
                results["systemd_recipes"] = measure_recipes(args)
            if args.swarm_max_replicas > 0 and compared:
                results["swarm"] = measure_swarm(args)
            if args.engines:
                from benchmark import engines  # it imports this module

                results["engines"] = engines.measure_engines(
                    {name: topo for name, topo in topologies().items() if name in chosen}, args)
        finally:
            remove_lab_leftovers()
    results["duration_s"] = time.time() - started
    out_dir.mkdir(parents=True, exist_ok=True)
    (out_dir / "results.json").write_text(json.dumps(results, indent=2))
    progress(f"results in {out_dir}/results.json ({results['duration_s']:.0f}s)")
    from benchmark import report  # matplotlib is imported only once there is something to draw

    report.write(results, out_dir)
    progress(f"report in {out_dir}/report.md")
    return 0


if __name__ == "__main__":
    sys.exit(main())
