"""Every systemd recipe the lab offers, deployed side by side on this engine by the lab's own playbooks
(inventory/recipes): it boots to `running` with no failed unit, its services come back after kill -9, and
root in it can write exactly what the README states. A recipe the engine refuses must say so in one line;
its other checks are reported as skipped with the engine's reason, never as passed."""

from __future__ import annotations

import time

import pytest

from tests.faults.conftest import Topology, poll_until
from tests.support import cgroup_reach, recipes
from tests.support.docker import docker


@pytest.fixture(scope="module")
def deployed() -> dict[str, recipes.Deployed]:
    runs = {recipe: recipes.deploy(recipe) for recipe in recipes.RECIPES}
    yield runs
    recipes.remove()


def running(deployed: dict[str, recipes.Deployed], recipe: str) -> recipes.Deployed:
    run = deployed[recipe]
    if not run.runs:
        pytest.skip(f"this engine refused the {recipe} recipe: {run.refusal}")
    return run


def test_the_tightest_recipe_runs_here(deployed):
    assert deployed["own-slice"].runs, deployed["own-slice"].refusal


@pytest.mark.parametrize("recipe", recipes.RECIPES)
def test_a_refusal_is_one_clear_line(deployed, recipe):
    refusal = deployed[recipe].refusal
    print(f"{recipe}: {refusal or 'runs'}")
    assert not refusal or ("\n" not in refusal and f"the engine refused the {recipe} systemd recipe" in refusal
                           and "Traceback" not in refusal), refusal


@pytest.mark.parametrize("recipe", recipes.RECIPES)
def test_boots_to_running_with_no_failed_unit(deployed, recipe):
    run = running(deployed, recipe)
    state = docker("exec", run.container, "systemctl", "is-system-running")
    failed = docker("exec", run.container, "systemctl", "--failed", "--no-legend", "--plain")
    assert (state, failed) == ("running", ""), f"{run.container}: {state}; failed units: {failed}"


@pytest.mark.parametrize("recipe", recipes.RECIPES)
def test_services_come_back_after_kill9(deployed, recipe):
    run = running(deployed, recipe)
    topology = Topology(f"systemd/{recipe}", "systemd", run.container, run.container, 0)
    killed_at = time.time()
    for role in ("server", "client"):
        before = poll_until(lambda r=role: topology.service_pid(r), 10, f"the {role} process")
        topology.kill9(role)
        poll_until(lambda r=role, b=before: topology.service_pid(r) not in (None, b), 30, f"a new {role} process")
    poll_until(lambda: topology.client_ok_after(killed_at), 30, "a client success after both kills")


@pytest.mark.parametrize("recipe", recipes.RECIPES)
def test_root_writes_what_the_readme_states(deployed, recipe):
    """own-slice: its own cgroup only. host-rw and privileged: every container's cgroups (measured, so
    the README's claim about the looser recipes is checked too)."""
    run = running(deployed, recipe)
    with cgroup_reach.neighbour() as other:
        reach = cgroup_reach.measure(run.container, other)
    print(f"{recipe}: root can write {reach.summary}: {reach}")
    assert reach.summary == recipes.STATED_REACH[recipe], reach
