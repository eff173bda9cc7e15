"""The privilege posture of each deployed topology is what docs/benchmark.md states (CIS Docker Benchmark,
section 5, the checks of benchmark/report.py; its table is generated from the sample run). A check the table
says passes and no longer does is a regression; a check that passes while the table says it fails means the
sample is out of date."""

from __future__ import annotations

import itertools
import re

import pytest

from benchmark import report
from tests.support import cgroup_reach, posture
from tests.support.project import ROOT

SECTION = "## Privilege posture (CIS"


def stated_posture() -> dict[str, dict[str, bool]]:
    """{column: {check: passes}} from the posture table of docs/benchmark.md."""
    text = (ROOT / report.FIGURES_DOC).read_text()
    assert SECTION in text, f"{report.FIGURES_DOC} has no '{SECTION}' section"
    after = text.split(SECTION, 1)[1].splitlines()
    start = next(i for i, line in enumerate(after) if line.startswith("|"))
    rows = list(itertools.takewhile(lambda line: line.startswith("|"), after[start:]))  # this table only
    table = [[cell.strip() for cell in row.strip("|").split("|")] for row in rows
             if not re.fullmatch(r"\|[-|]+\|", row.strip())]
    header, body = table[0], table[1:]
    return {column: {row[0]: {"yes": True, "no": False}[row[i]] for row in body}
            for i, column in enumerate(header) if i}


STATED = stated_posture()


def test_posture_is_what_docs_benchmark_states(topology):
    measured = posture.measure(topology.containers)
    privileged = any(c["privileged"] for c in measured.values())
    column = topology.name  # the generated table names the topology as it ran, privileged or not
    assert column in STATED, f"the posture table of {report.FIGURES_DOC} has no '{column}' column"
    got = posture.judge(measured.values())
    stated = STATED[column]
    assert set(stated) == set(got), f"the table's checks {sorted(stated)} differ from the measured {sorted(got)}"
    regressed = [check for check in got if stated[check] and not got[check]]
    known = [cgroup_reach.Reach(**c["cgroup_reach_detail"]).known_failure(c["systemd_recipe"])
             for c in measured.values()]
    if regressed == [posture.CGROUP_CHECK] and all(known):
        pytest.xfail(f"{column}: {known[0]}")
    assert not regressed, f"{column}: posture regressed from the table on {regressed}"
    understated = [check for check in got if got[check] and not stated[check]]
    assert not understated, f"{column}: now passes {understated}; regenerate the sample (scripts/lab bench)"
    if topology.name == "systemd" and not privileged:
        # The privileged column is derived, not measured: it must be this container with the flag added.
        derived = posture.judge(map(posture.with_privileged, measured.values()))
        column = posture.PRIVILEGED_DERIVED
        assert STATED[column] == derived, f"the table's {column} column is stale"
