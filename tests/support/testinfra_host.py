"""What a testinfra host runs and how to look at it: each host says what it runs by its groups
(lab_server_hosts, lab_client_hosts) and inventory vars (lab_manager, lab_topology, lab_client_url); the same
checks verify every Molecule scenario and the lab deployed by site.yml."""

from __future__ import annotations

import functools
import json
from urllib.parse import urlsplit

from tests.support.process import wait_for
from tests.support.project import APP_DIR, CLIENT_LOG, SERVICE_NAMES

# Keyed by the program/unit name the roles give each service (lab-server, lab-client).
SCRIPTS = {SERVICE_NAMES[role]: f"{role}.py" for role in ("server", "client")}
GROUPS = {SERVICE_NAMES[role]: f"lab_{role}_hosts" for role in ("server", "client")}
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
            if f"{APP_DIR}/{SCRIPTS[service]}c" in line and "python3" in line]


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
