"""The PHI gate: which endpoints count as "on this machine", and which URLs are accepted at all.

An endpoint URL is checked before anything else happens with it:

* it must be a plain ``http(s)://host[:port][/path]`` URL: no spaces, control characters or
  backslashes (which URL parsers read differently), no ``#fragment``;
* it must carry no credentials. A ``user:password@`` part or a query such as ``?api-key=...``
  would end up in the model folder, the audit log and error messages, so such URLs are refused
  and the key goes in an environment variable instead (``api_key_env``). A base URL has no use
  for any other query either (the SDK appends the API path after it), so every query is refused;
* where the HTTP library is installed, it must read the same host from the URL as this module
  does, so the host the gate judged is the host that is contacted.

Then :func:`is_local_endpoint` decides whether the host is this machine. Only literal loopback
addresses count (127.0.0.0/8, ``::1`` and its IPv4-mapped form ``::ffff:127.x.x.x``) and the
name ``localhost`` when the system resolver maps it to loopback addresses only. Everything else
is remote, including spellings that a resolver might send here (``127.1``, ``0x7f000001``,
``0.0.0.0``, ``localhost.``, ``*.localhost``, a public name that resolves to 127.0.0.1): the
gate errs on the side of asking.
"""

from __future__ import annotations

import ipaddress
import re
import socket
from typing import Any
from urllib.parse import parse_qsl, urlsplit, urlunsplit

from healthsynth.errors import ParameterError

__all__ = ["check_endpoint", "endpoint_host", "is_local_endpoint", "redact_url"]

#: query parameter names that carry a secret (matched as words, any case)
_SECRET_PARAM = re.compile(
    r"key|token|secret|passw|pwd|auth|sig|signature|credential|session|bearer", re.IGNORECASE
)
_EXAMPLE = "http://127.0.0.1:8000/v1"
_KEY_HINT = (
    "put the key in an environment variable and name it with --api-key-env (api_key_env=; "
    "default OPENAI_API_KEY)"
)


def redact_url(url: object) -> str:
    """``url`` with any password, user name and secret-looking query value replaced by ``***``.

    Used for everything shown or logged about a URL that did not pass :func:`check_endpoint`
    (the refusal itself, the target of a redirect).
    """
    text = str(url)
    try:
        parts = urlsplit(text)
        netloc = parts.netloc
        if "@" in netloc:
            netloc = "***@" + netloc.rsplit("@", 1)[1]
        query = "&".join(
            f"{k}=***" if _SECRET_PARAM.search(k) else f"{k}={v}"
            for k, v in parse_qsl(parts.query, keep_blank_values=True)
        )
        return urlunsplit((parts.scheme, netloc, parts.path, query, parts.fragment))
    except ValueError:
        return "(an unreadable URL)"


def check_endpoint(url: object) -> str:
    """``url`` checked as an endpoint base URL (see the module docs); returns its host.

    Raises :class:`~healthsynth.errors.ParameterError`, one sentence that never repeats a
    credential, for anything else.
    """
    if not isinstance(url, str):
        raise ParameterError(
            f"endpoint must be a URL string such as {_EXAMPLE}; got {type(url).__name__}"
        )
    shown = redact_url(url)
    if any(ch.isspace() or ord(ch) < 32 or ord(ch) == 127 or ch == "\\" for ch in url):
        raise ParameterError(
            f"endpoint {shown!r} contains spaces, control characters or backslashes, which HTTP "
            f"libraries read in different ways; give a plain URL such as {_EXAMPLE}"
        )
    try:
        parts = urlsplit(url)
        host = parts.hostname
    except ValueError:
        host = None
        parts = None
    if parts is None or parts.scheme not in ("http", "https") or not host:
        raise ParameterError(
            f"endpoint {shown!r} is not an http(s) URL; give one such as {_EXAMPLE}"
        )
    try:
        parts.port  # noqa: B018 - raises ValueError for a port that is not a number
    except ValueError:
        raise ParameterError(
            f"endpoint {shown!r} has a port that is not a number from 0 to 65535; give one such "
            f"as {_EXAMPLE}"
        ) from None
    if "@" in parts.netloc:
        raise ParameterError(
            f"endpoint {shown!r} carries credentials before its host (user:password@), which "
            f"would be stored in the model folder and the audit log; remove them and {_KEY_HINT}"
        )
    if parts.query or "?" in url.split("#", 1)[0]:
        names = [k for k, _ in parse_qsl(parts.query, keep_blank_values=True)]
        if any(_SECRET_PARAM.search(k) for k in names):
            raise ParameterError(
                f"endpoint {shown!r} carries what looks like a credential in its query (?...), "
                f"which would be stored in the model folder and the audit log; remove it and "
                f"{_KEY_HINT}"
            )
        raise ParameterError(
            f"endpoint {shown!r} has a query part (?{parts.query}); give the API's base URL "
            f"without one, such as {_EXAMPLE}"
        )
    if parts.fragment or url.endswith("#"):
        raise ParameterError(
            f"endpoint {shown!r} has a #fragment; give the API's base URL without one, such as "
            f"{_EXAMPLE}"
        )
    seen = _transport_hosts(url)
    if seen == ():
        raise ParameterError(
            f"endpoint {shown!r} is not a URL the HTTP library can use; give a plain URL such as "
            f"{_EXAMPLE}"
        )
    if seen is not None and host.lower() not in seen:
        raise ParameterError(
            f"endpoint {shown!r} names the host {host!r} to the PHI gate but {seen[0]!r} to the "
            f"HTTP library; give a plain URL such as {_EXAMPLE}"
        )
    return host


def endpoint_host(url: str) -> str:
    """The host part of an endpoint URL (checked by :func:`check_endpoint`)."""
    return check_endpoint(url)


def is_local_endpoint(url: str) -> bool:
    """Whether ``url`` points at this machine (see the module docs for what counts).

    Raises :class:`~healthsynth.errors.ParameterError` for a URL :func:`check_endpoint` refuses.
    """
    host = check_endpoint(url).lower()
    if host == "localhost":
        return _resolves_to_loopback_only(host)
    try:
        ip = ipaddress.ip_address(host)
    except ValueError:
        return False
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped
    return ip.is_loopback


def _resolves_to_loopback_only(name: str) -> bool:
    """Whether the system resolver maps ``name`` to loopback addresses and nothing else."""
    try:
        infos = socket.getaddrinfo(name, None)
    except (OSError, UnicodeError):
        return False
    addresses = set()
    for info in infos:
        try:
            ip = ipaddress.ip_address(str(info[4][0]).split("%", 1)[0])
        except ValueError:
            return False
        if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
            ip = ip.ipv4_mapped
        addresses.add(ip)
    return bool(addresses) and all(ip.is_loopback for ip in addresses)


def _transport_hosts(url: str) -> tuple[str, ...] | None:
    """The host the SDK's HTTP library reads from ``url``, in lower case.

    Both its text and its ASCII form (``bücher.example`` and ``xn--bcher-kva.example``); an
    empty tuple when the library refuses the URL; None when the library is not installed.
    """
    import importlib

    http: Any = None
    for name in ("httpx2", "httpx"):  # the HTTP library of openai >= 3, and of earlier versions
        try:
            http = importlib.import_module(name)
            break
        except ImportError:
            continue
    if http is None:
        return None
    try:
        parsed = http.URL(url)
        forms = (str(parsed.host), bytes(parsed.raw_host).decode("ascii", "replace"))
    except Exception:  # noqa: BLE001 - any refusal by the library means "not a usable URL"
        return ()
    hosts = tuple(dict.fromkeys(f.strip("[]").lower() for f in forms if f.strip("[]")))
    return hosts
