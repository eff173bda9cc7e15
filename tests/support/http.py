"""Raw HTTP for tests: bytes out, everything the server answers back."""

from __future__ import annotations

import socket


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
