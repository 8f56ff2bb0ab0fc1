"""Whether a server answers at all, asked before a client that would retry for minutes is started."""

from __future__ import annotations

import socket
import urllib.request

from clgate.errors import InputError

CONNECT_TIMEOUT_S = 10


def check_reachable(host: str, port: int, what: str, through_proxy: bool = False) -> None:
    """A server that refuses a TCP connection, or does not answer one in seconds, is bad input now: Ray
    waits many minutes for a cluster that is not there, and MLflow's client retries for four. An HTTP
    server the environment reaches through a proxy (`through_proxy`) is left to its client."""
    if through_proxy and urllib.request.getproxies() and not urllib.request.proxy_bypass(host):
        return
    try:
        socket.create_connection((host.strip("[]"), port), timeout=CONNECT_TIMEOUT_S).close()
    except (OSError, UnicodeError) as exc:  # a host name IDNA cannot encode (x..y) is a UnicodeError
        raise InputError(f"cannot reach {what} ({exc})") from None


def check_listenable(address: str, port: int, what: str) -> None:
    """A server about to listen on `address`:`port` could: not an address of this machine, or a port taken,
    is one line now, not a traceback from inside the server once it starts."""
    try:
        family, kind, proto, _, where = socket.getaddrinfo(address, port, type=socket.SOCK_STREAM)[0]
        with socket.socket(family, kind, proto) as probe:
            probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as the server will
            probe.bind(where)
    except (OSError, OverflowError, UnicodeError) as exc:  # socket.gaierror is an OSError; x..y fails IDNA
        raise InputError(f"{what} cannot listen on {address}:{port} ({exc})") from None
