"""The systemd topology: boot state, units, journal, and which mode ran."""

from __future__ import annotations

import json
import subprocess

import pytest

from benchmark import stats
from tests.infra.conftest import host_vars, poll_until

testinfra_hosts = ["ansible://lab_systemd_hosts"]


def test_booted_with_no_failed_units(host):
    def state() -> str | None:
        current = host.run("systemctl is-system-running").stdout.strip()
        return current if current in ("running", "degraded") else None

    reached = poll_until(state, 60, "systemd to finish booting")
    assert reached == "running", host.check_output("systemctl --failed --no-legend --plain")


@pytest.mark.parametrize("unit", ["lab-server.service", "lab-client.service"])
def test_unit_enabled_restarting_and_non_root(host, unit):
    props = dict(line.split("=", 1) for line in host.check_output(
        f"systemctl show {unit} -p UnitFileState -p Restart -p User -p NoNewPrivileges -p ActiveState").splitlines())
    assert props == {"UnitFileState": "enabled", "Restart": "always", "User": "lab", "NoNewPrivileges": "yes",
                     "ActiveState": "active"}


def test_client_ordered_after_server(host):
    after = host.check_output("systemctl show lab-client.service -p After -p Wants")
    assert after.count("lab-server.service") == 2, after


def test_journal_has_the_polls(host):
    poll_until(lambda: "poll_ok" in host.check_output("journalctl -u lab-client.service -o cat --no-pager"),
               30, "poll_ok in the journal")


def test_mode_is_the_one_asked_for(host):
    """The privileged recipe and the least-privilege mode are both real: print which one ran."""
    name = host.check_output("hostname")
    config = json.loads(subprocess.run(["docker", "inspect", name], check=True, capture_output=True,
                                       text=True).stdout)[0]["HostConfig"]
    wanted = str(host_vars(host).get("lab_systemd_privileged", True)).lower() == "true"
    print(f"systemd mode that ran on {name}: {'privileged' if config['Privileged'] else 'least-privilege'}")
    assert config["Privileged"] is wanted
    assert config["CgroupnsMode"] == "host"
    assert set(config["Tmpfs"]) == {"/run", "/run/lock"}


@pytest.mark.parametrize("unit", ["lab-server.service", "lab-client.service"])
def test_unit_exposure_at_most_2_5(host, unit):
    """Hardening regression check: an unhardened unit scores about 9.6 here."""
    scores = stats.parse_exposure(host.check_output("systemd-analyze security --no-pager"))
    print(f"{unit}: overall exposure {scores[unit]}")
    assert scores[unit] <= 2.5, f"{unit}: exposure {scores[unit]}"
