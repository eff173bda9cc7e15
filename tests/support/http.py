"""HTTP for tests and the benchmark: JSON answers, and raw bytes out with everything the server answers back."""

from __future__ import annotations

import json
import socket
import urllib.request

# Requests no server may choke on, each with the status it must answer (unit tests and the fault suite).
BAD_INPUT = {
    "malformed request line": (b"GARBAGE\r\n\r\n", 400),
    "bad version": (b"GET / HTTP/9.x\r\n\r\n", 400),
    "non-utf8 bytes": (b"GET /\xff\xfe HTTP/1.1\r\nHost: x\r\n\r\n", 404),
    "oversized request line": (b"GET /" + b"a" * 70000 + b" HTTP/1.1\r\n\r\n", 414),
    "oversized header": (b"GET / HTTP/1.1\r\nX: " + b"a" * 70000 + b"\r\n\r\n", 431),
    "too many headers": (b"GET / HTTP/1.1\r\n" + b"".join(b"X%d: y\r\n" % i for i in range(150)) + b"\r\n", 431),
    "body with POST": (b"POST / HTTP/1.1\r\nContent-Length: 1000000\r\n\r\n" + b"x" * 5000, 405),
}


def get_json(url: str, timeout: float = 2.0) -> dict:
    """The JSON body of a GET; raises on any failure (OSError, ValueError)."""
    with urllib.request.urlopen(url, timeout=timeout) as response:
        return json.loads(response.read())


def json_or_none(url: str, timeout: float = 0.5) -> dict | None:
    """get_json, or None while the server is down or answers something that is not JSON."""
    try:
        return get_json(url, timeout)
    except (OSError, ValueError):
        return None


def raw(port: int, payload: bytes, timeout: float = 5.0, host: str = "127.0.0.1") -> bytes:
    """Send `payload`; return what arrives until the server closes or `timeout` passes without a byte."""
    with socket.create_connection((host, port), timeout=timeout) as sock:
        sock.sendall(payload)
        chunks = []
        try:
            while chunk := sock.recv(65536):
                chunks.append(chunk)
        except TimeoutError:
            pass
    return b"".join(chunks)


def status_of(response: bytes) -> int:
    """The status code of a raw response; fails loudly on anything that is not an HTTP/1.x status line."""
    if not response.startswith(b"HTTP/1."):
        raise AssertionError(f"not an HTTP/1.x response: {response[:80]!r}")
    return int(response.split(b" ", 2)[1])


def read_response(sock: socket.socket) -> tuple[bytes, bytes]:
    """One Content-Length-framed response from a keep-alive connection: (head, body)."""
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = sock.recv(65536)
        if not chunk:
            raise AssertionError(f"connection closed mid-response: {data[:80]!r}")
        data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    length = int(next(line.split(b":")[1] for line in head.split(b"\r\n")
                      if line.lower().startswith(b"content-length")))
    while len(body) < length:
        body += sock.recv(65536)
    return head, body
