"""A stack's report section is computed from its run: verdicts flip with the data, the best figure is marked,
and PostgreSQL's own log lines are read as the benchmark reads them."""

from __future__ import annotations

import copy

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


def generic(healthy: float, kills: dict[str, float], sigkilled: int = 0) -> dict:
    """A topology of a stack without the PostgreSQL stack's shape: the figures every stack gets."""
    return {"containers": ["c"], "image_mib": {"c": 120.0}, "start_healthy_s": {"n": 3, "median": healthy},
            "stop_s": {"n": 3, "median": 0.3}, "stops_sigkilled": sigkilled, "stops": 3,
            "service_kill9_back_s": {s: {"n": 3, "median": k} for s, k in kills.items()}, "memory_mib": 30.0,
            "posture": {"4.1 container user is not root": True}, "root_processes": {"c": []}}


GENERIC = dict(RESULTS, stack="pair", file="stacks/pair.yml", topologies={
    "single": generic(0.4, {"lab-server": 0.5, "lab-client": 0.6}),
    "systemd": generic(0.9, {"lab-server": 0.3, "lab-client": 0.2}),
    "split": generic(0.3, {"lab-server": 1.4, "lab-client": 1.1}, sigkilled=1)})


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
    assert "SIGKILLs none): **does not hold**: split 1 of 3 stops SIGKILLed." in text
    results = copy.deepcopy(GENERIC)
    results["topologies"]["split"]["stops_sigkilled"] = 0
    assert "SIGKILLs none): **holds** in every topology." in "\n".join(report.stack_markdown(results))


def test_another_stack_beside_the_pair_reads_its_health_and_slowest_service():
    lines = report.stacks_compared(PAIR, [GENERIC])
    start = [line for line in lines if line.startswith("| | pair |")]
    assert start[0] == "| | pair | 0.40 | 0.90 | 0.30 |"
    assert "| | pair | 0.60 | 0.30 | 1.40 |" in lines  # kill -9: each topology's slowest service
