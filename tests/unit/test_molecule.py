"""Molecule as a user runs it: no CRITICAL line before the scenario (molecule/default is the stub that
Molecule looks for first), and the run succeeds."""

from __future__ import annotations

import os

from tests.support.process import run
from tests.support.project import ROOT


def test_a_scenario_starts_without_a_critical_line():
    result = run("molecule", "syntax", "-s", "single", timeout=300, cwd=str(ROOT),
                 env=dict(os.environ, ANSIBLE_CONFIG=str(ROOT / "ansible.cfg"), NO_COLOR="1"))
    output = result.stdout + result.stderr
    assert "syntax: Executed: Successful" in output
    assert "CRITICAL" not in output
