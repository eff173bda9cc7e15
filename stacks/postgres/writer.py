#!/usr/bin/python3
"""Commit numbered rows to PostgreSQL and log every commit it acknowledged.

The lab's data-loss tests read the log: each `committed` line is a row
PostgreSQL acknowledged, which must survive kill -9, docker stop, restarts and a
replaced database container. A line is written only after commit() returned,
so a lost line never claims a row; a row whose acknowledgement was lost may be
in the table without a line, which is allowed. Each row carries a random token
besides its number: after a loss the writer resumes after the highest row left
and numbers rows again, so only (number, token) identifies what was acknowledged.

Readiness is PostgreSQL's own: before each connection the writer waits until
`pg_isready` says the server accepts connections, never a fixed sleep. After an
error it waits again and resumes after the highest row in the table.

Settings (environment): WRITER_DSN (libpq connection string; PGPASSWORD and the
other PG* variables apply), WRITER_LOG (JSON-lines file, also on stdout),
WRITER_INTERVAL (seconds between commits). SIGTERM ends it with exit 0.
"""

import json
import os
import signal
import subprocess
import sys
import threading
import time
import uuid

import psycopg2

STOP = threading.Event()


def log(out, event: str, **fields) -> None:
    now = time.time()
    # The lab's JSON-lines timestamp (UTC, milliseconds), as its own services write it.
    ts = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(now)) + f".{int(now * 1000) % 1000:03d}Z"
    line = json.dumps({"ts": ts, "event": event, **fields}, separators=(",", ":"))
    for stream in out:
        stream.write(line + "\n")
        stream.flush()


def wait_until_ready(dsn: str, out) -> None:
    """Block until pg_isready reports the server accepting connections (or SIGTERM)."""
    logged = False
    while not STOP.is_set():
        done = subprocess.run(["pg_isready", "--quiet", "--dbname", dsn], check=False, timeout=10)
        if done.returncode == 0:
            return
        if not logged:
            log(out, "waiting", reason=f"pg_isready exit {done.returncode}")
            logged = True
        STOP.wait(0.1)  # pg_isready itself waits up to connect_timeout when nothing answers


def run(dsn: str, interval: float, out) -> None:
    while not STOP.is_set():
        wait_until_ready(dsn, out)
        if STOP.is_set():
            return
        try:
            with psycopg2.connect(dsn) as conn:  # commits or rolls back; does not close
                try:
                    with conn.cursor() as cur:
                        cur.execute("CREATE TABLE IF NOT EXISTS lab_commits (n bigint PRIMARY KEY, token text NOT NULL, "
                                    "at timestamptz NOT NULL DEFAULT now())")
                        cur.execute("SELECT coalesce(max(n), 0) FROM lab_commits")
                        n = cur.fetchone()[0] + 1
                    conn.commit()
                    log(out, "connected", next=n)
                    while not STOP.is_set():
                        token = uuid.uuid4().hex[:16]
                        with conn.cursor() as cur:
                            cur.execute("INSERT INTO lab_commits (n, token) VALUES (%s, %s)", (n, token))
                        conn.commit()
                        log(out, "committed", n=n, token=token)
                        n += 1
                        STOP.wait(interval)
                finally:
                    conn.close()
        except psycopg2.Error as exc:
            log(out, "db_error", error=" ".join(str(exc).split())[:200])


def main() -> int:
    dsn = os.environ.get("WRITER_DSN", "")
    try:
        interval = float(os.environ.get("WRITER_INTERVAL", "0.02"))
        if not 0 <= interval < 3600:
            raise ValueError
    except ValueError:
        print(f"writer: WRITER_INTERVAL must be seconds from 0 to 3600, got {os.environ.get('WRITER_INTERVAL')!r}", file=sys.stderr)
        return 2
    if not dsn:
        print("writer: WRITER_DSN (a libpq connection string) is required", file=sys.stderr)
        return 2
    out = [sys.stdout]
    path = os.environ.get("WRITER_LOG", "")
    if path:
        out.append(open(path, "a", encoding="utf-8"))  # noqa: SIM115 - open for the process's life
    signal.signal(signal.SIGTERM, lambda *_: STOP.set())
    log(out, "started", pid=os.getpid())
    run(dsn, interval, out)
    log(out, "stopped")
    return 0


if __name__ == "__main__":
    sys.exit(main())
