"""Fault injection against the lab deployed by site.yml (real containers, bounded in time).

Run by `scripts/lab test` after site.yml and before the teardown:
    pytest tests/faults -n 4 -m 'not exclusive'; pytest tests/faults -m exclusive
The topologies are read from the real inventory, so the tests follow its names and ports.

Most of a fault test is waiting (for a restart, for the client's next 5 s poll), and the topologies are
separate containers, so pytest-xdist runs them side by side: every test of one topology goes to one
worker, in file order (pytest_xdist_make_scheduler below), so no test touches a topology another is using.
A test that reconfigures every topology is marked `exclusive` and runs after the others, alone. (Ansible is
the CPU-bound part: three configure runs at once, one per topology, took 440-530 s each on two cores, one run
over every host about 200 s.) Without -n everything runs in one process.
"""

from __future__ import annotations

import pytest

from tests.support.docker import engine
from tests.support.process import wait_for
from tests.support.topology import Topology, load_topologies

TOPOLOGIES = load_topologies()
TOPOLOGY_NAMES = frozenset(t.name for t in TOPOLOGIES)


def pytest_configure(config):
    config.addinivalue_line("markers", "exclusive: changes every topology; runs alone, after the others")
    if getattr(config.option, "numprocesses", None) and "exclusive" not in (config.option.markexpr or ""):
        raise pytest.UsageError("with -n, run the tests that change every topology apart: "
                                "-m 'not exclusive' first, then -m exclusive without -n")


def group_of(nodeid: str) -> str:
    """A test's topology, its first parameter (`test_x[split-server]`); any other test, its module."""
    first = nodeid.partition("[")[2].split("-")[0].rstrip("]")
    return first if first in TOPOLOGY_NAMES else nodeid.partition("::")[0]


def pytest_xdist_make_scheduler(config, log):
    """Every test of a topology on one worker, in file order. (xdist's own loadgroup reads a nodeid suffix
    that pytest 9 no longer keeps, so it would spread a topology's tests over workers.)"""
    from xdist.scheduler import LoadScopeScheduling

    class ByTopology(LoadScopeScheduling):
        def _split_scope(self, nodeid: str) -> str:
            return group_of(nodeid)

    return ByTopology(config, log)


@pytest.fixture(params=TOPOLOGIES, ids=[t.name for t in TOPOLOGIES])
def topology(request) -> Topology:
    topo = request.param
    running = engine("ps", "--format", "{{.Names}}")
    missing = {topo.server, topo.client} - set(running.split())
    if missing:
        pytest.fail(f"the deployed lab is not running ({', '.join(sorted(missing))}); run ansible-playbook site.yml")
    wait_for(topo.health, 30, f"{topo.name} server answering")
    return topo
