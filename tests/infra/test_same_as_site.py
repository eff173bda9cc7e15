"""A Molecule scenario tests the containers site.yml runs: each Molecule container runs with the options of
its counterpart in the deployed lab (the same topology and services), as the engine reports them. Only
under Molecule, beside a lab site.yml deployed; scripts/lab test runs the scenarios so (LAB_COMPARE_SITE=1),
and then a missing counterpart fails instead of skipping."""

from __future__ import annotations

import os

import pytest

from tests.support import ansible
from tests.support.docker import inspect, run_options
from tests.support.process import CommandFailed
from tests.support.project import LABEL
from tests.support.testinfra_host import host_vars

testinfra_hosts = ["ansible://lab_containers"]

# The groups that say what a container is: its topology and the services it runs.
KIND_GROUPS = {"lab_supervisord_hosts", "lab_systemd_hosts", "lab_split_hosts", "lab_server_hosts",
               "lab_client_hosts"}


def counterpart(variables: dict) -> tuple[str, dict]:
    """The deployed lab's host in the same groups, and its inventory variables."""
    site = ansible.inventory()
    kind = KIND_GROUPS & set(variables["group_names"])
    for name, hostvars in site["_meta"]["hostvars"].items():
        if {group for group in KIND_GROUPS if name in site.get(group, {}).get("hosts", [])} == kind:
            return name, hostvars
    raise AssertionError(f"the lab's inventory has no host in {sorted(kind)}")


def masked(name: str, variables: dict) -> dict:
    names = {name: "<name>"}
    if variables.get("lab_container_network"):
        names[variables["lab_container_network"]] = "<network>"
    return run_options(inspect(name), LABEL, names)


def flat(options: dict) -> dict:
    return {f"{section}.{key}": value for section, values in options.items()
            for key, value in (values.items() if isinstance(values, dict) else [("", values)])}


@pytest.mark.molecule_only
def test_runs_with_the_options_of_its_site_counterpart(host):
    variables = host_vars(host)
    name = variables["inventory_hostname"]
    other, other_variables = counterpart(variables)
    try:
        theirs = flat(masked(other, other_variables))
    except CommandFailed as error:
        if os.environ.get("LAB_COMPARE_SITE") == "1":
            raise AssertionError(f"LAB_COMPARE_SITE=1, but the lab's {other} cannot be inspected: {error}") from error
        pytest.skip(f"the lab's {other} is not there (ansible-playbook site.yml deploys it): nothing to compare")
    ours = flat(masked(name, variables))
    differ = {key: (ours.get(key), theirs.get(key)) for key in ours.keys() | theirs.keys()
              if ours.get(key) != theirs.get(key)}
    assert not differ, f"{name} runs with other options than the lab's {other}, (molecule, site): {differ}"
