"""Can ``keel serve`` listen on its address? Asked before the server starts, answered in one line.

Without this, a port already in use ends ``keel serve`` with some 70 lines of Python and Rust
traceback from Granian. The probe is a plain bind (no ``SO_REUSEPORT``), so it also fails when
another server shares the port through ``SO_REUSEPORT``.
"""

from __future__ import annotations

import errno
import socket

_WHY = {
    errno.EADDRINUSE: "address already in use (another `keel serve` or `make run`?)",
    errno.EACCES: "permission denied (ports below 1024 need privileges)",
    errno.EADDRNOTAVAIL: "no such address on this host",
}


def listen_problem(host: str, port: int) -> str | None:
    """None when ``host:port`` can be bound now, else one line saying why and what to do."""
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE)
    except socket.gaierror as exc:
        return f"cannot listen on {host}:{port}: {exc.strerror} (check HTTP_HOST)"
    family, kind, proto, _, address = infos[0]
    with socket.socket(family, kind, proto) as probe:
        # SO_REUSEADDR as every server sets it: a port in TIME_WAIT is free to take.
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind(address)
        except OSError as exc:
            why = _WHY.get(exc.errno or 0, exc.strerror or str(exc))
            return (
                f"cannot listen on {host}:{port}: {why}; pick another port with "
                f"HTTP_PORT (e.g. `HTTP_PORT={port + 1 if port < 65535 else 8001} make run`) "
                f"or `keel serve --port N`"
            )
    return None
