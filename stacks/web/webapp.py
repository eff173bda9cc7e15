"""A small WSGI app for stacks/web.yml: JSON about the process that answered, and a health check."""

import json
import os
import socket
import time

STARTED = time.time()


def application(environ, start_response):
    path = environ.get("PATH_INFO", "/")
    if path == "/healthz":
        status, body = "200 OK", {"status": "ok"}
    elif path == "/":
        status, body = "200 OK", {"host": socket.gethostname(), "pid": os.getpid(),
                                  "uptime_s": round(time.time() - STARTED, 3),
                                  "forwarded_for": environ.get("HTTP_X_FORWARDED_FOR", "")}
    else:
        status, body = "404 Not Found", {"error": "not found", "path": path}
    data = json.dumps(body).encode() + b"\n"
    start_response(status, [("Content-Type", "application/json"), ("Content-Length", str(len(data)))])
    return [data]
