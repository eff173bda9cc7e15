"""ansible-playbook from the project's virtualenv, with the project's configuration and no colour."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from tests.support.project import ROOT


def _run(tool: str, *args: str, timeout: float, env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    """An Ansible command from this virtualenv, in the project root, with its configuration and no colour."""
    environment = dict(os.environ, ANSIBLE_CONFIG=str(ROOT / "ansible.cfg"), ANSIBLE_NOCOLOR="1", **(env or {}))
    return subprocess.run([str(Path(sys.executable).with_name(tool)), *args], cwd=ROOT, capture_output=True,
                          text=True, timeout=timeout, env=environment, check=False)


def playbook(*args: str, timeout: float = 1200, env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    """Run ansible-playbook; the caller judges the return code."""
    return _run("ansible-playbook", *args, timeout=timeout, env=env)


def include_role(role: str, *extra: str, tasks_from: str = "main", timeout: float = 300,
                 env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    """A role, or one of its task files, run ad hoc on the lab inventory's engine host; the caller judges."""
    return _run("ansible", "docker_engine", "-m", "ansible.builtin.include_role",
                "-a", f"name={role} tasks_from={tasks_from}", *extra, timeout=timeout, env=env)


def recap(output: str) -> dict[str, dict[str, int]]:
    """{host: {ok, changed, unreachable, failed, ...}} from ansible-playbook's PLAY RECAP lines (no colour)."""
    found = {}
    for line in output.splitlines():
        host, sep, counts = line.partition(" : ")
        if sep and "ok=" in counts and "changed=" in counts:
            found[host.strip()] = {key: int(value) for key, value in
                                   (part.split("=") for part in counts.split() if "=" in part)}
    return found


def inventory_hosts(*patterns: str, inventory: str = "inventory/lab/") -> list[str]:
    """The hosts of the lab's inventory that match the patterns (as ansible --list-hosts sees them)."""
    result = _run("ansible", "-i", inventory, ":".join(patterns), "--list-hosts", timeout=120)
    result.check_returncode()
    return [line.strip() for line in result.stdout.splitlines()[1:] if line.strip()]


def inventory(path: str = "inventory/lab/") -> dict:
    """The inventory as ansible-inventory --list gives it: groups, and every host's variables under _meta."""
    result = _run("ansible-inventory", "-i", path, "--list", timeout=120)
    result.check_returncode()
    return json.loads(result.stdout)


def check_idempotent(output: str, expected: list[str]) -> list[str]:
    """Why a re-run was not idempotent: a host with no recap line, or one that changed or failed."""
    found = recap(output)
    problems = [f"{host}: no PLAY RECAP line" for host in expected if host not in found]
    problems += [f"{host}: changed={c['changed']} failed={c['failed']} unreachable={c['unreachable']}"
                 for host, c in found.items() if c["changed"] or c["failed"] or c["unreachable"]]
    return problems


if __name__ == "__main__":
    # python -m tests.support.ansible RECAP_FILE PATTERN...: exit 1 unless every host matching the patterns
    # has a recap line with changed=0 and nothing failed (scripts/lab checks the site.yml re-run with it).
    problems = check_idempotent(Path(sys.argv[1]).read_text(), inventory_hosts(*sys.argv[2:]))
    for problem in problems:
        print(f"not idempotent: {problem}", file=sys.stderr)
    sys.exit(1 if problems else 0)
