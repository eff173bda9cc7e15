"""roles/supervisord/files/supervisord-waker as supervisord's PID 1 sees it: in a PID namespace of its own
(root: unshare --pid), a stand-in for supervisord runs as PID 1, starts programs as supervisord does (each the
leader of its own process group) and the waker beside it. A program's workers outlive a kill -9 of the program;
the waker must end them, and nothing else."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from tests.support.project import ROOT

WAKER = ROOT / "roles/supervisord/files/supervisord-waker"
# PID 1 of the namespace. Started: a program (its own group's leader, as supervisord's setpgrp) with two workers
# in its group; a program whose helper left it (a grandchild reparented to PID 1 while its group's leader lives);
# a daemon that made its own session; a process a shell left behind that was no program's (as a `docker exec`
# shell's, whose parent is outside the container). Once the waker has made two passes (it connects to SOCKET
# each pass), a kill -9 of the first program, reaped as supervisord reaps it.
PID1 = r"""
import json, os, signal, socket, subprocess, sys, time
listener = socket.socket(socket.AF_UNIX)
listener.bind(sys.argv[2])
listener.listen(8)
waker = subprocess.Popen([sys.argv[1], sys.argv[2], "0.05"])
program = subprocess.Popen(["sh", "-c", "sleep 300 & sleep 300 & wait"], preexec_fn=os.setpgrp)
living = subprocess.Popen(["sh", "-c", "sh -c 'sleep 300 &' ; exec sleep 300"], preexec_fn=os.setpgrp)
daemon = subprocess.Popen(["setsid", "sleep", "300"])
shell = subprocess.Popen(["sh", "-c", "setsid sh -c 'sleep 300 &' ; exec sleep 300"])
started = {waker.pid, program.pid, living.pid, daemon.pid, shell.pid}
def parent(p):
    try:
        with open(f"/proc/{p}/stat") as stat:
            return int(stat.read().rsplit(")", 1)[1].split()[1])
    except OSError:
        return None  # gone meanwhile (sh's short-lived children)
def children(pid):
    return [int(p) for p in os.listdir("/proc") if p.isdigit() and parent(p) == pid]
deadline = time.monotonic() + 10
while len(children(program.pid)) < 2 or len(set(children(1)) - started) < 2:
    assert time.monotonic() < deadline, "the workers did not start"
    time.sleep(0.02)
workers = children(program.pid)
kept = sorted(set(children(1)) - started)
for _ in range(2):
    listener.accept()[0].close()
os.kill(program.pid, signal.SIGKILL)
program.wait()
ended = {}
deadline = time.monotonic() + 5
while len(ended) < len(workers) and time.monotonic() < deadline:
    pid, status = os.waitpid(-1, os.WNOHANG)
    if pid:
        ended[pid] = os.WTERMSIG(status) if os.WIFSIGNALED(status) else None
    else:
        time.sleep(0.02)
for _ in range(3):  # three more passes: what the waker must keep stays
    listener.accept()[0].close()
expected = [waker.pid, living.pid, daemon.pid, shell.pid, *kept]
print(json.dumps({"workers": workers, "ended": ended, "kept": kept, "expected_alive": expected,
                  "alive": [p for p in expected if os.path.exists(f"/proc/{p}")]}))
"""


def test_a_dead_programs_workers_end_and_nothing_else_does(tmp_path):
    if os.geteuid() != 0:
        pytest.skip("a PID namespace of its own needs root (unshare --pid)")
    command = ["unshare", "--pid", "--fork", "--mount-proc", sys.executable, "-c", PID1, str(WAKER),
               str(tmp_path / "supervisor.sock")]
    result = subprocess.run(command, capture_output=True, text=True, timeout=60, check=False)
    assert result.returncode == 0, result.stderr
    found = json.loads(result.stdout)
    assert len(found["workers"]) == 2 and len(found["kept"]) == 2, found
    assert {int(p): s for p, s in found["ended"].items()} == dict.fromkeys(found["workers"], 9), (
        f"the dead program's workers must end by the waker's SIGKILL: {found}")
    assert found["alive"] == found["expected_alive"], f"the waker ended what it must keep: {found}"
