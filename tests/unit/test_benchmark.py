"""The benchmark's parsing, statistics and verdicts, on inputs captured from real lab containers.

Timings themselves are never asserted: the machines are noisy, and the benchmark reports ratios.
"""

from __future__ import annotations

import copy
import json
import re
import socket
import struct
import subprocess
import sys
from pathlib import Path

import pytest

from benchmark import engines, lab, load, report, stats
from tests.support.process import free_port, run, wait_for
from tests.support.project import ROOT

DATA = Path(__file__).parent / "data"
SAMPLE = ROOT / "results" / "sample" / "results.json"


def test_percentile_nearest_rank():
    values = list(range(1, 101))
    assert (stats.percentile(values, 50), stats.percentile(values, 95), stats.percentile(values, 99)) == (50, 95, 99)
    assert stats.percentile([7.0], 99) == 7.0


def test_percentile_of_nothing_is_an_error():
    with pytest.raises(ValueError, match="no values"):
        stats.percentile([], 50)


def test_summarize_reports_run_count():
    summary = stats.summarize([0.3, 0.1, 0.2, 0.4, 0.5])
    assert summary == {"n": 5, "median": 0.3, "p95": 0.5, "p99": 0.5, "min": 0.1, "max": 0.5}
    assert stats.summarize([]) == {"n": 0}


@pytest.mark.parametrize(("text", "mib"), [("49.61MiB", 49.61), ("512KiB", 0.5), ("1.5GiB", 1536.0),
                                           ("1048576B", 1.0)])
def test_parse_size(text, mib):
    assert stats.parse_size_mib(text) == pytest.approx(mib)


def test_parse_size_rejects_garbage():
    with pytest.raises(ValueError, match="not a size"):
        stats.parse_size_mib("lots")


def test_docker_stats_line_captured_from_a_lab_container():
    name, usage = (DATA / "docker-stats.txt").read_text().strip().split("\t")
    assert name.startswith("lab-")
    assert 1 < stats.parse_docker_stats_mem(usage) < 1024


def test_a_process_row_keeps_its_start_time_whole_and_its_command_line():
    text = ("      1       0 root     30564 Mon Dec  7 09:31:58 2026 /usr/bin/python3 /usr/bin/supervisord --nodaemon\n"
            "    845     842 www-data  2048 Mon Dec  7 09:32:21 2026 nginx: worker process\n")
    assert stats.parse_ps(text) == [
        {"pid": 1, "ppid": 0, "user": "root", "rss_mib": 30564 / 1024, "started": "Mon Dec 7 09:31:58 2026",
         "args": "/usr/bin/python3 /usr/bin/supervisord --nodaemon"},
        {"pid": 845, "ppid": 842, "user": "www-data", "rss_mib": 2.0, "started": "Mon Dec 7 09:32:21 2026",
         "args": "nginx: worker process"}]


def test_ps_from_the_systemd_container_finds_manager_and_services():
    rows = stats.parse_ps((DATA / "ps-systemd.txt").read_text())
    roles = {stats.role_of(str(row["args"])): row for row in rows}
    assert roles["systemd"]["pid"] == 1 and roles["systemd"]["user"] == "root"
    assert roles["client"]["user"] == "lab"
    assert all(row["rss_mib"] > 0 for row in rows)
    assert stats.role_of("/lib/systemd/systemd-journald") is None


def test_ps_from_the_single_container_finds_supervisord_and_services():
    rows = stats.parse_ps((DATA / "ps-single.txt").read_text())
    roles = {stats.role_of(str(row["args"])) for row in rows}
    assert {"supervisord", "server", "client"} <= roles


def test_client_log_lines_and_first_event():
    events = stats.parse_json_lines((DATA / "client-log.txt").read_text() + "\nnot json\n{broken\n")
    assert [e["event"] for e in events] == ["poll_ok"] * 3
    first = stats.parse_ts(events[0]["ts"])
    assert stats.first_event_after(events, "poll_ok", first) == first
    assert stats.first_event_after(events, "poll_ok", first + 0.001) == stats.parse_ts(events[1]["ts"])
    assert stats.first_event_after(events, "poll_ok", first, server_hostname="elsewhere") is None


def test_capabilities_of_the_hardened_server_unit_are_empty():
    caps = stats.status_capabilities((DATA / "proc-status-server.txt").read_text())
    assert caps == {"CapPrm": 0, "CapEff": 0, "CapBnd": 0}


def test_capabilities_count_bits():
    assert stats.status_capabilities("CapEff:\t00000000a80425fb\n")["CapEff"] == 14  # Docker's default set


def test_unit_security_reads_the_overall_exposure_and_the_checks_against_it():
    score, checks = stats.parse_unit_security((DATA / "systemd-analyze-security-unit.txt").read_text())
    assert score == 1.4
    assert checks["PrivateNetwork="] == 0.5 and checks["RestrictAddressFamilies=~AF_(INET|INET6)"] == 0.3
    assert "NoNewPrivileges=" not in checks  # a check the unit passes (marked ✓)
    assert len(checks) == 12
    assert [check for check, _ in stats.heaviest_checks(checks, 2)] == [
        "PrivateNetwork=", "RestrictAddressFamilies=~AF_(INET|INET6)"]


def test_unit_security_of_a_unit_systemd_does_not_know_is_an_error():
    with pytest.raises(ValueError, match="no overall exposure level"):
        stats.parse_unit_security("Unit nosuch.service not found.\n")


@pytest.fixture(scope="module")
def sample() -> dict:
    return json.loads(SAMPLE.read_text())


def test_sample_is_a_full_run(sample):
    assert set(sample["topologies"]) == {"single", "systemd", "split"}
    assert sample["settings"]["runs"] >= 5 and sample["settings"]["requests"] >= 1000
    for topo in sample["topologies"].values():
        assert topo["startup"]["client_s"]["n"] == sample["settings"]["runs"]
        assert topo["latency_ms"]["n"] + topo["latency_ms"]["failures"] == sample["settings"]["requests"]


def test_every_claim_gets_a_verdict(sample):
    rows = report.verdicts(sample)
    assert [claim for claim, *_ in rows] == [claim for claim, _ in report.CLAIMS]
    for claim, measured, method, verdict in rows:
        assert "not measured" not in measured + method + verdict, claim
        assert verdict.split(":")[0].split(",")[0] in ("holds", "does not hold", "depends", "holds in part",
                                                        "not tested here"), verdict


def test_memory_verdict_follows_the_figures(sample):
    single = report.total_idle_mib(sample["topologies"]["single"])
    split = report.total_idle_mib(sample["topologies"]["split"])
    verdict = dict((c, v) for c, _, _, v in report.verdicts(sample))["One container uses less memory than two"]
    assert verdict.startswith("holds") == (single < split)


def test_posture_checks_read_docker_inspect(sample):
    checks, table = report.posture_table(sample)
    privileged = sample["topologies"]["systemd"]["posture"]["lab-systemd"]["privileged"]
    assert table["systemd"]["5.4 not privileged"] is (not privileged)
    assert table["systemd"]["5.5/5.17 no host paths mounted"] is False  # /sys/fs/cgroup
    assert len(checks) == len(table["split"])


def test_privileged_recipe_gets_a_derived_column_when_it_could_not_run(sample):
    checks, table = report.posture_table(sample)
    if sample["topologies"]["systemd"]["posture"]["lab-systemd"]["privileged"]:
        assert report.PRIVILEGED_DERIVED not in table
        return
    derived = table[report.PRIVILEGED_DERIVED]
    # --privileged fails exactly these on top of the measured systemd container.
    assert {c for c in checks if table["systemd"][c] and not derived[c]} == {
        "5.4 not privileged", "5.3 no capabilities added", "5.21 default seccomp profile",
        "cgroups: root writes only its own"}
    assert all(table["split"].values()), "the hardened split passes every check"


def verdict_of(results: dict, claim: str) -> str:
    return dict((c, v) for c, _, _, v in report.verdicts(results))[claim]


def altered(sample: dict, **posture) -> dict:
    changed = copy.deepcopy(sample)
    changed["topologies"]["systemd"]["posture"]["lab-systemd"].update(posture)
    return changed


def test_isolation_verdict_follows_what_root_could_write(sample):
    claim = "systemd breaks isolation"
    own = altered(sample, cgroup_reach="its own cgroup only", privileged=False)
    every = altered(sample, cgroup_reach="every container's cgroups", privileged=False)
    assert verdict_of(own, claim).startswith("does not hold"), verdict_of(own, claim)
    assert verdict_of(every, claim).startswith("holds:"), verdict_of(every, claim)
    assert verdict_of(altered(own, privileged=True), claim).startswith("holds:")


def test_cgroup_posture_check_fails_when_root_reaches_other_containers(sample):
    check = dict(report.POSTURE_CHECKS)["cgroups: root writes only its own"]
    container = sample["topologies"]["systemd"]["posture"]["lab-systemd"]
    assert check(container | {"cgroup_reach": "its own cgroup only"})
    assert not check(container | {"cgroup_reach": "every container's cgroups"})
    assert not check(report.with_privileged(container))


def recipes_run(sample: dict, booting: set[str]) -> dict:
    changed = copy.deepcopy(sample)
    for row in changed["systemd_recipes"]:
        if row["recipe"] not in booting:
            row.update(refusal=f"lab-recipe-{row['recipe']}: the engine refused the {row['recipe']} systemd recipe: "
                               "no. Set LAB_SYSTEMD_RECIPE=auto ...")
        elif row["refusal"]:
            pytest.skip(f"the sample has no measurements of the {row['recipe']} recipe to reuse")
    return changed


def test_privileged_verdict_follows_the_recipe_table(sample):
    claim = "systemd needs --privileged"
    assert verdict_of(recipes_run(sample, {"own-slice"}), claim).startswith("does not hold")
    assert verdict_of(recipes_run(sample, {"host-rw"}), claim).startswith("does not hold")
    assert verdict_of(recipes_run(sample, set()), claim).startswith("not measured")


def test_recipe_table_has_a_row_per_recipe_and_says_why_one_was_refused(sample):
    lines = report.recipe_section(recipes_run(sample, {"own-slice", "host-rw"}))
    rows = [line for line in lines if line.startswith("| ") and not line.startswith("| recipe")]
    assert [row.split(" | ")[0] for row in rows] == [f"| {r['recipe']}" for r in sample["systemd_recipes"]]
    assert "its own cgroup only" in rows[0] and "every container's cgroups" in rows[1]
    assert all("refused by this engine: no" in row for row in rows[2:])


def test_scale_section_has_a_row_per_replica_count_and_the_contrast(sample):
    lines = report.scale_section(sample)
    rows = sample["swarm"]["rows"]
    assert [r["replicas"] for r in rows] == list(range(1, len(rows) + 1)) and len(rows) >= 2
    for row in rows:
        assert any(line.startswith(f"| Swarm, M={row['replicas']} |") for line in lines)
        # Every replica got a share of the load.
        assert len(row["requests_per_replica"]) == row["replicas"]
        assert all(n > 0 for n in row["requests_per_replica"].values())
    # A section measured apart from the rest of the run says so.
    apart = copy.deepcopy(sample)
    apart["swarm"]["measured_apart"] = "measured alone, for a test"
    assert "measured alone, for a test" in "\n".join(report.scale_section(apart))
    apart["swarm"].pop("measured_apart")
    assert "This section was" not in "\n".join(report.scale_section(apart))


def test_report_renders_with_charts(sample, tmp_path):
    path = report.write(sample, tmp_path)
    text = path.read_text()
    for heading in ("## Verdicts on the research notes", "## Privilege posture", "## Scale-out on Swarm",
                    "## Targets"):
        assert heading in text
    for chart in ("memory.png", "startup.png", "latency.png", "recovery.png"):
        assert (tmp_path / chart).stat().st_size > 1000, chart
        assert f"]({chart})" in text


def test_first_poll_of_restarted_client_skips_the_old_process():
    lines = (DATA / "client-log.txt").read_text().splitlines()
    old_ok, restart_ok = stats.parse_json_lines(lines[0])[0], stats.parse_json_lines(lines[2])[0]
    started = {"ts": stats.parse_json_lines(lines[1])[0]["ts"], "event": "started"}
    events = [old_ok, started, restart_ok]
    since = stats.parse_ts(old_ok["ts"])
    assert stats.first_poll_of_restarted_client(events, since) == stats.parse_ts(restart_ok["ts"])
    assert stats.first_poll_of_restarted_client([old_ok], since) is None, "no restart, no answer"


def test_exposure_section_lists_the_units_and_the_reference(sample):
    exposure = sample["topologies"]["systemd"]["unit_exposure"]
    lines = report.exposure_section(sample)
    assert set(exposure["units"]) == {"lab-server.service", "lab-client.service"}
    for unit, score in exposure["units"].items():
        assert any(line.startswith(f"| {unit} | {score:.1f} |") for line in lines), lines
        assert score < exposure["defaults"], "hardened units score below systemd's defaults"
    assert report.exposure_section({"topologies": {"single": {}}}) == []


def test_exposure_section_names_the_heaviest_checks_against_each_unit(sample):
    results = copy.deepcopy(sample)
    exposure = results["topologies"]["systemd"]["unit_exposure"]
    _, checks = stats.parse_unit_security((DATA / "systemd-analyze-security-unit.txt").read_text())
    exposure["checks_against"] = {"lab-server.service": checks}
    lines = report.exposure_section(results)
    server = next(line for line in lines if line.startswith("| lab-server.service |"))
    assert server.endswith("| `PrivateNetwork=` 0.5, `RestrictAddressFamilies=~AF_(INET\\|INET6)` 0.3, "
                           "`ProtectProc=` 0.2, `PrivateUsers=` 0.2 |"), server
    client = next(line for line in lines if line.startswith("| lab-client.service |"))
    assert client.endswith("| not recorded in this run |"), client


def test_readme_figures_are_the_samples(sample):
    """docs/benchmark.md's figures are generated from the sample, never typed: regenerate them with
    python -m benchmark.report --readme after a new sample."""
    text = (ROOT / report.FIGURES_DOC).read_text()
    assert report.README_BEGIN in text and report.README_END in text, f"{report.FIGURES_DOC} lost its markers"
    block = text.split(report.README_BEGIN, 1)[1].split(report.README_END, 1)[0].strip("\n")
    assert block.splitlines() == report.readme_block(sample, report.sample_stacks(ROOT / "results/sample")), \
        f"{report.FIGURES_DOC} differs from results/sample"


def met_of(results: dict, topology: str, target_start: str) -> bool | None:
    return next(met for name, target, _, met in report.targets(results)
                if name == topology and target.startswith(target_start))


def test_targets_flip_with_the_figures(sample):
    fast, slow = copy.deepcopy(sample), copy.deepcopy(sample)
    fast["topologies"]["single"]["startup"]["client_from_started_at_s"]["median"] = 0.1
    slow["topologies"]["single"]["startup"]["client_from_started_at_s"]["median"] = 0.2
    assert (met_of(fast, "single", "start"), met_of(slow, "single", "start")) == (True, False)
    fast["topologies"]["systemd"]["startup"]["client_from_started_at_s"]["median"] = 0.3
    assert met_of(fast, "systemd", "start") is True, "systemd's start target is 0.35 s"
    leaky = altered(sample, cgroup_reach="every container's cgroups")
    assert met_of(leaky, "systemd", "root in the container") is False
    assert met_of(altered(sample, cgroup_reach="its own cgroup only"), "systemd", "root in the container") is True


def test_start_shows_the_managers_share_where_there_is_a_manager(sample):
    """The start row names what the engine and the manager took of it; split has no manager to name."""
    shared = copy.deepcopy(sample)
    for topo in shared["topologies"].values():
        topo["startup"].pop("manager_s", None)
    shared["topologies"]["single"]["startup"]["manager_s"] = {"median": 0.33}
    measured = {name: text for name, target, text, _ in report.targets(shared) if target.startswith("start")}
    assert "; supervisord starting the server 0.33 s)" in measured["single"], measured["single"]
    assert "starting the server" not in measured["systemd"] + measured["split"], measured
    lines = report.markdown(shared, []).splitlines()
    row = next(line for line in lines if line.startswith("| start: from StartedAt to the manager"))
    assert row.split("|")[2:5] == [" 0.33 ", " n/a ", " n/a "], row


def test_unmeasured_targets_never_count_as_met(sample):
    partial = copy.deepcopy(sample)
    for topo in partial["topologies"].values():
        topo.pop("keep_alive_ms", None)
        topo.pop("slow_senders", None)
    rows = report.targets(partial)
    assert [met for _, target, _, met in rows if target.startswith(("keep-alive", "1,000 slow"))] == [None] * 6
    lines = report.markdown(partial, [])
    assert "| not measured |" in lines and "6 not measured in this run" in lines


def test_scale_verdict_follows_the_server_and_the_memory(sample):
    claim = "Split scales independently"
    cheap, dear, touched = copy.deepcopy(sample), copy.deepcopy(sample), copy.deepcopy(sample)
    for results, split_mib, untouched in ((cheap, 5.0, True), (dear, 50.0, True), (touched, 5.0, False)):
        for name, topo in results["topologies"].items():
            topo["scale"]["per_client_mib"] = split_mib if name == "split" else 10.0
        results["topologies"]["split"]["scale"]["server_untouched"] = untouched
    assert verdict_of(cheap, claim).startswith("holds:"), verdict_of(cheap, claim)
    assert verdict_of(dear, claim).startswith("holds in part"), verdict_of(dear, claim)
    assert verdict_of(touched, claim).startswith("does not hold"), verdict_of(touched, claim)


def test_simplicity_verdict_follows_processes_and_config_lines(sample):
    def shaped(single_lines: int, systemd_lines: int) -> dict:
        results = copy.deepcopy(sample)
        for name, lines in (("single", single_lines), ("systemd", systemd_lines)):
            results["topologies"][name]["logs"]["config_lines"] = {"lab-server": lines, "lab-client": lines}
        return results

    fewer_procs = report.simplicity_verdict(shaped(10, 40)["topologies"])[2]
    procs = {n: sum(len(p) for p in sample["topologies"][n]["processes"].values()) for n in ("single", "systemd")}
    if procs["single"] < procs["systemd"]:
        assert fewer_procs.startswith("holds:"), fewer_procs
        assert report.simplicity_verdict(shaped(40, 10)["topologies"])[2].startswith("depends"), fewer_procs
    else:
        assert fewer_procs.startswith("depends"), fewer_procs
        assert report.simplicity_verdict(shaped(40, 10)["topologies"])[2].startswith("does not hold")


def test_load_targets_flip_with_the_figures(sample):
    good, bad = copy.deepcopy(sample), copy.deepcopy(sample)
    slow = {"slow_connections": 1000, "held_to_the_end": 1000, "seconds": 5, "healthz_failures": 0,
            "healthz_ms": {"n": 90, "median": 1.0, "p99": 5.0}, "server_sockets_before": 0, "server_sockets_after": 0}
    good["topologies"]["single"]["keep_alive_ms"] = {"median": 0.2, "p99": 0.5}
    good["topologies"]["single"]["slow_senders"] = slow
    bad["topologies"]["single"]["keep_alive_ms"] = {"median": 0.2, "p99": 1.5}
    bad["topologies"]["single"]["slow_senders"] = {**slow, "held_to_the_end": 488}
    assert (met_of(good, "single", "keep-alive"), met_of(bad, "single", "keep-alive")) == (True, False)
    assert (met_of(good, "single", "1,000 slow"), met_of(bad, "single", "1,000 slow")) == (True, False)
    leaked = copy.deepcopy(good)
    leaked["topologies"]["single"]["slow_senders"]["server_sockets_after"] = 12
    assert met_of(leaked, "single", "1,000 slow") is False


@pytest.mark.parametrize("ref", [load.MINIMAL, load.FLOOR], ids=["minimal", "floor"])
def test_reference_server_answers_and_its_mark_finds_it(ref):
    """The benchmark starts each reference server with its command and stops it with `pkill -f MARK`: the
    server must answer 200 on the port, and the mark must match its command line and no other reference's."""
    assert len({r.mark for r in (load.MINIMAL, load.FLOOR)}) == 2, "two references share a mark"
    port = free_port()
    server = subprocess.Popen(ref.command(sys.executable, port))
    try:
        wait_for(lambda: load.answers(port, "/"), 10, f"the reference server on {port}")
        found = run("pgrep", "-f", ref.mark, check=False).stdout.split()
        assert str(server.pid) in found, f"pkill -f {ref.mark!r} would not stop the reference server"
        # wrk may reset its connections when it ends; the server must outlive that for the next run.
        with socket.create_connection(("127.0.0.1", port)) as sock:
            sock.sendall(b"GET / HTTP/1.1\r\nHost: lab\r\n\r\n")
            sock.recv(4096)
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        assert wait_for(lambda: load.answers(port, "/"), 10, "an answer after a reset"), "no answer after a reset"
    finally:
        server.kill()
        server.wait()


def test_keep_alive_row_names_the_floor_measured_beside_it(sample):
    results = copy.deepcopy(sample)
    results["topologies"]["systemd"]["keep_alive_ms"] = {"median": 0.1, "p99": 2.5, "floor_median": 0.04,
                                                         "floor_p99": 0.9}
    results["topologies"]["single"]["keep_alive_ms"] = {"median": 0.1, "p99": 0.5}
    cells = {topology: measured for topology, target, measured, _ in report.targets(results)
             if target.startswith("keep-alive")}
    assert cells["systemd"] == "2.50 ms (floor: a bare socket loop in the same place 0.90 ms)"
    assert cells["single"] == "0.50 ms"


def flipped(sample: dict, change) -> dict:
    results = copy.deepcopy(sample)
    change(results["topologies"])
    return results


def set_memory(topologies: dict, name: str, mib: float) -> None:
    for container in topologies[name]["memory_idle_mib"]:
        topologies[name]["memory_idle_mib"][container] = mib / len(topologies[name]["memory_idle_mib"])


@pytest.mark.parametrize(("claim", "holds", "fails"), [
    ("One container uses less memory than two",
     lambda t: (set_memory(t, "single", 10), set_memory(t, "split", 40)),
     lambda t: (set_memory(t, "single", 40), set_memory(t, "split", 10))),
    ("systemd has higher overhead than supervisord",
     lambda t: (set_memory(t, "systemd", 40), set_memory(t, "single", 10)),
     lambda t: (set_memory(t, "systemd", 10), set_memory(t, "single", 40))),
    ("Start-up: the single container starts fastest",
     lambda t: [t[n]["startup"]["client_s"].update(median=m) for n, m in (("single", 0.1), ("systemd", 0.5),
                                                                          ("split", 0.5))],
     lambda t: [t[n]["startup"]["client_s"].update(median=m) for n, m in (("single", 0.9), ("systemd", 0.5),
                                                                          ("split", 0.5))]),
    ("Logs are mixed in the single container",
     lambda t: t["single"]["logs"].update(streams_separate=False),
     lambda t: t["single"]["logs"].update(streams_separate=True, docker_logs_mixes_services=False)),
])
def test_each_verdict_flips_with_its_figures(sample, claim, holds, fails):
    yes, no = verdict_of(flipped(sample, holds), claim), verdict_of(flipped(sample, fails), claim)
    assert yes.startswith("holds"), yes
    assert no.startswith("does not hold"), no


def test_latency_verdict_flips_with_the_medians(sample):
    claim = next(c for c, k in report.CLAIMS if k == "latency")
    slower = flipped(sample, lambda t: (t["single"]["latency_ms"].update(median=0.5),
                                        t["split"]["latency_ms"].update(median=1.5)))
    faster = flipped(sample, lambda t: (t["single"]["latency_ms"].update(median=1.5),
                                        t["split"]["latency_ms"].update(median=0.5)))
    assert verdict_of(slower, claim).startswith("holds"), verdict_of(slower, claim)
    assert verdict_of(faster, claim).startswith("does not hold"), verdict_of(faster, claim)


def test_ranking_verdict_follows_the_posture_counts(sample, monkeypatch):
    claim = next(c for c, k in report.CLAIMS if k == "ranking")

    def counts(**passed):
        table = {n: {f"check {i}": i < k for i in range(14)} for n, k in passed.items()}
        return lambda results: ([f"check {i}" for i in range(14)], table)

    monkeypatch.setattr(report, "posture_table", counts(single=11, systemd=10, split=14))
    assert verdict_of(sample, claim).startswith("holds"), verdict_of(sample, claim)
    monkeypatch.setattr(report, "posture_table", counts(single=9, systemd=12, split=14))
    assert verdict_of(sample, claim).startswith("depends"), verdict_of(sample, claim)


def test_the_benchmark_reads_only_what_its_topologies_carry():
    """Every topo["key"] the benchmark reads is in what topologies() builds from the inventory: a key
    renamed or left out in tests/support/topology.py fails here, not minutes into `scripts/lab bench`."""
    # The modules that run topologies (report.py reads results, which it also calls topo).
    modules = ("run", "lab", "baseline", "swarm", "engines")
    pattern = r"""topo(?:\.get\(|\[)["']([a-z_]+)["']"""
    read = {key for module in modules for key in re.findall(pattern, (ROOT / f"benchmark/{module}.py").read_text())}
    for name, topo in lab.topologies().items():
        assert read <= set(topo), f"{name}: the benchmark reads {sorted(read - set(topo))}, which it lacks"


def test_sample_compares_both_engines(sample):
    assert set(report.measured_engines(sample)) == {"docker", "podman"}
    for by in sample["engines"].values():
        assert set(by) == set(sample["topologies"])


def advice(results: dict, need: str) -> str:
    return next(line for line in report.engine_advice(results) if line.startswith(f"- {need} "))


def test_engine_pick_follows_the_figures(sample):
    """The engine named for a need is the one with the lower figure in every topology; mixed is neither."""
    results = copy.deepcopy(sample)
    for name in results["topologies"]:
        results["engines"]["docker"][name]["startup"]["client_s"]["median"] = 1.0
        results["engines"]["podman"][name]["startup"]["client_s"]["median"] = 2.0
    assert "**docker**" in advice(results, "fast start")
    results["engines"]["podman"]["split"]["startup"]["client_s"]["median"] = 0.5
    assert "neither consistently" in advice(results, "fast start")
    for name in results["topologies"]:
        results["engines"]["podman"][name]["startup"]["client_s"]["median"] = 0.5
    assert "**podman**" in advice(results, "fast start") and "split 0.50x" in advice(results, "fast start")


def test_engine_posture_differences_are_named(sample):
    results = copy.deepcopy(sample)
    for engine in ("docker", "podman"):
        for container in results["engines"][engine]["single"]["posture"].values():
            container["cgroup_reach"] = "its own cgroup only"
    for container in results["engines"]["podman"]["single"]["posture"].values():
        container["cgroup_reach"] = "every container's cgroups"
    line = advice(results, "least privilege")
    assert "**docker**" in line and "single: 'cgroups: root writes only its own'" in line


def test_engine_comparison_says_what_it_could_not_measure(sample):
    results = copy.deepcopy(sample)
    results["engines"]["podman"] = {"unavailable": "podman is not installed"}
    lines = report.engine_section(results)
    assert "- podman: not measured: podman is not installed" in lines
    assert any(line.startswith("Which engine for which need: not computed") for line in lines)
    assert "| | single: docker | systemd: docker | split: docker |" in lines


def test_a_stop_is_clean_only_with_both_services_seen_stopping_on_sigterm():
    ok = {"got_sigterm": True, "exited_cleanly": True}
    assert engines.clean_stop({"services": {"lab-split-server/server": ok, "lab-split-client/client": ok}})
    assert not engines.clean_stop({"services": {"lab-split-server/server": ok}}), "a log not read is not clean"
    assert not engines.clean_stop({"services": {"c/server": ok, "c/client": ok | {"got_sigterm": False}}})
