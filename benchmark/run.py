"""Measure the three topologies side by side in one run and write results/<timestamp>/.

Usage: python -m benchmark.run [--runs 5] [--requests 1000] [--load-seconds 5] [--out results]
Run through `scripts/lab bench`, which prepares the toolchain, engine, images and systemd mode.
Everything it creates carries the label container-topology-lab=bench and is removed at the end.
"""

from __future__ import annotations

import argparse
import concurrent.futures
import json
import os
import platform
import re
import shutil
import sys
import tempfile
import threading
import time
from pathlib import Path, PurePosixPath
from typing import Any

from benchmark import load, stats
from tests.support import ansible as support_ansible
from tests.support import posture, recipes
from tests.support.docker import docker, inspect, kill9_back_s, processes, service_pid, started_at
from tests.support.docker import events as container_events
from tests.support.docker import run as engine_cli
from tests.support.http import json_or_none as http_json
from tests.support.process import run as sh
from tests.support.process import wait_for
from tests.support.project import CLIENT_LOG, LABEL, ROOT, SERVER_LOG
from tests.support.topology import load_topologies

LOGS = {"server": SERVER_LOG, "client": CLIENT_LOG}
LOG_DIR = str(PurePosixPath(CLIENT_LOG).parent)


def wait_until(check, deadline_s: float, what: str, step_s: float = 0.01):
    """wait_for polling every 10 ms unless told otherwise: the benchmark's timings."""
    return wait_for(check, deadline_s, what, step_s)


BENCH_LABEL = f"{LABEL}=bench"
PROBE = (Path(__file__).parent / "probe.py").read_text()


def topologies() -> dict[str, dict[str, Any]]:
    """The three topologies as the inventory deploys them (names, ports, URL, network). Each container's run
    flags are read from the deployed container (deployed_flags) before its image is measured."""
    return {t.name: {"manager": t.manager, "port": t.port, "server": t.server, "client": t.client, "url": t.url,
                     "network": t.network, "group": t.group, "containers": {c: [] for c in t.containers}}
            for t in load_topologies()}


def progress(message: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


def ansible(*args: str, env: dict[str, str] | None = None) -> tuple[float, str]:
    """ansible-playbook (tests/support/ansible.py runs it); seconds taken and its output. Fails loudly."""
    started = time.monotonic()
    result = support_ansible.playbook(*args, env=env)
    if result.returncode:
        detail = (result.stderr.strip() or result.stdout.strip())[-1500:]
        raise RuntimeError(f"ansible-playbook {' '.join(args[:3])}... failed ({result.returncode}): {detail}")
    return time.monotonic() - started, result.stdout


def changed_total(recap: str) -> int:
    return sum(int(part.split("=")[1]) for line in recap.splitlines() if " : ok=" in line
               for part in line.split() if part.startswith("changed="))


# --- deployment cost -------------------------------------------------------------------------------------------

def remove_lab_leftovers() -> None:
    """Everything the lab and the benchmark created: containers, networks, volumes, the bench's images."""
    remove_lab_containers()
    for kind in ("network", "volume"):
        found = docker(kind, "ls", "-q", "--filter", f"label={LABEL}").split()
        if found:
            sh("docker", kind, "rm", *found, check=False)
    leftover = docker("images", "-q", "--filter", f"label={BENCH_LABEL}").split()
    if leftover:
        sh("docker", "rmi", "-f", *set(leftover), check=False)
    # The systemd containers' cgroup parents (own-slice recipe): the teardown knows where they are.
    ansible("playbooks/teardown.yml", "-e", "lab_teardown_scope=bench")


def remove_lab_containers() -> None:
    ids = docker("ps", "-aq", "--filter", f"label={LABEL}").split()
    if ids:
        docker("rm", "-fv", *ids)


def deploy_cost(name: str, topo: dict[str, Any], env: dict[str, str] | None = None) -> dict[str, Any]:
    """The topology deployed by the lab's playbooks, then again (nothing to change): seconds and changes."""
    playbooks = ["playbooks/deploy.yml", "playbooks/configure.yml", "playbooks/verify.yml"]
    limit = f"localhost:{topo['group']}"
    cold, _ = ansible(*playbooks, "--limit", limit, env=env)
    warm, out = ansible(*playbooks, "--limit", limit, env=env)
    progress(f"{name}: converge cold {cold:.1f}s, warm {warm:.1f}s")
    return {"converge_cold_s": cold, "converge_warm_s": warm, "warm_changed": changed_total(out)}


BASELINE_FILES = {
    "supervisord": ["/opt/lab", "/etc/lab", "/etc/supervisor/supervisord.conf", "/etc/supervisor/conf.d",
                    "/usr/local/sbin/supervisord-waker"],
    "systemd": ["/opt/lab", "/etc/lab", "/etc/systemd/system/lab-server.service",
                "/etc/systemd/system/lab-client.service"],
    "none": ["/opt/lab", "/etc/lab"],
}
# The image each topology's containers start from, packages included, as the roles start from it too.
BASELINE_BASE = {"supervisord": "lab-supervisord:latest", "systemd": "lab-systemd:latest", "none": "lab-python:latest"}


def baseline_cost(name: str, topo: dict[str, Any], workdir: Path) -> dict[str, Any]:
    """The same content as a hand-written Dockerfile: build (no cache) and run to the first client success."""
    build_s = 0.0
    images = {}
    for container in topo["containers"]:
        context = workdir / f"baseline-{container}"
        context.mkdir()
        for path in BASELINE_FILES[topo["manager"]]:
            target = context / path.lstrip("/")
            target.parent.mkdir(parents=True, exist_ok=True)
            docker("cp", f"{container}:{path}", str(target))
        base = BASELINE_BASE[topo["manager"]]
        enable = "RUN systemctl enable lab-server.service lab-client.service\n" if topo["manager"] == "systemd" else ""
        if topo["manager"] == "none":  # what lab_harden's image has: the service as the entrypoint, as lab
            check = json.loads(docker("inspect", container))[0]["Config"]["Healthcheck"]["Test"][1:]
            enable = ("RUN chgrp lab /etc/lab/*.env\n"  # docker cp drops the group the service reads them by
                      f"USER lab\nENTRYPOINT [\"/etc/lab/init\"]\nCMD []\n"
                      "HEALTHCHECK --interval=10s --timeout=3s --retries=3 --start-period=5s "
                      f"CMD {json.dumps(check)}\n")
        (context / "Dockerfile").write_text(
            f"FROM {base}\n"
            "RUN groupadd --system lab && useradd --system --gid lab --home-dir /opt/lab --shell /usr/sbin/nologin lab"
            " && install -d -o lab -g lab -m 0750 /var/log/lab\n"
            "COPY opt/ /opt/\nCOPY etc/ /etc/\n" + enable)
        image = f"lab-baseline-{container}:latest"
        started = time.monotonic()
        sh("docker", "build", "--no-cache", "--label", BENCH_LABEL, "-t", image, str(context),
           env=dict(os.environ, DOCKER_BUILDKIT="0"), timeout=900)
        build_s += time.monotonic() - started
        images[container] = image
    remove_containers(topo)  # the Ansible-built ones: files copied, image committed
    # The baseline's files are in its image: its volumes start from it, not from the deployment's.
    run = start_topology({**topo, "containers": {c: anonymous_volumes(f) for c, f in topo["containers"].items()}},
                         images, fresh=False)
    stop_topology(topo)
    progress(f"{name}: Dockerfile baseline build {build_s:.1f}s + run to first poll {run['client_s']:.2f}s")
    return {"baseline_build_s": build_s, "baseline_run_to_client_s": run["client_s"],
            "baseline_total_s": build_s + run["client_s"]}


# --- running topologies from images -------------------------------------------------------------------------------

def start_topology(topo: dict[str, Any], images: dict[str, str], fresh: bool = True) -> dict[str, float]:
    """docker run every container at once (as compose up does); time to the server answering and to the
    client's first success, from the first docker run and from the engine's earliest StartedAt."""
    if fresh:
        remove_containers(topo)
    network = topo.get("network")

    def run(container: str, flags: list[str]) -> None:
        port = ["-p", f"127.0.0.1:{topo['port']}:8080"] if container == topo["server"] else []
        net = ["--network", network] if network else []
        docker("run", "-d", "--name", container, "--hostname", container, "--label", BENCH_LABEL, *net, *port,
               *flags, images[container])

    t0 = time.time()
    with concurrent.futures.ThreadPoolExecutor(len(topo["containers"])) as pool:
        for started in [pool.submit(run, c, f) for c, f in topo["containers"].items()]:
            started.result()
    first_started = min(started_at(c, "docker") for c in topo["containers"])
    wait_until(lambda: http_json(f"http://127.0.0.1:{topo['port']}/healthz"), 60, "server answer")
    t_server = time.time()
    t_client = wait_until(lambda: stats.first_event_after(
        container_events(topo["client"], CLIENT_LOG), "poll_ok", t0), 60, "client success", 0.05)
    return {"server_s": t_server - t0, "client_s": t_client - t0, "client_from_started_at_s": t_client - first_started}


def remove_containers(topo: dict[str, Any], engine: str = "docker") -> None:
    sh(engine, "rm", "-fv", *topo["containers"], check=False)  # -v: the split containers' log volumes


def deployed_flags(container: str) -> list[str]:
    """The run flags the inventory gave a deployed container, to run its committed image the same way
    (limits, hardening, systemd's mounts and mode). Health check, user, entrypoint, environment and stop
    signal travel in the image: docker commit keeps the container's config. A named volume the roles wrote
    configuration to (under a read-only root) is mounted again by name, since docker commit leaves volumes
    out; the services' log directory (split's volume) becomes an anonymous volume, labelled, and removed
    with the container, so that extra clients started with the same flags keep logs of their own."""
    info = json.loads(docker("inspect", container))[0]
    host = info["HostConfig"]
    flags = ["--restart", host["RestartPolicy"]["Name"] or "no"]
    flags += ["--privileged"] if host["Privileged"] else []
    flags += [f"--cgroupns={host['CgroupnsMode']}"] if host.get("CgroupnsMode") == "host" else []
    flags += [f"--cgroup-parent={host['CgroupParent']}"] if host.get("CgroupParent") else []
    flags += [f"--cpu-shares={host['CpuShares']}"] if host.get("CpuShares") else []
    flags += [f"--volume={bind}" for bind in host.get("Binds") or []]
    flags += ["--read-only"] if host["ReadonlyRootfs"] else []
    flags += [f"--cap-add={cap}" for cap in host.get("CapAdd") or []]
    flags += [f"--cap-drop={cap}" for cap in host.get("CapDrop") or []]
    flags += [f"--security-opt={opt}" for opt in host.get("SecurityOpt") or []]
    flags += [f"--memory={host['Memory']}"] if host.get("Memory") else []
    flags += [f"--pids-limit={host['PidsLimit']}"] if host.get("PidsLimit") else []
    tmpfs = (host.get("Tmpfs") or {}).items()
    flags += [f"--tmpfs={path}:{opts}" if opts else f"--tmpfs={path}" for path, opts in tmpfs]
    for mount in (m for m in info["Mounts"] if m["Type"] == "volume"):
        source = "" if mount["Destination"] == LOG_DIR else f"source={mount['Name']},"
        flags.append(f"--mount=type=volume,{source}destination={mount['Destination']},volume-label={BENCH_LABEL}")
    return flags


def anonymous_volumes(flags: list[str]) -> list[str]:
    """The same flags with every volume anonymous: filled from the image it runs, removed with the container."""
    return [re.sub(r"(--mount=type=volume,)source=[^,]*,", r"\1", flag) for flag in flags]


def stop_topology(topo: dict[str, Any], engine: str = "docker") -> dict[str, Any]:
    """Stop the topology's containers (stop_containers), then remove them."""
    result = stop_containers(topo, engine)
    remove_containers(topo, engine)
    return result


def stop_containers(topo: dict[str, Any], engine: str = "docker") -> dict[str, Any]:
    """`<engine> stop` of every container at once: seconds, exit codes, and whether each service logged
    SIGTERM and a clean stop."""
    started = time.monotonic()
    threads = [threading.Thread(target=sh, args=(engine, "stop", "-t", "10", c), kwargs={"check": False})
               for c in topo["containers"]]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    took = time.monotonic() - started
    result: dict[str, Any] = {"stop_s": took, "exit_codes": {}, "services": {}}
    with tempfile.TemporaryDirectory() as tmp:
        for container in topo["containers"]:
            result["exit_codes"][container] = int(engine_cli(engine, "inspect", "-f", "{{.State.ExitCode}}",
                                                             container))
            for service in ("server", "client"):
                dest = Path(tmp) / f"{container}-{service}.log"
                if sh(engine, "cp", f"{container}:{LOGS[service]}", str(dest), check=False).returncode:
                    continue
                events = stats.parse_json_lines(dest.read_text())
                last = [e["event"] for e in events if e.get("event") in ("started", "stopping", "stopped")][-2:]
                result["services"][f"{container}/{service}"] = {
                    "got_sigterm": last[:1] == ["stopping"] and "SIGTERM" in json.dumps(events[-3:]),
                    "exited_cleanly": last == ["stopping", "stopped"]}
    return result


def container_mem_mib(containers: list[str], engine: str = "docker") -> dict[str, float]:
    out = engine_cli(engine, "stats", "--no-stream", "--format", "{{.Name}}\t{{.MemUsage}}", *containers)
    return {line.split("\t")[0]: stats.parse_docker_stats_mem(line.split("\t")[1]) for line in out.splitlines()}


def probe(container: str, *args: str, timeout: float = 300, engine: str = "docker") -> dict:
    return json.loads(sh(engine, "exec", "-i", container, "python3", "-", *args, stdin=PROBE,
                         timeout=timeout).stdout)


# --- measurements per topology ------------------------------------------------------------------------------------

def server_sockets(container: str, pid: int) -> int:
    return int(docker("exec", container, "sh", "-c", f"find /proc/{pid}/fd -lname 'socket:*' | wc -l"))


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
    docker("exec", "-d", topo["server"], "python3", "-c", load.MINIMAL_SERVER, "8081")
    try:
        load.wait_ready(netns, 8081)
        ref = load.wrk(netns, "http://127.0.0.1:8081/", args.threads, args.load_seconds, keep_alive=False)
    finally:
        docker("exec", topo["server"], "pkill", "-f", load.MINIMAL_MARK, check=False)
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
    out["keep_alive_ms"] = {"median": keep["p50_ms"], "p99": keep["p99_ms"], "max": keep["max_ms"],
                            "requests": keep["requests"], "errors": keep["errors"]}

    progress(f"{name}: {args.slow_senders} slow senders (a byte a second) while /healthz is asked")
    pid = wait_until(lambda: service_pid(topo["server"], "server"), 30, "server process")
    before = server_sockets(topo["server"], pid)
    slow = load.slow_senders(netns, 8080, args.slow_senders, min(args.load_seconds, 8.0))
    after = wait_until(lambda: (n := server_sockets(topo["server"], pid)) <= before and n + 1, 30,
                       "the server's sockets back to where they were", 0.2) - 1
    out["slow_senders"] = {**slow, "server_sockets_before": before, "server_sockets_after": after,
                           "server_pid_unchanged": service_pid(topo["server"], "server") == pid}
    return out



def measure_recovery(topo: dict[str, Any], role: str, runs: int, engine: str = "docker") -> list[float]:
    """kill -9 the service; seconds until it serves again (server) or polls again (client)."""
    times = []
    container = topo["server"] if role == "server" else topo["client"]
    for _ in range(runs):
        t0 = time.time()
        if topo["manager"] == "none":
            # The service is PID 1: a crash is its death seen from the host, then the engine's restart policy.
            sh("kill", "-9", str(inspect(container, engine)["State"]["Pid"]))
        else:
            pid = wait_until(lambda c=container: service_pid(c, role, engine), 10, f"{role} pid", 0.05)
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
        scores = stats.parse_exposure(docker("exec", container, "systemd-analyze", "security", "--no-pager"))
    finally:
        docker("exec", container, "systemctl", "stop", DEFAULTS_UNIT)
    return {"units": {unit: scores[unit] for unit in ("lab-server.service", "lab-client.service")},
            "defaults": scores[DEFAULTS_UNIT]}


def log_streams(topo: dict[str, Any]) -> dict[str, Any]:
    """Where each service's lines can be read, and whether one place mixes them."""
    docker_logs = {c: sh("docker", "logs", c, check=False) for c in topo["containers"]}
    found = {}
    for container, result in docker_logs.items():
        text = result.stdout + result.stderr
        found[container] = {"server_lines": text.count('"event":"request"'), "client_lines": text.count('"poll_ok"')}
    mixed = any(v["server_lines"] and v["client_lines"] for v in found.values())
    commands = {"supervisord": ["docker exec C supervisorctl tail lab-server",
                                "docker exec C supervisorctl tail lab-client"],
                "systemd": ["docker exec C journalctl -u lab-server", "docker exec C journalctl -u lab-client"],
                "none": [f"docker logs {c}" for c in topo["containers"]]}[topo["manager"]]
    if topo["manager"] == "supervisord":
        files = docker("exec", topo["server"], "ls", "/var/log/supervisor")
        separate = "lab-server.log" in files and "lab-client.log" in files
    elif topo["manager"] == "systemd":
        server_unit = docker("exec", topo["server"], "journalctl", "-u", "lab-server", "-o", "cat", "--no-pager")
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
    for service in ("lab-server", "lab-client"):
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
               "python3", "/opt/lab/client.pyc", "--url", topo["url"],
               "--log-file", f"/var/log/lab/client-extra{i}.log")
    for i in range(extra):
        wait_until(lambda i=i: stats.first_event_after(container_events(
            topo["client"], f"/var/log/lab/client-extra{i}.log"), "poll_ok", 0), 30, "extra client success", 0.1)
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


# --- scale-out on Swarm ---------------------------------------------------------------------------------------------

SWARM_SERVER = "lab-swarm-server"


def swarm_deploy(servers: int, clients: int) -> None:
    ansible("playbooks/swarm.yml", "-e", f"lab_swarm_server_replicas={servers}",
            "-e", f"lab_swarm_client_replicas={clients}")
    wait_until(lambda: len(swarm_tasks(SWARM_SERVER)) == servers, 120, f"{servers} server replicas", 0.5)


def swarm_tasks(service: str) -> list[str]:
    return docker("ps", "--filter", f"label=com.docker.swarm.service.name={service}", "--filter",
                  "health=healthy", "--format", "{{.Names}}").split()


def served_per_task() -> dict[str, int]:
    """Requests each server replica has logged (the log volume is per slot, so count differences)."""
    return {task: int(sh("docker", "exec", task, "grep", "-c", '"event":"request"', SERVER_LOG,
                         check=False).stdout.strip() or 0) for task in swarm_tasks(SWARM_SERVER)}


def measure_swarm(args: argparse.Namespace) -> dict[str, Any]:
    """The split server as a Swarm service with M = 1..max replicas, loaded by args.threads workers (a connection
    per request, the client's own poll) from a container on the overlay, so that the service name spreads them
    over the replicas: the rows compare M with M, not with the topologies' loopback figures."""
    progress("swarm: deploying the stack (playbooks/swarm.yml)")
    swarm_deploy(1, 0)
    mode = json.loads(docker("service", "inspect", SWARM_SERVER))[0]["Spec"]["EndpointSpec"]["Mode"]
    loader = "lab-bench-swarm-load"
    docker("run", "-d", "--name", loader, "--label", BENCH_LABEL, "--network", "lab-swarm", "--entrypoint", "sleep",
           "lab-swarm-client:latest", "infinity")
    url = f"http://{SWARM_SERVER}:8080/"
    rows = []
    try:
        for replicas in range(1, args.swarm_max_replicas + 1):
            swarm_deploy(replicas, 0)
            progress(f"swarm: M={replicas}, {args.threads} concurrent clients for {args.load_seconds}s")
            idle = container_mem_mib(swarm_tasks(SWARM_SERVER))
            before = served_per_task()
            sampled: dict[str, Any] = {}
            sampler = threading.Timer(args.load_seconds / 2, lambda found=sampled: found.update(
                mem=container_mem_mib(swarm_tasks(SWARM_SERVER))))
            sampler.start()
            result = probe(loader, "load", url, str(args.threads), str(args.load_seconds))
            sampler.join()
            after = served_per_task()
            rows.append({"replicas": replicas, "rps": result["rps"], "failures": result["failures"],
                         "latency_ms": stats.summarize(result["latency_ms"]),
                         "memory_idle_mib": idle, "memory_load_mib": sampled.get("mem", {}),
                         "mib_per_replica": sum(idle.values()) / max(len(idle), 1),
                         "requests_per_replica": {t: n - before.get(t, 0) for t, n in after.items()}})
    finally:
        sh("docker", "rm", "-fv", loader, check=False)
        ansible("playbooks/teardown.yml", "-e", "lab_teardown_scope=swarm")
    return {"endpoint_mode": mode, "threads": args.threads, "seconds": args.load_seconds, "rows": rows,
            "mode_reason": os.environ.get("LAB_SWARM_MODE_REASON", "")}


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
                remove_lab_leftovers()  # the engines' labs publish the same ports as the runs above
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
