"""The testinfra checks' collection rule: a group a check needs must not be empty (helpers are in
tests/support/testinfra_host.py)."""

from __future__ import annotations

import os

import pytest
import testinfra
from testinfra.utils import ansible_runner

_ansible_host = ansible_runner.get_ansible_host


def _with_podman(config, inventory, host, **kwargs):
    """testinfra maps community.docker.docker to its docker backend (docker exec) but has no mapping for
    Podman's connection plugin, so every command on a Podman host went through an ansible ad-hoc call
    (seconds each: 11 minutes for tests/infra). Map it to testinfra's podman backend (podman exec, as
    the same user) the same way; every other connection is testinfra's own choice."""
    hostvars = inventory["_meta"].get("hostvars", {}).get(host, {})

    def var(name: str):  # ansible-inventory marks a composed value unsafe: {"__ansible_unsafe": value}
        value = hostvars.get(name)
        return value.get("__ansible_unsafe") if isinstance(value, dict) else value

    if var("ansible_connection") not in ("containers.podman.podman", "podman"):
        return _ansible_host(config, inventory, host, **kwargs)
    user = var("ansible_user")
    return testinfra.get_host(f"podman://{user + '@' if user else ''}{var('ansible_host') or host}")


ansible_runner.get_ansible_host = _with_podman

# The group each Molecule scenario must fill; the deployed lab fills them all.
SCENARIO_GROUPS = {"single": "lab_supervisord_hosts", "systemd": "lab_systemd_hosts", "split": "lab_split_hosts"}


# The stack's own checks (LAB_STACK); the other modules check the demo pair.
STACK_MODULE = "test_stack.py"


def pytest_collection_modifyitems(config, items):
    """A module whose hosts are another scenario's (no systemd host in the single scenario, say) has
    nothing to check: report it as deselected, never as passed. Against the deployed lab, or for the
    scenario's own group, an empty group is an error: a misspelled group must not skip a module.
    With LAB_STACK the stack's checks run and the pair's are deselected; without it, the other way round."""
    stack = bool(os.environ.get("LAB_STACK"))
    other = [item for item in items if (item.path.name == STACK_MODULE) != stack]
    if other:
        config.hook.pytest_deselected(items=other)
        items[:] = [item for item in items if item not in other]
    empty = [item for item in items if "NOTSET" in item.name]
    scenario = os.environ.get("MOLECULE_SCENARIO_NAME")
    # The stack's checks run on the engine host, always there: an empty set there is a stack with nothing of
    # that kind (no ports, no start order, split's start order), deselected without asking for a group.
    groups = {item.module.testinfra_hosts[0].split("//", 1)[-1] for item in empty if item.path.name != STACK_MODULE}
    required = set(groups) if scenario is None else groups & {SCENARIO_GROUPS.get(scenario, "")}
    if required or (scenario is not None and scenario not in SCENARIO_GROUPS):
        raise pytest.UsageError(f"no hosts in {sorted(required) or sorted(groups)} in this inventory "
                                f"({'scenario ' + scenario if scenario else 'the deployed lab'}): "
                                "a group the checks need is empty or misspelled")
    # A check marked molecule_only compares a Molecule container with the lab's: nothing to do without one.
    if scenario is None:
        empty += [item for item in items if item.get_closest_marker("molecule_only")]
    if empty:
        config.hook.pytest_deselected(items=empty)
        items[:] = [item for item in items if item not in empty]
