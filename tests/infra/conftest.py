"""Helpers for the testinfra checks: the same modules verify every Molecule
scenario and the lab deployed by site.yml. Each host says what it runs by its
groups (lab_server_hosts, lab_client_hosts) and inventory vars (lab_manager,
lab_topology, lab_client_url)."""

from __future__ import annotations

import functools
import json
import os
from urllib.parse import urlsplit

import pytest

from tests.conftest import wait_for

CLIENT_LOG = "/var/log/lab/client.log"
SCRIPTS = {"lab-server": "server.py", "lab-client": "client.py"}
GROUPS = {"lab-server": "lab_server_hosts", "lab-client": "lab_client_hosts"}
# Each check runs commands in a container: poll twice a second.
poll_until = functools.partial(wait_for, step_s=0.5)


def host_vars(host) -> dict:
    return host.ansible.get_variables()


def expected_server_hostname(host) -> str:
    """The hostname the client's polls must report: its own for localhost, else the URL's host."""
    url = host_vars(host).get("lab_client_url", "http://localhost:8080/")
    name = urlsplit(url).hostname
    return host.check_output("hostname") if name in ("localhost", "127.0.0.1") else name


def client_events(host, event: str) -> list[dict]:
    text = host.file(CLIENT_LOG).content_string if host.file(CLIENT_LOG).exists else ""
    return [line for line in map(json.loads, text.splitlines()) if line.get("event") == event]


def service_pids(host, service: str) -> list[int]:
    """PIDs of the python processes running the service's script."""
    out = host.check_output("ps -eo pid=,args=")
    return [int(line.split()[0]) for line in out.splitlines()
            if f"/opt/lab/{SCRIPTS[service]}c" in line and "python3" in line]


def services(host) -> list[str]:
    """The lab services this host runs, by its groups."""
    groups = host_vars(host)["group_names"]
    return [service for service, group in GROUPS.items() if group in groups]


def manager_reports_running(host, service: str) -> bool:
    manager = host_vars(host)["lab_manager"]
    if manager == "supervisord":
        return host.supervisor(service).is_running
    if manager == "systemd":
        return host.service(service).is_running
    return SCRIPTS[service] in host.file("/proc/1/cmdline").content_string


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
    if empty:
        config.hook.pytest_deselected(items=empty)
        items[:] = [item for item in items if item not in empty]
