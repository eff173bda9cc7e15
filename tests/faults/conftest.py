"""Fault injection against the lab deployed by site.yml (real containers, bounded in time).

Run by `scripts/lab test` after site.yml and before the teardown:
    pytest tests/faults
The topologies are read from the real inventory, so the tests follow its names and ports.
"""

from __future__ import annotations

import pytest

from tests.support.docker import engine
from tests.support.process import wait_for
from tests.support.topology import Topology, load_topologies

TOPOLOGIES = load_topologies()


@pytest.fixture(params=TOPOLOGIES, ids=[t.name for t in TOPOLOGIES])
def topology(request) -> Topology:
    topo = request.param
    running = engine("ps", "--format", "{{.Names}}")
    missing = {topo.server, topo.client} - set(running.split())
    if missing:
        pytest.fail(f"the deployed lab is not running ({', '.join(sorted(missing))}); run ansible-playbook site.yml")
    wait_for(topo.health, 30, f"{topo.name} server answering")
    return topo
