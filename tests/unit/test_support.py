"""The shared support code's parsers, on real output."""

from __future__ import annotations

import sys
import threading

import pytest

from tests.support import ansible
from tests.support.process import at_once, run

RECAP = """
PLAY RECAP *********************************************************************
lab-single                 : ok=44   changed=0    unreachable=0    failed=0    skipped=14   rescued=0    ignored=0
lab-systemd                : ok=51   changed=0    unreachable=0    failed=0    skipped=23   rescued=0    ignored=0
localhost                  : ok=16   changed=0    unreachable=0    failed=0    skipped=10   rescued=0    ignored=0
"""


def test_recap_reads_every_host():
    assert ansible.recap(RECAP)["lab-systemd"] == {"ok": 51, "changed": 0, "unreachable": 0, "failed": 0,
                                                   "skipped": 23, "rescued": 0, "ignored": 0}


def test_idempotent_run_passes_only_with_a_line_for_every_expected_host():
    assert ansible.check_idempotent(RECAP, ["localhost", "lab-single", "lab-systemd"]) == []
    assert ansible.check_idempotent(RECAP, ["localhost", "lab-single", "lab-systemd", "lab-split-server"]) == [
        "lab-split-server: no PLAY RECAP line"]
    assert ansible.check_idempotent("no recap at all", ["localhost"]) == ["localhost: no PLAY RECAP line"]


def test_a_change_or_failure_is_not_idempotent():
    changed = RECAP.replace("ok=44   changed=0", "ok=44   changed=2")
    assert ansible.check_idempotent(changed, ["lab-single"]) == ["lab-single: changed=2 failed=0 unreachable=0"]


def test_at_once_runs_every_item_at_the_same_time():
    # Each action waits for all the others: run one after another, the barrier breaks.
    barrier = threading.Barrier(3, timeout=10)
    assert at_once(lambda item: (barrier.wait(), item)[1], ["a", "b", "c"]) == ["a", "b", "c"]


def test_at_once_raises_the_failure_after_every_item_ran():
    done = []

    def action(item: str) -> str:
        if item == "bad":
            raise RuntimeError("engine refused bad")
        done.append(item)
        return item

    with pytest.raises(RuntimeError, match="engine refused bad"):
        at_once(action, ["good", "bad", "other"])
    assert sorted(done) == ["good", "other"]


def test_every_fault_test_runs_with_its_topology_or_alone():
    """The fault suite runs its topologies side by side (tests/faults/conftest.py groups tests by their first
    parameter): a test that uses a topology but names it elsewhere would run beside that topology's others."""
    from tests.faults.conftest import TOPOLOGY_NAMES, group_of

    recipes = "tests/faults/test_systemd_recipes.py"  # its own containers; its ids name recipes, not topologies
    collected = run(sys.executable, "-m", "pytest", "tests/faults", "--co", "-q", "-p", "no:cacheprovider",
                    "-m", "not exclusive").stdout
    nodeids = [line for line in collected.splitlines() if "::" in line]
    assert {group_of(n) for n in nodeids} == TOPOLOGY_NAMES | {recipes}
    for nodeid in nodeids:
        named = TOPOLOGY_NAMES & set(nodeid.partition("[")[2].rstrip("]").split("-"))
        assert nodeid.startswith(recipes) or not named or {group_of(nodeid)} == named, nodeid
    assert group_of("tests/faults/test_recovery.py::test_three_kills_in_a_row_recover[split-server]") == "split"
    assert group_of(f"{recipes}::test_x[server-podman-systemd]") == recipes
