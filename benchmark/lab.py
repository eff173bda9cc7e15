"""The lab as the benchmark drives it: the topologies from the inventory, the playbooks, running, stopping
and removing containers from images, reading their memory and running the probe inside them."""

from __future__ import annotations

import json
import re
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from benchmark import stats
from tests.support import ansible as support_ansible
from tests.support.docker import docker, started_at
from tests.support.docker import events as container_events
from tests.support.docker import run as engine_cli
from tests.support.http import json_or_none as http_json
from tests.support.process import at_once, wait_for
from tests.support.process import run as sh
from tests.support.project import (
    APP_DIR,
    CLIENT_LOG,
    LABEL,
    LOG_DIR,
    SERVER_LOG,
    SERVICE_NAMES,
)
from tests.support.topology import load_topologies

LOGS = {"server": SERVER_LOG, "client": CLIENT_LOG}


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
    at_once(lambda c: run(c, topo["containers"][c]), topo["containers"])
    started = {c: started_at(c, "docker") for c in topo["containers"]}
    wait_until(lambda: http_json(f"http://127.0.0.1:{topo['port']}/healthz"), 60, "server answer")
    t_server = time.time()
    t_client = wait_until(lambda: stats.first_event_after(
        container_events(topo["client"], CLIENT_LOG), "poll_ok", t0), 60, "client success", 0.05)
    found = {"server_s": t_server - t0, "client_s": t_client - t0,
             "client_from_started_at_s": t_client - min(started.values())}
    if topo["manager"] != "none":
        since = started[topo["server"]]
        found["manager_s"] = manager_started_server_at(topo, since) - since
    return found


# supervisord's line for a program it started, as the engine stamped it (docker logs -t: UTC, whatever the
# container's time zone); systemd keeps the moment as the unit's ExecMainStartTimestamp.
SUPERVISORD_SPAWNED = re.compile(r"^(\S+) .* INFO spawned: '([^']+)' with pid", re.MULTILINE)


def manager_started_server_at(topo: dict[str, Any], since: float) -> float:
    """When the topology's manager first started the server's process since `since`, the container's StartedAt
    (epoch seconds): the manager's own share of the start is the time from the one to the other."""
    container, service = topo["server"], SERVICE_NAMES["server"]
    if topo["manager"] == "supervisord":
        result = sh("docker", "logs", "--timestamps", "--since", f"{since:.3f}", container)
        return min(stats.parse_ts(m[1][:23] + "Z") for m in SUPERVISORD_SPAWNED.finditer(result.stdout + result.stderr)
                   if m[2] == service)
    value = docker("exec", container, "systemctl", "show", service, "--property=ExecMainStartTimestamp",
                   "--value", "--timestamp=us+utc")
    return datetime.strptime(value, "%a %Y-%m-%d %H:%M:%S.%f UTC").replace(tzinfo=UTC).timestamp()


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
    at_once(lambda c: sh(engine, "stop", "-t", "10", c, check=False), topo["containers"])
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
    return json.loads(sh(engine, "exec", "-i", container, "python3", "-", APP_DIR, *args, stdin=PROBE,
                         timeout=timeout).stdout)
