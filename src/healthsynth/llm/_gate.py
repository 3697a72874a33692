"""The PHI gate: which endpoints count as "on this machine"."""

from __future__ import annotations

import ipaddress
from urllib.parse import urlsplit

from healthsynth.errors import ParameterError

__all__ = ["endpoint_host", "is_local_endpoint"]


def endpoint_host(url: str) -> str:
    """The host part of an endpoint URL, or a :class:`ParameterError` naming the bad URL."""
    try:
        parts = urlsplit(url)
        host = parts.hostname
    except ValueError:
        host = None
        parts = None
    if parts is None or parts.scheme not in ("http", "https") or not host:
        raise ParameterError(
            f"endpoint {url!r} is not an http(s) URL; give one such as http://127.0.0.1:8000/v1"
        )
    return host


def is_local_endpoint(url: str) -> bool:
    """Whether ``url`` points at this machine: ``localhost``, 127.0.0.0/8 or ``::1``.

    The name is not resolved: a host name that happens to resolve to a loopback address still
    counts as remote, so the gate errs on the side of asking.
    """
    host = endpoint_host(url)
    if host.lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False
