"""Runs inside a lab container (sent over `docker exec -i python3 -`): latency and load.

Uses the lab client's own poll() so latency is what the client sees. Prints one JSON object.
Stdlib only; Python 3.10+.
"""

import json
import sys
import threading
import time

sys.dont_write_bytecode = True  # never leave a __pycache__ in the container measured
sys.path.insert(0, sys.argv[1])  # where the lab installed the client (lab_layout_app_dir)
from client import PollError, poll  # noqa: E402 - the client is installed at run time


def latency(url: str, count: int) -> dict:
    samples, failures = [], 0
    for _ in range(count):
        try:
            samples.append(poll(url, 5.0)["latency_ms"])
        except PollError:
            failures += 1
    return {"latency_ms": samples, "failures": failures}


def load(url: str, threads: int, seconds: float) -> dict:
    """`threads` workers, each a fresh connection per request like the client, for `seconds`."""
    lock = threading.Lock()
    samples: list[float] = []
    failures = [0]
    end = time.monotonic() + seconds

    def worker() -> None:
        mine, bad = [], 0
        while time.monotonic() < end:
            try:
                mine.append(poll(url, 5.0)["latency_ms"])
            except PollError:
                bad += 1
        with lock:
            samples.extend(mine)
            failures[0] += bad

    started = time.monotonic()
    pool = [threading.Thread(target=worker) for _ in range(threads)]
    for thread in pool:
        thread.start()
    for thread in pool:
        thread.join()
    took = time.monotonic() - started
    return {"latency_ms": samples, "failures": failures[0], "seconds": took, "rps": len(samples) / took}


if __name__ == "__main__":
    mode, url = sys.argv[2], sys.argv[3]
    if mode == "latency":
        print(json.dumps(latency(url, int(sys.argv[4]))))
    else:
        print(json.dumps(load(url, int(sys.argv[4]), float(sys.argv[5]))))
