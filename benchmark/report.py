"""Turn results.json into report.md and PNG charts: a verdict for every claim of the research notes.

Usage: python -m benchmark.report results/<timestamp>/results.json
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

from benchmark import stats
from tests.support.posture import POSTURE_CHECKS, PRIVILEGED_DERIVED, judge, with_privileged

NAMES = ("single", "systemd", "split")

# The lab's time targets, read by the Targets table and drawn on the charts.
# By manager: StartedAt to the first client success (systemd boots a whole init first).
START_TARGET_S = {"systemd": 0.35, "supervisord": 0.15, "none": 0.15}
RECOVERY_TARGET_S = 1.0  # kill -9 to back, p95

# Claims of the original research notes, in their words, and the lab's reading of each.
CLAIMS = [
    ("systemd needs --privileged", "privileged"),
    ("One container uses less memory than two", "memory"),
    ("Localhost is faster than the bridge", "latency"),
    ("systemd has higher overhead than supervisord", "overhead"),
    ("Logs are mixed in the single container", "logs"),
    ("Split scales independently", "scale"),
    ("supervisord is simpler", "simplicity"),
    ("systemd breaks isolation", "isolation"),
    ("Security: systemd low, supervisord medium, split high", "ranking"),
    ("Start-up: the single container starts fastest", "startup"),
]

def fmt(value: float | None, unit: str = "", digits: int = 2) -> str:
    return "n/a" if value is None else f"{value:.{digits}f}{unit}"


def total_idle_mib(topo: dict[str, Any]) -> float:
    return sum(topo["memory_idle_mib"].values())


def rss_by_role(topo: dict[str, Any]) -> dict[str, float]:
    out: dict[str, float] = {}
    for rows in topo["processes"].values():
        for row in rows:
            role = stats.role_of(row["args"]) or "other"
            out[role] = out.get(role, 0.0) + row["rss_mib"]
    return out


def exposure_section(results: dict[str, Any]) -> list[str]:
    """The systemd units' `systemd-analyze security` scores beside a unit with systemd's defaults."""
    exposure = results["topologies"].get("systemd", {}).get("unit_exposure")
    if not exposure:
        return []
    lines = ["", "systemd units, `systemd-analyze security` overall exposure (0 is the most restricted, 10 the "
             f"least; the lab aims at {stats.UNIT_EXPOSURE_MAX} or lower):", "",
             "| unit | exposure | the heaviest checks against it (systemd's weight) |", "|---|---|---|"]
    against = exposure.get("checks_against", {})

    def heaviest(checks: dict[str, float]) -> str:
        # A | in a check's name is escaped: in a table it would end the cell.
        return ", ".join("`" + check.replace("|", "\\|") + f"` {weight:g}"
                         for check, weight in stats.heaviest_checks(checks))

    lines += [f"| {unit} | {score:.1f} | "
              + (heaviest(against[unit]) if unit in against else "not recorded in this run") + " |"
              for unit, score in exposure["units"].items()]
    lines += [f"| a unit with systemd's defaults (transient, same container) | {exposure['defaults']:.1f} | |"]
    return lines


def posture_table(results: dict[str, Any]) -> tuple[list[str], dict[str, dict[str, bool]]]:
    """Per topology, each check passes only if every container of the topology passes it.

    When the systemd topology ran without --privileged (the engine refused the privileged recipe), the
    privileged recipe gets a column derived from it: the same container with privileged set.
    """
    table: dict[str, dict[str, bool]] = {}
    for name, topo in results["topologies"].items():
        if "posture" not in topo:
            continue
        table[name] = judge(topo["posture"].values())
        if name == "systemd" and not any(c["privileged"] for c in topo["posture"].values()):
            table[PRIVILEGED_DERIVED] = judge(map(with_privileged, topo["posture"].values()))
    return [check for check, _ in POSTURE_CHECKS], table


def systemd_recipe(results: dict[str, Any]) -> str:
    """The recipe the lab's systemd container ran with (its label), and why, from the recipe table."""
    posture = results["topologies"].get("systemd", {}).get("posture", {}).get("lab-systemd")
    if not posture:
        return "not run"
    recipe = posture["systemd_recipe"]
    booted = [r["recipe"] for r in results.get("systemd_recipes", []) if not r["refusal"] and r["state"] == "running"]
    why = ("the tightest recipe that boots here" if booted and booted[0] == recipe else
           "chosen by setting" if booted else "see the recipe table")
    return f"{recipe} ({why})"


def recipe_section(results: dict[str, Any]) -> list[str]:
    """systemd's cgroup recipes side by side (roles/lab_container), each deployed and measured the same way."""
    rows_ = results.get("systemd_recipes")
    if not rows_:
        return []
    checks = len(POSTURE_CHECKS)
    lines = ["", "## systemd's cgroup recipes, side by side", "",
             "| recipe | boots | kill -9: back within (p95 server / client s) | root in the container can write | "
             "docker stop (s) | services stopped on SIGTERM | posture checks passed |", "|---|---|---|---|---|---|---|"]
    for r in rows_:
        if r["refusal"]:
            reason = r["refusal"].split("systemd recipe: ", 1)[-1].split(". Set ")[0]
            lines.append(f"| {r['recipe']} | refused by this engine: {reason} | not run | "
                         f"{with_privileged({})['cgroup_reach'] if r['recipe'] == 'privileged' else 'not run'} "
                         "(derived) | not run | not run | not run |")
            continue
        back = r["kill9_back_s"]
        stopped = all(s["exited_cleanly"] for s in r["stop"]["services"].values())
        passed = sum(test(r["posture"]) for _, test in POSTURE_CHECKS)
        lines.append(f"| {r['recipe']} | {r['state']}, {len(r['failed_units'])} failed units | "
                     f"{back['server']['p95']:.2f} / {back['client']['p95']:.2f} | {r['posture']['cgroup_reach']} | "
                     f"{r['stop']['stop_s']:.2f} | {'yes' if stopped else 'NO'} | {passed}/{checks} |")
    lines += ["", "own-slice: host cgroup namespace; /sys/fs/cgroup and every hierarchy under it bound read-only, "
              "only the container's own cgroup parent (/container-topology-lab/<name>) read-write where systemd "
              "tracks its units. host-rw: the whole /sys/fs/cgroup read-write. privileged: host-rw plus "
              "--privileged. podman-systemd: the same image and roles on Podman with --systemd=always, no "
              "privileges and no cgroup mount of the lab's. 'root in the container can write' is measured as root "
              "inside it, beside a neighbour container."]
    return lines


def scale_verdict(t: dict[str, Any]) -> tuple[str, str, str]:
    """Split scales independently: extra clients leave the server's process alone, at what memory per client."""
    per = {n: t[n]["scale"]["per_client_mib"] for n in NAMES if n in t}
    untouched = t["split"]["scale"]["server_untouched"]
    measured = "; ".join(f"{n}: +{v:.1f} MiB per extra client" for n, v in per.items()) + \
        f"; split's server process the same before and after: {'yes' if untouched else 'no'}"
    method = ("two more clients against the one server: memory before and after, the server's pid before and "
              "after; holds when the server's process is untouched and split's memory per extra client is no more "
              "than the other topologies', in part when only the first is true")
    others = {n: v for n, v in per.items() if n != "split"}
    if not untouched:
        verdict = "does not hold: adding clients restarted or replaced the split server"
    elif not others or per["split"] <= min(others.values()):
        verdict = "holds: split adds client containers without touching the server, at no more memory per client"
    else:
        cheapest = min(others, key=others.get)
        verdict = (f"holds in part: split adds clients without touching the server, but each costs "
                   f"{per['split']:.1f} MiB as a container against {others[cheapest]:.1f} MiB as a process in "
                   f"{cheapest}")
    return measured, method, verdict


def simplicity_verdict(t: dict[str, Any]) -> tuple[str, str, str]:
    """supervisord is simpler than systemd: processes in the container and configuration lines per service."""
    procs = {n: sum(len(p) for p in t[n]["processes"].values()) for n in NAMES if n in t}
    lines = {n: sum(t[n]["logs"]["config_lines"].values()) / len(t[n]["logs"]["config_lines"])
             for n in ("single", "systemd")}
    measured = (", ".join(f"{n}: {procs[n]} processes in {t[n]['containers']} container(s)" for n in procs)
                + f"; config lines per service: supervisord {lines['single']:.0f}, systemd {lines['systemd']:.0f}")
    method = ("ps in each container; the deployed program and unit files without comments or blank lines; holds "
              "when supervisord needs fewer of both than systemd, depends when fewer of one")
    fewer = {"processes": procs["single"] < procs["systemd"],
             "config lines per service": lines["single"] < lines["systemd"]}
    if all(fewer.values()):
        verdict = "holds: supervisord needs fewer processes and fewer config lines per service than systemd"
    elif not any(fewer.values()):
        verdict = "does not hold: systemd needs no more processes and no more config lines per service"
    else:
        better = next(k for k, v in fewer.items() if v)
        worse = next(k for k, v in fewer.items() if not v)
        verdict = f"depends: supervisord needs fewer {better} but not fewer {worse}"
    if "split" in procs:
        verdict += f"; split has no manager at all ({procs['split']} processes)"
    return measured, method, verdict


def verdicts(results: dict[str, Any]) -> list[tuple[str, str, str, str]]:  # noqa: PLR0915 - one branch a claim
    """(claim, measured, method, verdict) for every claim."""
    t = results["topologies"]
    rows = []
    for claim, key in CLAIMS:
        measured = method = verdict = "not measured in this run"
        if key == "privileged" and results.get("systemd_recipes"):
            rows_ = results["systemd_recipes"]
            booted = [r["recipe"] for r in rows_ if not r["refusal"] and r["state"] == "running"]
            unprivileged = [r for r in booted if r != "privileged"]
            measured = "; ".join(f"{r['recipe']}: " + (r["state"] if not r["refusal"] else "refused by the engine")
                                 for r in rows_)
            method = ("each recipe deployed by the lab's playbooks; systemctl is-system-running (recipe table); "
                      "holds when only the privileged recipe reaches running")
            verdict = (f"does not hold: systemd reached running without --privileged ({', '.join(unprivileged)})"
                       if unprivileged else "holds: only the privileged recipe booted on this engine"
                       if booted else "not measured: no recipe booted")
        elif key == "memory" and {"single", "split"} <= t.keys():
            single, split = total_idle_mib(t["single"]), total_idle_mib(t["split"])
            measured = f"idle: single {single:.1f} MiB, split {split:.1f} MiB (2 containers)"
            method = ("docker stats memory usage per container, 3 s after the first client success; holds when the one "
                      "container's total is below the two containers'")
            verdict = "holds" if single < split else f"does not hold: one container uses {single / split:.1f}x the two"
        elif key == "latency" and {"single", "split"} <= t.keys():
            local, bridge = t["single"]["latency_ms"], t["split"]["latency_ms"]
            measured = (f"p50 {local['median']:.2f} vs {bridge['median']:.2f} ms, p99 {local['p99']:.2f} vs "
                        f"{bridge['p99']:.2f} ms ({local['n']} requests each)")
            method = ("the client's own poll() run inside the client container, sequential requests; holds when "
                      "split's median is above single's (the comparison with the poll interval is an argument)")
            diff = bridge["median"] - local["median"]
            verdict = (f"holds, by {diff:.2f} ms per request at the median" if diff > 0 else
                       "does not hold in this run") + "; small next to the 5 s poll interval"
        elif key == "overhead" and {"single", "systemd"} <= t.keys():
            sup, sysd = total_idle_mib(t["single"]), total_idle_mib(t["systemd"])
            sup_rss, sysd_rss = rss_by_role(t["single"]), rss_by_role(t["systemd"])
            measured = (f"container idle {sysd:.1f} MiB (systemd) vs {sup:.1f} MiB (supervisord); manager RSS "
                        f"{sysd_rss.get('systemd', 0):.1f} vs {sup_rss.get('supervisord', 0):.1f} MiB; "
                        f"start {t['systemd']['startup']['client_s']['median']:.2f} vs "
                        f"{t['single']['startup']['client_s']['median']:.2f} s")
            method = ("docker stats; ps RSS per process; start-up medians; holds when systemd's container uses more "
                      "memory")
            verdict = "holds" if sysd > sup else "does not hold: supervisord (a Python process) costs more memory"
        elif key == "logs" and "single" in t:
            logs = t["single"]["logs"]
            measured = (f"docker logs mixes services: {logs['docker_logs_mixes_services']}; one stream per service: "
                        f"{logs['streams_separate']}")
            method = ("server and client lines counted in docker logs and in supervisord's per-program files; does not "
                      "hold when each service has a stream of its own and docker logs mixes none")
            verdict = ("does not hold: supervisord keeps one log per program, but docker logs shows neither"
                       if logs["streams_separate"] and not logs["docker_logs_mixes_services"] else "holds")
        elif key == "scale" and "split" in t and "server_untouched" in t["split"]["scale"]:
            measured, method, verdict = scale_verdict(t)
        elif key == "simplicity" and {"single", "systemd"} <= t.keys() and t["single"]["logs"].get("config_lines"):
            measured, method, verdict = simplicity_verdict(t)
        elif key == "isolation" and "systemd" in t:
            c = t["systemd"]["posture"]["lab-systemd"]
            writable = c["writable_host_mounts"]
            measured = (f"recipe {c['systemd_recipe'] or 'none'}; privileged {c['privileged']}; root in it can write "
                        f"{c['cgroup_reach']}; host paths writable: {', '.join(writable) or 'none'}")
            method = ("as root in the container: rewrite a neighbour's cpu.shares and pids.max, create a cgroup at "
                      "each hierarchy's root, check release_agent's mount flags; docker inspect; holds when it is "
                      "privileged or writes every container's cgroups, does not when it writes its own only")
            verdict = ("holds: root in it can write every container's cgroups"
                       if c["privileged"] or c["cgroup_reach"] == "every container's cgroups" else
                       f"does not hold: with the {c['systemd_recipe']} recipe root in it writes {c['cgroup_reach']}"
                       if c["cgroup_reach"] == "its own cgroup only" else f"holds in part: {c['cgroup_reach']}")
        elif key == "ranking":
            checks, table = posture_table(results)
            scores = {n: sum(v.values()) for n, v in table.items() if n != PRIVILEGED_DERIVED}
            measured = ", ".join(f"{n}: {s}/{len(checks)} posture checks" for n, s in scores.items())
            method = ("CIS Docker Benchmark section 5 checks from docker inspect and /proc/<pid>/status; holds when "
                      "the counts order systemd < single < split")
            order = sorted(scores, key=scores.get)
            verdict = ("holds" if order == ["systemd", "single", "split"] else "depends") + \
                f": measured order, least to most hardened: {' < '.join(order)}"
        elif key == "startup":
            medians = {n: t[n]["startup"]["client_s"]["median"] for n in NAMES if n in t}
            measured = ", ".join(f"{n} {v:.2f}s" for n, v in medians.items())
            method = (f"docker run to the client's first logged success, median of {results['settings']['runs']}; "
                      "holds when single's median is the lowest")
            fastest = min(medians, key=medians.get)
            verdict = "holds" if fastest == "single" else f"does not hold: {fastest} is fastest"
        rows.append((claim, measured, method, verdict))
    return rows


def targets(results: dict[str, Any]) -> list[tuple[str, str, str, bool | None]]:
    """(topology, target, measured, met) for each of the lab's targets. met is computed from the figures;
    None means this run did not measure it, which never counts as met."""
    rows: list[tuple[str, str, str, bool | None]] = []
    for name, topo in results["topologies"].items():
        start_limit = START_TARGET_S[topo["manager"]]
        start = topo["startup"]["client_from_started_at_s"]["median"]
        rec = topo["recovery_s"]
        back = max(rec["server"]["p95"], rec["client"]["p95"])
        stop = topo["stop"]
        clean = all(s["exited_cleanly"] for s in stop["services"].values())
        rss = rss_by_role(topo)
        thr = topo["throughput"]
        ratio = thr["ratio_to_minimal"] or 0.0
        p99 = thr["lab_latency_ms"].get("p99")
        keep_p99 = topo.get("keep_alive_ms", {}).get("p99")
        keep_floor = topo.get("keep_alive_ms", {}).get("floor_p99")
        floor = topo.get("docker_run_floor_s", {}).get("median")
        manager = topo["startup"].get("manager_s", {}).get("median")
        shares = []  # what the engine and the manager took of the start
        if floor is not None:
            shares.append(f"engine floor {fmt(floor, ' s')}")
        if manager is not None:
            shares.append(f"{topo['manager']} starting the server {fmt(manager, ' s')}")
        dep = topo["deploy"]
        rows += [
            (name, "start: from the engine's StartedAt to the client's first success "
                   f"<= {START_TARGET_S['none']} s (systemd {START_TARGET_S['systemd']} s)",
             fmt(start, " s") + (f" ({'; '.join(shares)})" if shares else ""),
             start <= start_limit),
            (name, f"kill -9: back within {RECOVERY_TARGET_S:g} s (p95 of server and client)",
             f"{fmt(rec['server']['p95'], ' s')} / {fmt(rec['client']['p95'], ' s')}", back <= RECOVERY_TARGET_S),
            (name, "docker stop under 1 s, every service exiting on SIGTERM",
             f"{fmt(stop['stop_s'], ' s')}, every service on SIGTERM: {'yes' if clean else 'no'}",
             stop["stop_s"] < 1.0 and clean),
            (name, "throughput at 20 connections >= 3x a minimal stdlib server", f"{ratio:.2f}x", ratio >= 3.0),
            (name, "p99 at 20 connections < 10 ms", fmt(p99, " ms"), p99 is not None and p99 < 10.0),
            (name, "idle RSS <= 12 MiB, server and client",
             f"{fmt(rss.get('server'), ' MiB', 1)} / {fmt(rss.get('client'), ' MiB', 1)}",
             max(rss.get("server", 99.0), rss.get("client", 99.0)) <= 12.0),
            (name, "keep-alive p99 < 1 ms", "not measured" if keep_p99 is None else fmt(keep_p99, " ms") + (
                f" (floor: a bare socket loop in the same place {fmt(keep_floor, ' ms')})" if keep_floor is not None
                else ""),
             None if keep_p99 is None else keep_p99 < 1.0),
            (name, "1,000 slow senders held, /healthz p99 < 100 ms", slow_cell(topo.get("slow_senders")),
             slow_held(topo.get("slow_senders"))),
            (name, "converge <= 1.5x a plain Dockerfile build", fmt(dep.get("converge_to_baseline_ratio"), "x"),
             dep.get("converge_to_baseline_ratio") is not None and dep["converge_to_baseline_ratio"] <= 1.5),
            (name, "deploy re-run under 15 s with changed=0",
             f"changed={dep['warm_changed']} ({fmt(dep['converge_warm_s'], ' s', 1)})",
             dep["warm_changed"] == 0 and dep["converge_warm_s"] < 15.0),
        ]
        if topo["manager"] == "systemd":
            reach = topo["posture"]["lab-systemd"]["cgroup_reach"]
            exposure = topo.get("unit_exposure")
            worst = max(exposure["units"].values()) if exposure else None
            rows += [(name, "root in the container writes only its own cgroup", reach,
                      reach == "its own cgroup only"),
                     (name, f"unit exposure (systemd-analyze security) <= {stats.UNIT_EXPOSURE_MAX}", fmt(worst, "", 1),
                      worst is not None and worst <= stats.UNIT_EXPOSURE_MAX)]
    return rows


def slow_cell(slow: dict[str, Any] | None) -> str:
    if not slow:
        return "not measured"
    return (f"{slow['held_to_the_end']} of {slow['slow_connections']} / {fmt(slow['healthz_ms'].get('p99'))} "
            f"({slow['healthz_failures']} failed)")


def slow_held(slow: dict[str, Any] | None) -> bool | None:
    """Every slow sender held, /healthz always answered within 100 ms at p99, and no socket left after."""
    if not slow or not slow["healthz_ms"].get("n"):
        return None
    return (slow["held_to_the_end"] == slow["slow_connections"] and slow["healthz_failures"] == 0
            and slow["healthz_ms"]["p99"] < 100.0 and slow["server_sockets_after"] <= slow["server_sockets_before"])


def load_notes(results: dict[str, Any]) -> list[str]:
    """How the load was generated, from the settings and figures of this run."""
    first = next((t for t in results["topologies"].values() if "throughput" in t), None)
    if first is None:
        return []
    tp = first["throughput"]
    if "generator" not in tp:
        return []
    notes = [f"- Throughput and its p99: {tp['generator']}, {tp['connections']} connections for "
             f"{tp['seconds']:g} s, a connection per request (as the lab's client polls), against the lab server and "
             "then a minimal stdlib server (ThreadingHTTPServer) with the same listen backlog, 128. The load "
             "generator is a separate process; no figure comes from threads of the measuring process."]
    slow = first.get("slow_senders")
    if slow:
        notes.append(f"- Slow senders: {slow['slow_connections']} connections each sending a byte of a request "
                     f"head a second for {slow['seconds']:g} s, while a normal client asked /healthz every 50 ms "
                     "on fresh connections; afterwards the server's sockets are counted again.")
    return notes


def met_cell(met: bool | None) -> str:
    return "not measured" if met is None else "met" if met else "**missed**"


def charts(results: dict[str, Any], out_dir: Path) -> list[str]:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    t = results["topologies"]
    names = [n for n in NAMES if n in t]
    made = []

    def save(fig, ax, name: str, ylabel: str, title: str, *, legend: bool = True) -> None:
        ax.set_ylabel(ylabel)
        ax.set_title(title)
        if legend:
            ax.legend(fontsize=8)
        fig.tight_layout()
        fig.savefig(out_dir / name, dpi=100)
        made.append(name)

    fig, ax = plt.subplots(figsize=(7, 4))
    roles = ["supervisord", "waker", "systemd", "server", "client", "other"]
    bottom = [0.0] * len(names)
    for role in roles:
        values = [rss_by_role(t[n]).get(role, 0.0) for n in names]
        ax.bar(names, values, bottom=bottom, label=role)
        bottom = [b + v for b, v in zip(bottom, values, strict=True)]
    ax.plot(names, [total_idle_mib(t[n]) for n in names], "kD", label="container total (docker stats)")
    ax.set_ylim(0, max(bottom + [total_idle_mib(t[n]) for n in names]) * 1.45)  # room for the legend
    save(fig, ax, "memory.png", "MiB at idle", "Memory per topology: RSS by process, container total")

    fig, ax = plt.subplots(figsize=(7, 4))
    bars = {"server_s": "server answers (after docker run)", "client_s": "client's first success (after docker run)",
            "client_from_started_at_s": "client's first success (after StartedAt)"}
    width = 1 / (len(bars) + 1)
    for i, (key, label) in enumerate(bars.items()):
        med = [t[n]["startup"][key]["median"] for n in names]
        p95 = [t[n]["startup"][key]["p95"] - t[n]["startup"][key]["median"] for n in names]
        ax.bar([x + i * width for x in range(len(names))], med, width, yerr=[[0] * len(names), p95],
               label=label, capsize=4)
    last = (len(bars) - 1) * width  # the StartedAt bar, the one the target is about
    for x, n in enumerate(names):
        ax.hlines(START_TARGET_S[t[n]["manager"]], x + last - width / 2, x + last + width / 2, colors="k",
                  linestyles="--", label="target" if x == 0 else None)
    ax.set_xticks([x + last / 2 for x in range(len(names))], names)
    save(fig, ax, "startup.png", "seconds (median, bar to p95)", "Start-up")

    fig, ax = plt.subplots(figsize=(7, 4))
    ax.boxplot([t[n]["latency_raw"] for n in names], showfliers=False)
    ax.set_xticks(range(1, len(names) + 1), [f"{n}\n({'bridge' if n == 'split' else 'localhost'})" for n in names])
    save(fig, ax, "latency.png", "ms per request (client's poll)",
         f"Request latency, {results['settings']['requests']} sequential requests", legend=False)

    fig, ax = plt.subplots(figsize=(7, 4))
    for i, role in enumerate(("server", "client")):
        ax.bar([x + i * 0.4 for x in range(len(names))], [t[n]["recovery_s"][role]["median"] for n in names], 0.4,
               label=f"{role} (median)")
        for x, n in enumerate(names):
            ax.plot([x + i * 0.4] * len(t[n]["recovery_s"][role]["raw"]), t[n]["recovery_s"][role]["raw"], "k.")
    ax.axhline(RECOVERY_TARGET_S, color="grey", linestyle="--", label=f"target {RECOVERY_TARGET_S:g} s")
    ax.set_xticks([x + 0.2 for x in range(len(names))], names)
    save(fig, ax, "recovery.png", "seconds from kill -9 to serving / polling again",
         "Recovery after kill -9 (dots: every run)")
    plt.close("all")
    return made


def markdown(results: dict[str, Any], pictures: list[str]) -> str:
    m = results["machine"]
    t = results["topologies"]
    lines = [
        "# Container topology lab: measured comparison", "",
        f"Run {results['started']}, {results['duration_s']:.0f} s. Machine: {m['cores']} cores, kernel {m['kernel']}, "
        f"Docker {m['engine']} ({m['storage_driver']}, cgroup v{m['cgroup_version']}, {m['cgroup_driver']}); "
        f"base image {m['base_image']}; systemd recipe: **{systemd_recipe(results)}**.",
        "Every figure below was measured in this run, side by side; timings are medians of "
        f"{results['settings']['runs']} runs unless said otherwise.", "",
        "## Verdicts on the research notes", "",
        "| claim | measured | method | verdict |", "|---|---|---|---|",
    ]
    lines += [f"| {c} | {me} | {mt} | {v} |" for c, me, mt, v in verdicts(results)]
    lines += ["", *[f"![{p}]({p})" for p in pictures], "", "## Figures per topology", "",
              "| | " + " | ".join(t) + " |", "|---|" + "---|" * len(t)]

    def row(label: str, get) -> str:
        return f"| {label} | " + " | ".join(get(v) for v in t.values()) + " |"

    lines += [
        row("containers", lambda v: str(v["containers"])),
        row("image size (MiB)", lambda v: ", ".join(f"{s:.0f}" for s in v["image_mib"].values())),
        row("start: server answers (median / p95 s)",
            lambda v: f"{v['startup']['server_s']['median']:.2f} / {v['startup']['server_s']['p95']:.2f}"),
        row("start: client's first success (median / p95 s)",
            lambda v: f"{v['startup']['client_s']['median']:.2f} / {v['startup']['client_s']['p95']:.2f}"),
        row("start: from the engine's StartedAt to client success (median s)",
            lambda v: f"{v['startup']['client_from_started_at_s']['median']:.2f}"),
        row("start: from StartedAt to the manager starting the server (median s)",
            lambda v: f"{v['startup']['manager_s']['median']:.2f}" if "manager_s" in v["startup"] else "n/a"),
        row("engine floor: docker run --rm of /bin/true (median s)",
            lambda v: f"{v['docker_run_floor_s']['median']:.2f}" if "docker_run_floor_s" in v else "n/a"),
        row("memory idle, containers (MiB)", lambda v: f"{total_idle_mib(v):.1f}"),
        row("memory under load (MiB)", lambda v: f"{sum(v['memory_load_mib'].values()):.1f}"),
        row("RSS by process (MiB)", lambda v: ", ".join(f"{k} {r:.1f}" for k, r in rss_by_role(v).items())),
        row("processes", lambda v: str(sum(len(p) for p in v["processes"].values()))),
        row("latency p50 / p99 (ms)", lambda v: f"{v['latency_ms']['median']:.2f} / {v['latency_ms']['p99']:.2f}"),
        row("throughput (req/s) / minimal server", lambda v: f"{v['throughput']['lab_rps']:.0f} / "
            f"{v['throughput']['minimal_rps']:.0f}"),
        row("p99 under load: lab / minimal server (ms)",
            lambda v: f"{v['throughput']['lab_latency_ms']['p99']:.1f} / "
            f"{v['throughput']['minimal_latency_ms']['p99']:.1f}"),
        row("keep-alive, one connection: p50 / p99 (ms)",
            lambda v: " / ".join(fmt(v.get("keep_alive_ms", {}).get(k)) for k in ("median", "p99"))),
        row("keep-alive floor, a bare socket loop: p50 / p99 (ms)",
            lambda v: " / ".join(fmt(v.get("keep_alive_ms", {}).get(k)) for k in ("floor_median", "floor_p99"))),
        row("slow senders held to the end / /healthz p99 (ms) meanwhile", lambda v: slow_cell(v.get("slow_senders"))),
        row("recovery server / client (median s)", lambda v: f"{v['recovery_s']['server']['median']:.2f} / "
            f"{v['recovery_s']['client']['median']:.2f}"),
        row("docker stop (s)", lambda v: f"{v['stop']['stop_s']:.2f}"),
        row("services stopped on SIGTERM", lambda v: ", ".join(
            f"{k.split('/')[-1]} {'yes' if s['exited_cleanly'] else 'NO'}" for k, s in v["stop"]["services"].items())),
        row("converge cold / warm (s)", lambda v: f"{v['deploy']['converge_cold_s']:.1f} / "
            f"{v['deploy']['converge_warm_s']:.1f}"),
        row("Dockerfile build + run (s)", lambda v: f"{v['deploy']['baseline_total_s']:.1f}"),
        row("logs: one stream per service", lambda v: "yes" if v["logs"]["streams_separate"] else "no"),
        row("manager config lines per service", lambda v: ", ".join(
            f"{k} {n}" for k, n in v["logs"].get("config_lines", {}).items()) or "none (no manager)"),
        row("+2 clients (MiB)", lambda v: f"{v['scale']['added_mib']:.1f}"),
    ]
    checks, table = posture_table(results)
    lines += ["", "## Privilege posture (CIS Docker Benchmark, section 5)", "",
              "| check | " + " | ".join(table) + " |", "|---|" + "---|" * len(table)]
    lines += [f"| {c} | " + " | ".join("pass" if table[n][c] else "**fail**" for n in table) + " |" for c in checks]
    if PRIVILEGED_DERIVED in table:
        lines += ["", f"'{PRIVILEGED_DERIVED}': this engine refused --privileged, so the privileged recipe "
                  "did not run. "
                  "The column is the measured systemd container's posture with --privileged added: it grants every "
                  "capability and every host device and turns seccomp off, which the flags do not list, and the "
                  "recipe's read-write /sys/fs/cgroup lets root write every container's cgroups."]
    lines += recipe_section(results)
    lines += exposure_section(results)
    lines += scale_section(results)
    lines += engine_section(results)
    rows_ = targets(results)
    measured_ = [met for *_, met in rows_ if met is not None]
    lines += ["", "## Targets", "", f"{sum(measured_)} of {len(measured_)} measured targets met; "
              f"{len(rows_) - len(measured_)} not measured in this run.", "",
              "| topology | target | measured | met |", "|---|---|---|---|"]
    lines += [f"| {a} | {b} | {c} | {met_cell(met)} |" for a, b, c, met in rows_]
    lines += ["", "How the figures were taken:",
              "- Recovery in split goes through the engine's restart policy: Docker waits 100 ms before a restart "
              "and doubles the wait each time a container dies within 10 s of its start. Each kill here is a single "
              "crash, made once the container has run 10 s; a crash loop waits 0.2, 0.4, 0.8 s... more each "
              "time. Every run's value is in recovery.png.",
              "- Start-up includes the engine's own cost: `docker run --rm` of /bin/true alone takes the "
              "'engine floor' above; the row measured from the engine's StartedAt shows the containers' own share.",
              *load_notes(results),
              "- supervisord's start, restart and stop times include supervisord-waker; without it "
              "supervisord acts on each child event only at its 1 s poll timeout.",
              "", "Raw data: results.json. Timed figures are not asserted in tests; the machine is noisy, "
              "so only ratios within one run are compared.", ""]
    return "\n".join(lines)


def scale_section(results: dict[str, Any]) -> list[str]:
    """Throughput and memory as the Swarm server service grows, beside the single-host topologies."""
    swarm = results.get("swarm")
    if not swarm or not swarm["rows"]:
        return []
    rows = swarm["rows"]
    base = rows[0]["rps"]
    mode = swarm["endpoint_mode"]
    lines = ["", "## Scale-out on Swarm (split topology, M server replicas)", "",
             f"Load: {swarm['threads']} concurrent workers for {swarm['seconds']:.0f} s, a new connection per "
             f"request (the client's own poll()), from a container on the overlay network to the service name. "
             f"Endpoint mode: {mode}" + (f" ({swarm['mode_reason']})" if swarm.get("mode_reason") else "") + "."
             + (f" This section was {swarm['measured_apart']}." if swarm.get("measured_apart") else ""), "",
             "| setup | req/s | vs M=1 | p50 ms | p99 ms | failures | MiB per server (idle) | requests per replica |",
             "|---|---|---|---|---|---|---|---|"]
    for row in rows:
        share = ", ".join(str(n) for n in sorted(row["requests_per_replica"].values(), reverse=True))
        lines.append(f"| Swarm, M={row['replicas']} | {row['rps']:.0f} | {stats_ratio(row['rps'], base)} | "
                     f"{fmt(row['latency_ms'].get('median'))} | {fmt(row['latency_ms'].get('p99'))} | "
                     f"{row['failures']} | "
                     f"{fmt(row['mib_per_replica'], digits=1)} | {share} |")
    best = max(rows, key=lambda r: r["rps"])
    lines += ["", f"Throughput at M={rows[-1]['replicas']} is {stats_ratio(rows[-1]['rps'], base)} of M=1 "
              f"(best: M={best['replicas']}); each replica adds {fmt(rows[0]['mib_per_replica'], digits=1)} MiB. "
              f"On this machine ({results['machine']['cores']} cores) the load generator and every replica share "
              "the same cores, so replicas add capacity only where there are cores (or nodes) to run them."]
    return lines


def stats_ratio(value: float, base: float) -> str:
    return f"{value / base:.2f}x" if base else "n/a"


# The figures of docs/benchmark.md (FIGURES_DOC) are generated from results/sample/results.json between these
# lines (tests/unit/test_benchmark.py fails when they differ): python -m benchmark.report --readme
FIGURES_DOC = "docs/benchmark.md"
README_BEGIN = "<!-- figures: generated from results/sample/results.json by python -m benchmark.report --readme -->"
# (and from results/sample/stack-*.json, each stack's run: python -m benchmark.stack)
README_END = "<!-- end of generated figures -->"


def readme_figures(results: dict[str, Any]) -> list[str]:
    """The headline table, targets, posture, systemd recipe and engine tables of docs/benchmark.md, from
    one run's results."""
    m, t = results["machine"], results["topologies"]
    checks, table = posture_table(results)
    exposure = t.get("systemd", {}).get("unit_exposure")

    def per_topology(label: str, get) -> str:
        return f"| {label} | " + " | ".join(get(name, v) for name, v in t.items()) + " |"

    lines = [f"Headline figures of that run ({m['cores']} cores, Docker {m['engine']}, {m['storage_driver']}, "
             f"cgroup v{m['cgroup_version']}, base {m['base_image']}, systemd recipe {systemd_recipe(results)}):", "",
             "| | " + " | ".join(t) + " |", "|---|" + "---|" * len(t),
             per_topology("memory at idle (docker stats)", lambda n, v: f"{total_idle_mib(v):.1f} MiB"
                          + (f" ({v['containers']} containers)" if v["containers"] > 1 else "")),
             per_topology("`docker run` to client's first success (median)",
                          lambda n, v: f"{v['startup']['client_s']['median']:.2f} s"),
             per_topology("same, from the engine's StartedAt",
                          lambda n, v: f"{v['startup']['client_from_started_at_s']['median']:.2f} s"),
             per_topology("latency p50 / p99 (client's poll)",
                          lambda n, v: f"{v['latency_ms']['median']:.2f} / {v['latency_ms']['p99']:.2f} ms"),
             per_topology("recovery after `kill -9`, server (median)",
                          lambda n, v: f"{v['recovery_s']['server']['median']:.2f} s"),
             per_topology("`docker stop`", lambda n, v: f"{v['stop']['stop_s']:.2f} s"),
             per_topology("converge cold / Dockerfile build + run", lambda n, v: (
                 f"{v['deploy']['converge_cold_s']:.1f} / {v['deploy']['baseline_total_s']:.1f} s")),
             per_topology(f"privilege posture checks passed (of {len(checks)})",
                          lambda n, v: str(sum(table[n].values()))),
             per_topology("`systemd-analyze security` exposure of the units", lambda n, v: (
                 f"{max(exposure['units'].values()):.1f} (systemd's defaults: {exposure['defaults']:.1f})"
                 if n == "systemd" and exposure else "no units"))]
    posture = ["", "## Privilege posture (CIS Docker Benchmark, section 5)", "",
               "| check | " + " | ".join(table) + " |", "|---|" + "---|" * len(table),
               *[f"| {c} | " + " | ".join("yes" if table[n][c] else "no" for n in table) + " |" for c in checks]]
    floors = [v["docker_run_floor_s"]["median"] for v in t.values() if "docker_run_floor_s" in v]
    refuted = [f"- {claim}: {verdict}" for claim, _, _, verdict in verdicts(results)
               if verdict.startswith("does not hold")]
    lines += ["", "The notes' claims that do not hold in that run (the report has every verdict):", *refuted]
    if floors:
        lines += ["", f"The engine alone needs {min(floors):.2f} to {max(floors):.2f} s (medians) for "
                  "`docker run --rm` of `/bin/true`."]
    return lines + targets_pivot(results) + posture + recipe_section(results) + engine_section(results)


def targets_pivot(results: dict[str, Any]) -> list[str]:
    """The targets as one row per target and one column per topology, each cell its figure and verdict."""
    rows_ = targets(results)
    names = list(results["topologies"])
    cells: dict[str, dict[str, str]] = {}
    for name, target, measured, met in rows_:
        cells.setdefault(target, {})[name] = measured if met is None else f"{measured}: {met_cell(met)}"
    measured_ = [met for *_, met in rows_ if met is not None]
    return ["", "## Targets", "", f"{sum(measured_)} of {len(measured_)} measured targets met; "
            f"{len(rows_) - len(measured_)} not measured in this run.", "",
            "| target | " + " | ".join(names) + " |", "|---|" + "---|" * len(names),
            *[f"| {target} | " + " | ".join(by.get(n, "n/a") for n in names) + " |" for target, by in cells.items()]]


def sample_stacks(sample_dir: Path) -> list[dict[str, Any]]:
    """Each stack's sample run (results/sample/stack-<name>.json, from python -m benchmark.stack)."""
    return [json.loads(p.read_text()) for p in sorted(sample_dir.glob("stack-*.json"))]


def readme_block(results: dict[str, Any], stacks: list[dict[str, Any]]) -> list[str]:
    """docs/benchmark.md's generated part: the pair's figures, then each stack's section and the comparison."""
    extra = [line for s in stacks for line in ["", *stack_markdown(s)]]
    return readme_figures(results) + extra + (stacks_compared(results, stacks) if stacks else [])


def write_readme(results: dict[str, Any], readme: Path, stacks: list[dict[str, Any]]) -> None:
    text = readme.read_text()
    before, rest = text.split(README_BEGIN, 1)
    after = rest.split(README_END, 1)[1]
    readme.write_text("\n".join([before + README_BEGIN, *readme_block(results, stacks), README_END]) + after)


def write(results: dict[str, Any], out_dir: Path) -> Path:
    path = out_dir / "report.md"
    if results["topologies"]:
        path.write_text(markdown(results, charts(results, out_dir)))
    else:  # --engines-only
        m = results["machine"]
        path.write_text("\n".join([
            "# Container topology lab: Docker and Podman", "",
            f"Run {results['started']}, {results['duration_s']:.0f} s. Machine: {m['cores']} cores, kernel "
            f"{m['kernel']}, Docker {m['engine']}, {m.get('podman') or 'no podman'}; timings are medians of "
            f"{results['settings']['runs']} runs.", *engine_section(results), ""]))
    return path


# --- Docker and Podman (benchmark/engines.py) ---------------------------------------------------------------------

# What a user weighs, each read from one engine's measurements of one topology; lower is better for all.
ENGINE_NEEDS = [
    ("fast start", "start to the client's first success (median s)", lambda v: v["startup"]["client_s"]["median"]),
    ("fast stop", "stop of the containers (median s)", lambda v: v["stop_s"]["median"]),
    ("quick recovery", "kill -9 of the server: back within (p95 s)", lambda v: v["recovery_s"]["server"]["p95"]),
    ("low memory", "memory at idle (MiB)", lambda v: sum(v["memory_idle_mib"].values())),
    ("low latency", "latency p99 (ms)", lambda v: v["latency_ms"]["p99"]),
    ("fast re-converge", "converge with nothing to change (s)", lambda v: v["deploy"]["converge_warm_s"]),
]


def measured_engines(results: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """The engines the comparison measured ({engine: {topology: ...}}), in run order."""
    return {e: by for e, by in (results.get("engines") or {}).items() if "unavailable" not in by}


def engine_posture(measured: dict[str, Any]) -> dict[str, bool]:
    """check: passes in every container of the topology."""
    return judge(measured["posture"].values())


def engine_section(results: dict[str, Any]) -> list[str]:
    """The topologies on each engine, side by side, and which engine each need favours, computed."""
    engines = results.get("engines")
    if not engines:
        return []
    lines = ["", "## Docker and Podman, side by side", "",
             "Each topology deployed on each engine by the same playbooks (LAB_ENGINE) and measured in place the "
             "same way: the deployed containers stopped and started again (the topology comparison runs fresh "
             "containers from images instead), idle memory as each engine's stats reports it, the client's "
             "latency, kill -9 recovery, posture."]
    lines += [f"- {e}: not measured: {by['unavailable']}" for e, by in engines.items() if "unavailable" in by]
    measured = measured_engines(results)
    if not measured:
        return lines
    names = list(next(iter(measured.values())))
    columns = [(n, e) for n in names for e in measured]
    lines += ["", "| | " + " | ".join(f"{n}: {e}" for n, e in columns) + " |", "|---|" + "---|" * len(columns)]

    def row(label: str, get) -> str:
        return f"| {label} | " + " | ".join(get(measured[e][n]) for n, e in columns) + " |"

    lines += [row(label, lambda v, f=f: fmt(f(v))) for _, label, f in ENGINE_NEEDS]
    lines += [
        row("start: from the engine's StartedAt (median s)",
            lambda v: fmt(v["startup"]["client_from_started_at_s"]["median"])),
        row("kill -9 of the client: polling again within (p95 s)", lambda v: fmt(v["recovery_s"]["client"]["p95"])),
        row("every service stopped on SIGTERM", lambda v: "yes" if v["stop_clean"] else "**no**"),
        row("converge cold (s) / changes on the re-run", lambda v: f"{v['deploy']['converge_cold_s']:.1f} / "
            f"{v['deploy']['warm_changed']}"),
        row(f"privilege posture checks passed (of {len(POSTURE_CHECKS)})",
            lambda v: str(sum(engine_posture(v).values()))),
    ]
    return [*lines, "", *engine_advice(results)]


def engine_advice(results: dict[str, Any]) -> list[str]:
    """Which engine to pick for which need: the engine with the lower figure in every topology, with the
    ratios; 'neither' when the topologies disagree. Posture differences are listed check by check."""
    measured = measured_engines(results)
    if len(measured) != 2:  # a comparison needs both engines
        return ["Which engine for which need: not computed, the run measured "
                f"{', '.join(measured) or 'no engine'} only."]
    (a, by_a), (b, by_b) = measured.items()
    lines = ["Which engine for which need, from these figures (ratio: Podman's figure over Docker's, per "
             "topology; an engine is named only where it is lower in every topology):", ""]
    for need, label, get in ENGINE_NEEDS:
        ratios = {n: stats_ratio(get(by_b[n]), get(by_a[n])) for n in by_a}
        lower = {a if get(by_a[n]) < get(by_b[n]) else b for n in by_a}
        pick = f"**{lower.pop()}**" if len(lower) == 1 else "neither consistently"
        lines.append(f"- {need} ({label}): {pick}; " + ", ".join(f"{n} {r}" for n, r in ratios.items()) + ".")
    only = {a: [], b: []}  # (topology, check) passing on one engine and failing on the other
    for n in by_a:
        pa, pb = engine_posture(by_a[n]), engine_posture(by_b[n])
        only[a] += [f"{n}: '{check}'" for check in pa if pa[check] and not pb[check]]
        only[b] += [f"{n}: '{check}'" for check in pb if pb[check] and not pa[check]]
    if not only[a] and not only[b]:
        lines.append("- least privilege (posture checks): either; the same checks pass on both engines.")
    else:
        fewer = {e for e in only if len(only[e]) == max(len(v) for v in only.values())}
        pick = f"**{fewer.pop()}**" if len(fewer) == 1 else "neither consistently"
        lines.append(f"- least privilege (posture checks): {pick}; " + "; ".join(
            f"passes only on {e}: {', '.join(checks)}" for e, checks in only.items() if checks) + ".")
    return lines


# --- a stack's comparison (benchmark/stack.py) --------------------------------------------------------------------

# Rows of a stack's table: label, the figure from one topology's measurements, and which way is better
# ("low", "high"; None: not ranked). The best topology of a ranked row is marked in the table. A row whose
# figure a run lacks (the PostgreSQL stack's own, for another stack; an older run's) is left out.
STACK_ROWS: list[tuple[str, Any, str | None]] = [
    ("start: StartedAt to the first committed row (median s)", lambda v: v["start_first_commit_s"]["median"], "low"),
    ("start: StartedAt to every health check passing (median s)", lambda v: v["start_healthy_s"]["median"], "low"),
    ("memory, its containers (MiB)", lambda v: v["memory_mib"], "low"),
    ("commits per second (pgbench, TPC-B-like)", lambda v: v["tps"], "high"),
    ("kill -9 of the postmaster: the writer's outage (median s)", lambda v: v["kill9_back_s"]["median"], "low"),
    ("PostgreSQL's WAL replay after it (median s)", lambda v: v["redo_s"]["median"], "low"),
    ("`docker stop` (median s)", lambda v: v["stop_s"]["median"], "low"),
    ("image size per container (MiB)", lambda v: max(v["image_mib"].values()), "low"),
]


def stack_rows(t: dict[str, Any]) -> list[tuple[str, dict[str, float], str | None]]:
    """The rows every topology of the run has figures for: STACK_ROWS, then kill -9 of each service."""
    rows = []
    for label, get, better in STACK_ROWS:
        try:
            rows.append((label, {n: get(v) for n, v in t.items()}, better))
        except KeyError:
            continue
    services = [s for s in next(iter(t.values())).get("service_kill9_back_s", {})
                if all(s in v.get("service_kill9_back_s", {}) for v in t.values())]
    rows += [(f"kill -9 of {s}: back and healthy (median s)",
              {n: back_median(v["service_kill9_back_s"][s]) for n, v in t.items()}, "low") for s in services]
    return rows


def back_median(kills: dict[str, Any]) -> float | None:
    """A service's kill -9 rounds: the median time to back, or None when a round was not back in time."""
    return None if kills.get("not_back") else kills["median"]


def figure(x: float | None) -> str:
    return "not back" if x is None else f"{x:.2f}"


def best_of(values: dict[str, float | None], better: str | None) -> str | None:
    """The topology with the best figure of a ranked row; None for a tie or an unranked row. A topology without
    a figure (a service not back) is never the best."""
    known = {n: x for n, x in values.items() if x is not None}
    if better is None or not known or len(values) < 2:
        return None
    top = (min if better == "low" else max)(known.values())
    leaders = [n for n, x in known.items() if x == top]
    return leaders[0] if len(leaders) == 1 else None


def worst_of(values: dict[str, float | None], better: str) -> float | None:
    """The worst figure of a ranked row; None (rendered "not back") when a topology has none."""
    if None in values.values():
        return None
    return (max if better == "low" else min)(values.values())


def holds(failures: dict[str, str]) -> str:
    """A verdict from each topology's failure ("" for none)."""
    bad = {n: f for n, f in failures.items() if f}
    return "**holds** in every topology" if not bad else "**does not hold**: " + ", ".join(
        f"{n} {f}" for n, f in bad.items())


def left(v: dict[str, Any]) -> str:
    """The processes a topology's kill -9 rounds left running, per service ("" for none)."""
    return ", ".join(f"{s} {k} left" for s, k in v["service_kill9_left"].items() if k)


def slowest_back(v: dict[str, Any]) -> float | None:
    """A topology's slowest service back after its kill -9 rounds; None when one was not back in time."""
    backs = [back_median(k) for k in v["service_kill9_back_s"].values()]
    return None if None in backs else max(backs)


def stack_verdicts(results: dict[str, Any]) -> list[str]:
    """What a user weighs, each computed from the run: data safety first (the PostgreSQL stack's), the stops,
    then the figures' winners."""
    t = results["topologies"]
    lines = []
    if all("lost_rows" in v for v in t.values()):
        acked = ", ".join(f"{n} {v['acknowledged_rows']} rows" for n, v in t.items())
        lines += [
            "- Nothing acknowledged is lost: " + holds({n: f"lost {v['lost_rows']}" if v["lost_rows"] else ""
                                                        for n, v in t.items()})
            + f" ({acked} acknowledged, {results['runs']} kill -9 and {results['runs']} stops each).",
            "- `docker stop` is a clean PostgreSQL shutdown (no SIGKILL, no crash recovery at the next start): "
            + holds({n: f"{v['stops_clean']} of {v['stops']}" if v["stops_clean"] != v["stops"] else ""
                     for n, v in t.items()}) + "."]
    if all("sigkilled_services" in v for v in t.values()):
        lines.append("- `docker stop` ends every service on its stop signal, within its grace (neither the engine "
                     "nor a manager SIGKILLs one): " + holds({
                         n: f"{v['stops_sigkilled']} of {v['stops']} stops SIGKILLed "
                            f"{', '.join(v['sigkilled_services'])}" if v["stops_sigkilled"] else ""
                         for n, v in t.items()}) + ".")
    if all("service_kill9_left" in v for v in t.values()):
        lines.append("- A kill -9 of a service's main process ends all of it (nothing of the killed run still "
                     "running when its new run is healthy): " + holds({n: left(v) for n, v in t.items()}) + ".")
    for label, values, better in stack_rows(t):
        best = best_of(values, better)
        if best:
            lines.append(f"- {label}: **{best}** ({values[best]:.2f}; the worst {figure(worst_of(values, better))}).")
    return lines


def stack_markdown(results: dict[str, Any]) -> list[str]:
    """A stack's section: the verdicts, the figures per topology (best marked), the posture."""
    t = results["topologies"]
    first = next(iter(t.values()))
    load = (f"; pgbench at {first['pgbench_clients']} clients for {first['pgbench_seconds']} s beside the writer"
            if "pgbench_clients" in first else "")
    lines = [f"## Stack `{results['stack']}` ({results['file']})", "",
             f"Run {results['started']} on {results['engine']}, {results['duration_s']:.0f} s; medians of "
             f"{results['runs']} runs{load}. Each kill -9 is a single crash, made once the service has run "
             + ", ".join(f"{s:g} s in {n}" for n, s in results["single_crash_after_s"].items())
             + " (the engine doubles its restart delay for a container that dies within 10 s of its start; "
             "supervisord counts a program that dies within 1 s as a failed start and backs off). Back: a new "
             "run of the service, its health check passing and nothing of the killed run still running"
             + (f"; not back when that took over {results['back_within_s']:g} s" if "back_within_s" in results
                else "") + ".", "",
             *stack_verdicts(results), "",
             "| | " + " | ".join(t) + " |", "|---|" + "---|" * len(t),
             "| containers | " + " | ".join(str(len(v["containers"])) for v in t.values()) + " |"]
    for label, values, better in stack_rows(t):
        best = best_of(values, better)
        lines.append(f"| {label} | " + " | ".join(f"**{x:.2f}**" if n == best else figure(x)
                                                  for n, x in values.items()) + " |")
    counted = [("SIGKILLed at `docker stop`", lambda v: f"{v['stops_sigkilled']} of {v['stops']}"),
               ("clean shutdowns at `docker stop`", lambda v: f"{v['stops_clean']} of {v['stops']}"),
               ("acknowledged rows lost", lambda v: str(v["lost_rows"])),
               ("kill -9: processes of the killed run left at the new run's health (most)", lambda v: left(v) or "0")]
    for label, get in counted:
        try:
            lines.append(f"| {label} | " + " | ".join(get(v) for v in t.values()) + " |")
        except KeyError:
            continue
    lines.append("| processes as root besides the manager | " + " | ".join(
        str(sum(len(p) for p in v["root_processes"].values())) for v in t.values()) + " |")
    checks = list(first["posture"])
    lines += ["", "| posture check | " + " | ".join(t) + " |", "|---|" + "---|" * len(t),
              *[f"| {c} | " + " | ".join("pass" if v["posture"][c] else "**fail**" for v in t.values()) + " |"
                for c in checks]]
    return lines


def stacks_compared(pair: dict[str, Any], others: list[dict[str, Any]]) -> list[str]:
    """The demo pair beside each measured stack, per topology: what changes when the services are a
    database and its writer rather than two small Python processes."""
    def where(results: dict[str, Any]) -> str:
        m = results.get("machine") or {}
        return f"{results['started'][:10]}, {m.get('cores', '?')} cores, kernel {m.get('kernel', '?')}, " \
               f"Docker {m.get('engine', '?')}"

    runs = {"demo pair (roles)": where(pair), **{s["stack"]: where(s) for s in others}}
    same = len({w.split(", ", 1)[1] for w in runs.values()}) == 1
    lines = ["", "## The stacks side by side", "",
             "Start: the engine's StartedAt to the client's first success (pair), the first committed row "
             "(the PostgreSQL stack) or every health check passing (another stack). kill -9: of the pair's "
             "server, of the postmaster (the writer's outage), or another stack's slowest service. Memory: the "
             "containers' as `docker stats` reports it, the pair's at idle, a stack's after its kill -9 rounds "
             "(the PostgreSQL stack's after pgbench too). "
             "Each row comes from its own run: " + "; ".join(f"{k} {w}" for k, w in runs.items()) + "."
             + ("" if same else " **Not the same machine**: compare the topologies within a row; across rows, only "
                "roughly."), "", "| figure | stack | " + " | ".join(NAMES) + " |", "|---|---|" + "---|" * len(NAMES)]
    rows = [("start (median s)", lambda v: v["startup"]["client_from_started_at_s"]["median"],
             lambda v: (v.get("start_first_commit_s") or v["start_healthy_s"])["median"]),
            ("memory (MiB)", total_idle_mib, lambda v: v["memory_mib"]),
            ("kill -9 to back (median s)", lambda v: v["recovery_s"]["server"]["median"],
             lambda v: v["kill9_back_s"]["median"] if "kill9_back_s" in v else slowest_back(v)),
            ("`docker stop` (s)", lambda v: v["stop"]["stop_s"], lambda v: v["stop_s"]["median"])]
    for label, of_pair, of_stack in rows:
        lines.append(f"| {label} | demo pair (roles) | " + " | ".join(f"{of_pair(pair['topologies'][n]):.2f}"
                                                              for n in NAMES) + " |")
        lines += [f"| | {s['stack']} | " + " | ".join(figure(of_stack(s['topologies'][n])) for n in NAMES) + " |"
                  for s in others]
    return lines


if __name__ == "__main__":
    if sys.argv[1:2] == ["--readme"]:
        root = Path(__file__).resolve().parent.parent
        write_readme(json.loads((root / "results/sample/results.json").read_text()), root / FIGURES_DOC,
                     sample_stacks(root / "results/sample"))
    else:
        source = Path(sys.argv[1])
        print(write(json.loads(source.read_text()), source.parent))
