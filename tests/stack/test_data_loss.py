"""Nothing PostgreSQL acknowledged is lost, in every topology (stacks/postgres.yml, real containers).

The writer logs each row after commit() returned; after every fault, each logged row must be in the table
and the writer must commit again on its own. Seen failing with `PG_SETTINGS: synchronous_commit=off
wal_writer_delay=10000ms` in the stack (kill -9 lost the rows of the last seconds), passing as shipped.
Deploys the stack first (playbooks/stack.yml; LAB_STACK chooses another stack file with the same services)
and removes it after.
"""

from __future__ import annotations

import pytest

from tests.support import ansible, docker, process
from tests.support import stack as stacks

STACK = stacks.load()
DATABASE = stacks.DATABASE
# Long enough for a restart with WAL replay on a loaded two-core machine; a deadline, not a wait.
RESUME_S = 90


@pytest.fixture(scope="module", autouse=True)
def deployed():
    """The stack deployed for these tests, and removed after them (its containers, volumes and network)."""
    stacks.deploy(STACK)
    yield
    stacks.teardown()


def test_a_second_deploy_changes_nothing():
    """playbooks/stack.yml is idempotent: every container of the stack reports changed=0 on a re-run."""
    expected = ["localhost"] + [c for t in stacks.TOPOLOGIES for c in STACK.containers(t)]
    assert ansible.check_idempotent(stacks.deploy(STACK), expected) == []


def last_row(topology: str) -> int:
    return max((n for n, _ in STACK.acknowledged(topology)), default=0)


def writer_resumed(topology: str, after: int) -> int:
    """The first row the writer logs as committed above `after`: it came back on its own."""
    return process.wait_for(lambda: last_row(topology) > after and last_row(topology),
                            RESUME_S, f"the {topology} writer to commit again after row {after}", 0.5)


def committing(topology: str) -> int:
    """The writer is committing now: the highest acknowledged row once it has grown."""
    return writer_resumed(topology, last_row(topology))


def assert_nothing_lost(topology: str, fault: str) -> None:
    lost = STACK.lost(topology)
    assert not lost, (f"{topology}, {fault}: {len(lost)} of {len(STACK.acknowledged(topology))} acknowledged "
                      f"rows are not in the table (first {lost[:10]})")


@pytest.mark.parametrize("topology", stacks.TOPOLOGIES)
def test_kill9_of_the_postmaster_loses_no_acknowledged_row(topology):
    committing(topology)
    STACK.kill_database(topology)
    writer_resumed(topology, last_row(topology))
    assert_nothing_lost(topology, "kill -9 of the postmaster")


@pytest.mark.parametrize("topology", stacks.TOPOLOGIES)
def test_docker_stop_shuts_postgres_down_cleanly_and_loses_nothing(topology):
    committing(topology)
    containers = STACK.containers(topology)
    process.at_once(lambda c: docker.engine("stop", c, timeout=60), containers)
    for container in containers:
        state = docker.inspect(container)["State"]
        assert state["ExitCode"] != 137 and not state["OOMKilled"], \
            f"{container} was killed at docker stop, not shut down: exit {state['ExitCode']}"
    process.at_once(lambda c: docker.engine("start", c, timeout=60), containers)
    writer_resumed(topology, last_row(topology))
    # PostgreSQL says at start whether its last stop was clean ("shut down") or a crash ("interrupted").
    last = STACK.last_stop(topology)
    assert last == "shut down", f"{topology}: the start after docker stop found {last!r}"
    assert_nothing_lost(topology, "docker stop and start")


@pytest.mark.parametrize("topology", stacks.TOPOLOGIES)
def test_container_restart_loses_nothing(topology):
    committing(topology)
    process.at_once(lambda c: docker.engine("restart", c, timeout=60), STACK.containers(topology))
    writer_resumed(topology, last_row(topology))
    assert_nothing_lost(topology, "docker restart")


def test_split_database_container_replaced_loses_nothing():
    """The database container removed and created again by the playbook: its cluster is on a named volume."""
    committing("split")
    docker.engine("rm", "--force", STACK.container("split", DATABASE))
    stacks.deploy(STACK)
    writer_resumed("split", last_row("split"))
    assert_nothing_lost("split", "database container replaced")
