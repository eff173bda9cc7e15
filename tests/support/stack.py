"""A stack (stacks/*.yml) as the tests see it: its file, its containers in each topology (found by the
labels playbooks/stack_hosts.yml gives them), and what its services wrote. The stack is read from its file,
never restated here."""

from __future__ import annotations

import json
import os
import re
import signal
import time
from dataclasses import dataclass, field
from pathlib import Path

import yaml

from tests.support import ansible, docker
from tests.support.project import LABEL, LAYOUT, ROOT, _render, role_yaml

TOPOLOGIES = ("single", "systemd", "split")
# The PostgreSQL stack's services, as the data-loss tests and its benchmark know them (stacks/postgres.yml).
DATABASE, WRITER = "postgres", "writer"
# PostgreSQL's own words at a start for how its last stop ended: "shut down" (clean), else a crash.
LAST_STOP = re.compile(r"database system was (shut down|interrupted|not properly shut down)")
# A manager's own SIGKILL at a stop, of a service that outlived its stop_grace, in the manager's words: the
# engine does not see it (the container still exits as asked). Group 1: the service.
MANAGER_SIGKILL = {"single": re.compile(r"killing '([^']+)' \(\d+\) with SIGKILL"),
                   "systemd": re.compile(r"^(\S+)\.service: State 'stop-sigterm' timed out\. Killing\.$", re.M)}
# The stack the tests deploy: LAB_STACK, as playbooks/stack.yml reads it.
DEFAULT = ROOT / "stacks/postgres.yml"
# What a service's optional fields mean when the stack leaves them out (roles/lab_stack owns them).
SERVICE_DEFAULTS: dict = role_yaml(ROOT / "roles/lab_stack/vars/main.yml")["__lab_stack_service_defaults"]


@dataclass(frozen=True)
class Stack:
    path: Path
    data: dict
    # The label value of the deployment looked at: stack (playbooks/stack.yml) or molecule (lab_stack_scope).
    scope: str
    # Container names by (topology, service), once read from the engine: a replaced container keeps its name.
    _names: dict = field(default_factory=dict, compare=False, repr=False)

    @property
    def name(self) -> str:
        return self.data["name"]

    def service(self, name: str) -> dict:
        """One service as `services` gives it: the role's defaults filled in, the lab's paths rendered."""
        return next(s for s in self.services if s["name"] == name)

    @property
    def services(self) -> list[dict]:
        """Every service with the role's defaults for what it leaves out, the lab's paths rendered."""
        return [{key: _render(value, LAYOUT) for key, value in {**SERVICE_DEFAULTS, **s}.items()}
                for s in self.data["services"]]

    def main_pid(self, topology: str, service: str) -> int:
        """The service's main process as its manager knows it: supervisord's pid, systemd's MainPID (0 unless
        the unit is active), or PID 1 of its own container in split."""
        container = self.container(topology, service)
        if topology == "single":  # supervisorctl prints 0, or an error, for a program that is not running
            out = docker.process.run(docker.ENGINE, "exec", container, "supervisorctl", "pid", service,
                                     check=False).stdout.strip()
            return int(out) if out.isdigit() else 0
        if topology == "systemd":
            active = docker.process.run(docker.ENGINE, "exec", container, "systemctl", "is-active", "--quiet",
                                        service, check=False).returncode == 0
            return int(docker.engine("exec", container, "systemctl", "show", "--property=MainPID", "--value",
                                     service)) if active else 0
        return 1

    def setting(self, service: str, key: str) -> str:
        """A service's environment value, with the lab's paths it names (lab_layout_*) rendered."""
        return _render(self.service(service)["environment"][key], LAYOUT)

    def healthy(self, topology: str) -> bool:
        """Every container of the topology passes its health check as deployed (the engine's, run now)."""
        return all(self.container_healthy(c) for c in self.containers(topology))

    @property
    def is_database(self) -> bool:
        """The PostgreSQL stack's shape (a database and its writer), which has figures of its own."""
        return {DATABASE, WRITER} <= {s["name"] for s in self.data["services"]}

    def writer_events(self, topology: str) -> list[dict]:
        """The PostgreSQL stack's writer log (a named volume: it outlives restarts)."""
        return docker.events(self.container(topology, WRITER), self.setting(WRITER, "WRITER_LOG"))

    def acknowledged(self, topology: str) -> set[tuple[int, str]]:
        """Every row the writer logged as committed, (number, token): after a loss the writer numbers rows
        again, so the number alone would pass a lost row."""
        return {(e["n"], e["token"]) for e in self.writer_events(topology) if e.get("event") == "committed"}

    def lost(self, topology: str) -> list[tuple[int, str]]:
        """Acknowledged rows that are not in the table."""
        return sorted(self.acknowledged(topology) - self.rows(topology))

    def kill9(self, topology: str, service: str, pid: int | None = None) -> None:
        """kill -9 of the service's main process (or `pid`). In split it is the container's PID 1, which no
        signal from inside may kill, and `docker kill` counts as a stop by hand (no restart): killed from the
        host, as the kernel's OOM killer would."""
        container = self.container(topology, service)
        if topology == "split":
            os.kill(docker.inspect(container)["State"]["Pid"], signal.SIGKILL)
        else:
            docker.engine("exec", "--user", "root", container, "kill", "-9",
                          str(pid or self.main_pid(topology, service)))

    def run_of(self, topology: str, service: str) -> set[tuple[int, str]]:
        """The service's main process and every process under it, each as (pid, start time), a pid alone may be
        used again: what a kill -9 of the main process should end. In split, every process of its container."""
        rows = docker.processes(self.container(topology, service))
        started = {row["pid"]: row["started"] for row in rows}
        children: dict[int, list[int]] = {}
        for row in rows:
            children.setdefault(row["ppid"], []).append(row["pid"])
        found, todo = set(), [self.main_pid(topology, service)]
        while todo:
            pid = todo.pop()
            if pid in started:
                found.add((pid, started[pid]))
                todo += children.get(pid, [])
        return found

    def still_running(self, topology: str, service: str, run: set[tuple[int, str]]) -> int:
        """How many processes of `run` (run_of, before a kill) are still running."""
        now = {(row["pid"], row["started"]) for row in docker.processes(self.container(topology, service))}
        return len(run & now)

    def kill_database(self, topology: str) -> None:
        """kill -9 of the postmaster, the process PostgreSQL's children belong to."""
        pid = None if topology == "split" else self.postmaster_pid(self.container(topology, DATABASE))
        self.kill9(topology, DATABASE, pid)

    def incarnation(self, topology: str, service: str) -> tuple[int, str]:
        """Which run of the service this is: its main pid and its container's start (split keeps PID 1)."""
        container = self.container(topology, service)
        return self.main_pid(topology, service), docker.inspect(container)["State"]["StartedAt"]

    def process_uptime_s(self, topology: str, service: str, pid: int | None = None) -> float:
        """How long the service's main process (or `pid`) has run: its container's in split, where it is PID 1."""
        container = self.container(topology, service)
        if topology == "split":
            return time.time() - docker.started_at(container)
        pid = pid or self.main_pid(topology, service)
        return float(docker.engine("exec", container, "ps", "-o", "etimes=", "-p", str(pid))) if pid else 0.0

    def container_healthy(self, container: str) -> bool:
        """The container passes its health check as deployed (the engine's, run now)."""
        return docker.process.run(docker.ENGINE, "exec", container, "sh", "-c",
                                  docker.inspect(container)["Config"]["Healthcheck"]["Test"][1],
                                  check=False).returncode == 0

    def manager_sigkilled(self, topology: str, since: float) -> list[str]:
        """The services the topology's manager SIGKILLed since `since` (epoch seconds): supervisord says so in
        its log (the container's output), systemd in the journal, which outlive a restart. In split the engine
        is the manager: its SIGKILL shows in the container's exit code (128 + 9), read before the next start."""
        if topology == "split":
            return []
        container = self.containers(topology)[0]
        if topology == "single":
            result = docker.process.run(docker.ENGINE, "logs", "--since", f"{since:.6f}", container)
            said = result.stdout + result.stderr
        else:
            said = docker.engine("exec", container, "journalctl", "--no-pager", "--output=cat",
                                 f"--since=@{since:.6f}")
        return sorted(set(MANAGER_SIGKILL[topology].findall(said)) & {s["name"] for s in self.services})

    def last_stop(self, topology: str) -> str | None:
        """How PostgreSQL says its last stop ended, at its latest start: "shut down" (clean), else a crash."""
        stops = LAST_STOP.findall(self.output(topology, DATABASE))
        return stops[-1] if stops else None

    def rows(self, topology: str) -> set[tuple[int, str]]:
        """The PostgreSQL stack's table, (number, token), read through PostgreSQL itself (psql over TCP)."""
        password = self.setting(DATABASE, "POSTGRES_PASSWORD")
        out = docker.engine("exec", "-e", f"PGPASSWORD={password}", self.container(topology, DATABASE), "psql",
                            "--host=127.0.0.1", "--username=postgres", "--dbname=postgres", "--tuples-only",
                            "--no-align", "--field-separator= ", "--command=SELECT n, token FROM lab_commits",
                            timeout=60)
        return {(int(n), token) for n, token in (line.split() for line in out.splitlines() if line.strip())}

    @staticmethod
    def postmaster_pid(container: str) -> int:
        """The postmaster: the postgres process started with -D (its children are `postgres: ...`)."""
        return next(row["pid"] for row in docker.processes(container)
                    if re.match(r"\S*/bin/postgres -D ", row["args"]))

    def deployed(self) -> dict[str, list[str]]:
        """The stack's containers the engine has in this scope, by topology, each named once, read from
        their labels (topology, and the services each runs)."""
        ids = docker.engine("ps", "--all", "--quiet", "--filter", f"label={LABEL}={self.scope}",
                            "--filter", f"label={LABEL}.stack={self.name}").split()
        found: dict[str, list[str]] = {}
        for info in json.loads(docker.engine("inspect", "--type", "container", *ids)) if ids else []:
            labels = info["Config"]["Labels"]
            name = info["Name"].lstrip("/")
            found.setdefault(labels[f"{LABEL}.topology"], []).append(name)
            for service in labels[f"{LABEL}.services"].split(","):
                self._names[labels[f"{LABEL}.topology"], service] = name
        return {topology: sorted(names) for topology, names in found.items()}

    def container(self, topology: str, service: str) -> str:
        """The container that runs `service` in `topology`; LookupError while none does."""
        if (topology, service) not in self._names:
            self.deployed()
        try:
            return self._names[topology, service]
        except KeyError:
            raise LookupError(f"no container of the stack {self.name} ({self.scope}) runs {service} in "
                              f"{topology}: is it deployed?") from None

    def containers(self, topology: str) -> list[str]:
        return sorted({self.container(topology, s["name"]) for s in self.data["services"]})

    def output(self, topology: str, service: str) -> str:
        """What the service wrote to stdout and stderr, where its manager keeps it: supervisord's log,
        the journal, or the engine's log of its own container."""
        container = self.container(topology, service)
        if topology == "single":
            return docker.read_file(container, f"/var/log/supervisor/{service}.log")
        if topology == "systemd":
            return docker.engine("exec", container, "journalctl", "--no-pager", "-o", "cat", "-u", service)
        result = docker.process.run(docker.ENGINE, "logs", container)
        return result.stdout + result.stderr


def load(path: str | os.PathLike | None = None, scope: str = "stack") -> Stack:
    """The stack file (LAB_STACK, else the PostgreSQL stack) and its deployment of that scope."""
    # Molecule runs in the scenario's directory: a relative LAB_STACK names the project's file, as in
    # playbooks/stack_hosts.yml.
    path = (Path(os.environ.get("MOLECULE_PROJECT_DIRECTORY", ".")) / (path or os.environ.get("LAB_STACK")
                                                                       or DEFAULT)).resolve()
    return Stack(path, yaml.safe_load(path.read_text()), scope)


def teardown() -> None:
    """Everything the stack playbook created (the lab's label, value stack); images are kept."""
    result = ansible.playbook("playbooks/teardown.yml", "-e", "lab_teardown_scope=stack", timeout=600)
    if result.returncode:
        raise docker.process.CommandFailed(f"playbooks/teardown.yml failed: {result.stdout[-3000:]}")


def deploy(stack: Stack, timeout: float = 1500) -> str:
    """playbooks/stack.yml for this stack; its output, or CommandFailed's words."""
    result = ansible.playbook("playbooks/stack.yml", timeout=timeout,
                              env={"LAB_STACK": str(stack.path)})
    if result.returncode:
        raise docker.process.CommandFailed(
            f"playbooks/stack.yml failed: {result.stdout[-3000:]}{result.stderr[-1000:]}")
    return result.stdout
