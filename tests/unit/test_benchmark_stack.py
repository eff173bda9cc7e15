"""A stack's report section is computed from its run: verdicts flip with the data, the best figure is marked,
and PostgreSQL's own log lines are read as the benchmark reads them."""

from __future__ import annotations

import copy

import pytest

from benchmark import report, stats
from benchmark import stack as bench
from tests.support import stack as stacks


def topology(first_commit: float, memory: float, tps: float, lost: int = 0, clean: int = 3) -> dict:
    summary = {"n": 3, "median": first_commit, "p95": first_commit}
    return {"containers": ["c"], "image_mib": {"c": 300.0}, "start_first_commit_s": summary,
            "start_healthy_s": summary, "stop_s": {"n": 3, "median": 0.5}, "stops_clean": clean, "stops": 3,
            "kill9_back_s": {"n": 3, "median": 1.2}, "redo_s": {"n": 3, "median": 0.01}, "memory_mib": memory,
            "tps": tps, "pgbench_clients": 4, "pgbench_seconds": 10, "lost_rows": lost, "acknowledged_rows": 900,
            "posture": {"4.1 container user is not root": True}, "root_processes": {"c": []}}


MACHINE = {"cores": 2, "kernel": "6.1", "engine": "20.10.24"}
RESULTS = {"stack": "postgres", "file": "stacks/postgres.yml", "started": "2026-11-26T19:00:00Z",
           "engine": "docker", "machine": MACHINE, "runs": 3, "duration_s": 300.0,
           "single_crash_after_s": {"split": 10.0, "single": 2.0, "systemd": 2.0},
           "topologies": {"single": topology(2.0, 80.0, 900.0), "systemd": topology(3.0, 95.0, 850.0),
                          "split": topology(1.5, 110.0, 880.0)}}


# The demo pair's run (benchmark/run.py), as much of it as the stacks' comparison reads.
PAIR_TOPOLOGY = {"startup": {"client_from_started_at_s": {"median": 0.6}}, "processes": {}, "memory_idle_mib": {},
                 "recovery_s": {"server": {"median": 0.3}}, "stop": {"stop_s": 0.4}}
PAIR = {"topologies": dict.fromkeys(report.NAMES, PAIR_TOPOLOGY), "started": "2026-11-20T10:00:00Z",
        "machine": MACHINE}


def test_verdicts_hold_when_nothing_was_lost_and_every_stop_was_clean():
    text = "\n".join(report.stack_markdown(RESULTS))
    assert "Nothing acknowledged is lost: **holds** in every topology" in text
    assert "clean PostgreSQL shutdown (no SIGKILL, no crash recovery at the next start): **holds**" in text


def test_a_lost_row_or_a_killed_stop_turns_its_verdict():
    results = copy.deepcopy(RESULTS)
    results["topologies"]["systemd"]["lost_rows"] = 2
    results["topologies"]["split"]["stops_clean"] = 2
    text = "\n".join(report.stack_markdown(results))
    assert "Nothing acknowledged is lost: **does not hold**: systemd lost 2" in text
    assert "**does not hold**: split 2 of 3" in text


def test_the_best_topology_of_each_row_is_computed():
    lines = report.stack_markdown(RESULTS)
    start = next(line for line in lines if line.startswith("| start: StartedAt to the first committed row"))
    assert start == "| start: StartedAt to the first committed row (median s) | 2.00 | 3.00 | **1.50** |"
    tps = next(line for line in lines if line.startswith("| commits per second"))
    assert "**900.00**" in tps
    assert "- commits per second (pgbench, TPC-B-like): **single** (900.00; the worst 850.00)." in lines


def test_both_stacks_side_by_side_read_each_runs_figures():
    pair = PAIR
    lines = report.stacks_compared(pair, [RESULTS])
    assert "| | postgres | 2.00 | 3.00 | 1.50 |" in lines
    assert "Not the same machine" not in "\n".join(lines)
    other = dict(pair, machine=MACHINE | {"kernel": "5.15"})
    assert "**Not the same machine**" in "\n".join(report.stacks_compared(other, [RESULTS]))


def test_postgres_log_lines_as_the_benchmark_reads_them():
    log = ("LOG:  database system was interrupted; last known up at 2026-11-26 19:09:53 UTC\n"
           "LOG:  redo done at 0/1AD9FB8 system usage: CPU: user: 0.00 s, system: 0.00 s, elapsed: 0.02 s\n"
           "LOG:  database system was shut down at 2026-11-26 19:12:00 UTC\n")
    assert bench.REDO.findall(log) == ["0.02"]
    assert stacks.LAST_STOP.findall(log) == ["interrupted", "shut down"]
    assert bench.TPS.search("tps = 812.345678 (without initial connection time)").group(1) == "812.345678"


def test_the_writers_outage_spans_its_last_commit_before_the_error_to_its_first_after():
    events = [{"ts": "2026-11-26T20:00:00.000Z", "event": "committed", "n": 1},
              {"ts": "2026-11-26T20:00:00.080Z", "event": "committed", "n": 2},  # during the docker exec
              {"ts": "2026-11-26T20:00:00.100Z", "event": "db_error"},
              {"ts": "2026-11-26T20:00:00.500Z", "event": "db_error"},
              {"ts": "2026-11-26T20:00:01.330Z", "event": "committed", "n": 3}]
    after = stats.parse_ts("2026-11-26T20:00:00.050Z")
    assert round(bench.outage_s(events, after), 3) == 1.25
    assert bench.outage_s(events[:3], after) is None, "no commit after the error yet"


def generic(healthy: float, kills: dict[str, float], sigkilled: tuple[str, ...] = ()) -> dict:
    """A topology of a stack without the PostgreSQL stack's shape: the figures every stack gets."""
    return {"containers": ["c"], "image_mib": {"c": 120.0}, "start_healthy_s": {"n": 3, "median": healthy},
            "stop_s": {"n": 3, "median": 0.3}, "stops_sigkilled": len(sigkilled), "stops": 3,
            "sigkilled_services": list(sigkilled), "service_kill9_left": dict.fromkeys(kills, 0),
            "service_kill9_back_s": {s: {"n": 3, "median": k} for s, k in kills.items()}, "memory_mib": 30.0,
            "posture": {"4.1 container user is not root": True}, "root_processes": {"c": []}}


GENERIC = dict(RESULTS, stack="pair", file="stacks/pair.yml", topologies={
    "single": generic(0.4, {"lab-server": 0.5, "lab-client": 0.6}),
    "systemd": generic(0.9, {"lab-server": 0.3, "lab-client": 0.2}),
    "split": generic(0.3, {"lab-server": 1.4, "lab-client": 1.1}, sigkilled=("lab-client",))})


def test_any_stack_gets_the_common_rows_and_only_those_its_run_has():
    lines = report.stack_markdown(GENERIC)
    text = "\n".join(lines)
    assert "| kill -9 of lab-client: back and healthy (median s) | 0.60 | **0.20** | 1.10 |" in lines
    assert "| start: StartedAt to every health check passing (median s) | 0.40 | 0.90 | **0.30** |" in lines
    assert "- kill -9 of lab-server: back and healthy (median s): **systemd** (0.30; the worst 1.40)." in lines
    assert "| SIGKILLed at `docker stop` | 0 of 3 | 0 of 3 | 1 of 3 |" in lines
    for absent in ("first committed row", "pgbench", "acknowledged", "clean PostgreSQL shutdown"):
        assert absent not in text, absent


def test_a_sigkilled_stop_turns_the_stop_verdict():
    text = "\n".join(report.stack_markdown(GENERIC))
    assert "nor a manager SIGKILLs one): **does not hold**: split 1 of 3 stops SIGKILLed lab-client." in text
    results = copy.deepcopy(GENERIC)
    results["topologies"]["split"] |= {"stops_sigkilled": 0, "sigkilled_services": []}
    assert "nor a manager SIGKILLs one): **holds** in every topology." in "\n".join(report.stack_markdown(results))


def test_a_stop_verdict_needs_the_managers_kills_measured():
    """A run from before the managers' own SIGKILLs were counted (the engine's only) gets no stop verdict."""
    results = copy.deepcopy(GENERIC)
    for topology in results["topologies"].values():
        del topology["sigkilled_services"]
    assert "SIGKILLs" not in "\n".join(report.stack_verdicts(results))


# Each manager's own words when a service outlived its grace at a stop, as they wrote them here (a gunicorn app
# given USR1, which it takes to reopen its logs, as its stop signal), beside the lines around them.
MANAGER_SAID = {
    "single": """2026-12-07 09:11:47,154 INFO waiting for app to die
2026-12-07 09:11:49,261 WARN killing 'app' (826) with SIGKILL
2026-12-07 09:11:49,264 WARN stopped: app (terminated by SIGKILL)
2026-12-07 09:11:49,264 INFO reaped unknown pid 832 (terminated by SIGKILL)
2026-12-07 09:11:44,246 INFO stopped: proxy (exit status 0)""",
    "systemd": """app.service: State 'stop-sigterm' timed out. Killing.
app.service: Killing process 376 (gunicorn) with signal SIGKILL.
app.service: Main process exited, code=killed, status=9/KILL
Stopped proxy.service - nginx in front of the app.""",
}


@pytest.mark.parametrize("topology", ["single", "systemd"])
def test_a_managers_own_sigkill_is_read_from_its_words(topology):
    assert stacks.MANAGER_SIGKILL[topology].findall(MANAGER_SAID[topology]) == ["app"]


def test_what_a_kill_9_leaves_running_turns_its_verdict():
    text = "\n".join(report.stack_markdown(GENERIC))
    assert "still running when its new run is healthy): **holds** in every topology." in text
    assert "| kill -9: processes of the killed run left at the new run's health (most) | 0 | 0 | 0 |" in text
    results = copy.deepcopy(GENERIC)
    results["topologies"]["single"]["service_kill9_left"]["lab-server"] = 2
    text = "\n".join(report.stack_markdown(results))
    assert "when its new run is healthy): **does not hold**: single lab-server 2 left." in text
    row = "| kill -9: processes of the killed run left at the new run's health (most) |"
    assert f"{row} lab-server 2 left | 0 | 0 |" in text


def test_a_service_not_back_is_never_the_best_and_says_so():
    results = copy.deepcopy(GENERIC)
    results["topologies"]["split"]["service_kill9_back_s"]["lab-server"]["not_back"] = 1
    lines = report.stack_markdown(results)
    assert "| kill -9 of lab-server: back and healthy (median s) | 0.50 | **0.30** | not back |" in lines
    assert "- kill -9 of lab-server: back and healthy (median s): **systemd** (0.30; the worst not back)." in lines
    assert "| | pair | 0.60 | 0.30 | not back |" in report.stacks_compared(PAIR, [results])


def test_a_tie_for_the_best_has_no_best():
    assert report.best_of({"single": 0.5, "systemd": 0.5, "split": None}, "low") is None
    assert report.best_of({"single": 0.5, "systemd": 0.5, "split": 0.7}, "low") is None
    assert report.best_of({"single": 0.5, "systemd": 0.5, "split": 0.7}, "high") == "split"
    assert report.best_of({"single": 0.5, "systemd": None, "split": None}, "low") == "single"
    assert report.worst_of({"single": 0.5, "systemd": 0.5, "split": 0.7}, "low") == 0.7
    assert report.worst_of({"single": 0.5, "systemd": 0.5, "split": None}, "low") is None


def test_another_stack_beside_the_pair_reads_its_health_and_slowest_service():
    lines = report.stacks_compared(PAIR, [GENERIC])
    start = [line for line in lines if line.startswith("| | pair |")]
    assert start[0] == "| | pair | 0.40 | 0.90 | 0.30 |"
    assert "| | pair | 0.60 | 0.30 | 1.40 |" in lines  # kill -9: each topology's slowest service


def test_kill_rounds_end_at_the_first_not_back_and_restart_its_container(monkeypatch):
    """What a service not back leaves (an orphaned worker on its port) would answer for the rounds after it."""
    results = iter([{"back_s": 0.8, "left": 1}, {"back_s": None, "left": 1}, {"back_s": 0.7, "left": 0}])
    restarted = []

    class Stack:
        def container(self, topology, service):
            return f"lab-web-{topology}"

    monkeypatch.setattr(bench, "service_kill9", lambda stack, topology, service: next(results))
    monkeypatch.setattr(bench, "restart", lambda stack, container: restarted.append(container))
    rounds = bench.service_kill9_rounds(Stack(), "single", "proxy", 3)
    assert [r["back_s"] for r in rounds] == [0.8, None]
    assert restarted == ["lab-web-single"]
