"""The privilege posture of each deployed topology is what the README states (CIS Docker Benchmark,
section 5, the checks of benchmark/report.py). A check the README says passes and no longer does is a
regression; a check that passes while the README says it fails means the README is out of date."""

from __future__ import annotations

import itertools
import re

import pytest

from tests.support import cgroup_reach, posture
from tests.support.project import ROOT

SECTION = "### Privilege posture"


def readme_posture() -> dict[str, dict[str, bool]]:
    """{column: {check: passes}} from the README's posture table."""
    text = (ROOT / "README.md").read_text()
    assert SECTION in text, f"README.md has no '{SECTION}' section"
    after = text.split(SECTION, 1)[1].splitlines()
    start = next(i for i, line in enumerate(after) if line.startswith("|"))
    rows = list(itertools.takewhile(lambda line: line.startswith("|"), after[start:]))  # this table only
    table = [[cell.strip() for cell in row.strip("|").split("|")] for row in rows
             if not re.fullmatch(r"\|[-|]+\|", row.strip())]
    header, body = table[0], table[1:]
    return {column: {row[0]: {"yes": True, "no": False}[row[i]] for row in body}
            for i, column in enumerate(header) if i}


README = readme_posture()


def test_posture_is_what_the_readme_states(topology):
    measured = posture.measure(topology.containers)
    privileged = any(c["privileged"] for c in measured.values())
    column = topology.name  # the generated table names the topology as it ran, privileged or not
    assert column in README, f"the README's posture table has no '{column}' column"
    got = {check: all(test(c) for c in measured.values()) for check, test in posture.POSTURE_CHECKS}
    stated = README[column]
    assert set(stated) == set(got), f"README checks {sorted(stated)} differ from the measured {sorted(got)}"
    regressed = [check for check in got if stated[check] and not got[check]]
    known = [cgroup_reach.Reach(**c["cgroup_reach_detail"]).known_failure(c["systemd_recipe"])
             for c in measured.values()]
    if regressed == [posture.CGROUP_CHECK] and all(known):
        pytest.xfail(f"{column}: {known[0]}")
    assert not regressed, f"{column}: posture regressed from the README on {regressed}"
    understated = [check for check in got if got[check] and not stated[check]]
    assert not understated, f"{column}: now passes {understated}; update the README's posture table"
    if topology.name == "systemd" and not privileged:
        # The privileged column is derived, not measured: it must be this container with the flag added.
        derived = {check: all(test(posture.with_privileged(c)) for c in measured.values())
                   for check, test in posture.POSTURE_CHECKS}
        column = posture.PRIVILEGED_DERIVED
        assert README[column] == derived, f"the README's {column} column is stale"
