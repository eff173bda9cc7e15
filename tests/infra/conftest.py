"""The testinfra checks' collection rule: a group a check needs must not be empty (helpers are in
tests/support/testinfra_host.py)."""

from __future__ import annotations

import os

import pytest

# The group each Molecule scenario must fill; the deployed lab fills them all.
SCENARIO_GROUPS = {"single": "lab_supervisord_hosts", "systemd": "lab_systemd_hosts", "split": "lab_split_hosts"}


def pytest_collection_modifyitems(config, items):
    """A module whose hosts are another scenario's (no systemd host in the single scenario, say) has
    nothing to check: report it as deselected, never as passed. Against the deployed lab, or for the
    scenario's own group, an empty group is an error: a misspelled group must not skip a module."""
    empty = [item for item in items if "NOTSET" in item.name]
    scenario = os.environ.get("MOLECULE_SCENARIO_NAME")
    groups = {item.module.testinfra_hosts[0].split("//", 1)[-1] for item in empty}
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
