"""Fail fast when the Hub's host cannot be reached at all.

huggingface_hub retries a failed connection with exponential back-off (about
twenty log lines over half a minute) before it reports it. When the endpoint's
name does not resolve, or its host refuses or cannot route the connection,
retrying cannot help: :func:`unreachable_reason` finds that out with one
name look-up and one TCP connection, so the caller can say so in one line.
It answers ``None`` (let huggingface_hub try) whenever it is not sure: a slow
or timed-out connection, or a proxy configured for the host.
"""

from __future__ import annotations

import errno
import socket
import urllib.parse
import urllib.request

__all__ = ["unreachable_reason"]

# Connection failures that retrying within seconds does not cure.
_HOPELESS = frozenset(
    code
    for code in (
        getattr(errno, "ECONNREFUSED", None),
        getattr(errno, "ENETUNREACH", None),
        getattr(errno, "EHOSTUNREACH", None),
        getattr(errno, "ENETDOWN", None),
        getattr(errno, "EHOSTDOWN", None),
        getattr(errno, "EADDRNOTAVAIL", None),
    )
    if code is not None
)


def unreachable_reason(endpoint: str, *, timeout: float = 5.0) -> str | None:
    """Why ``endpoint``'s host cannot be reached, or ``None`` if it may be.

    Parameters
    ----------
    endpoint : str
        Base URL of the Hub or mirror, e.g. ``"https://huggingface.co"``.
    timeout : float
        Seconds to wait for the TCP connection; a timeout answers ``None``.

    Returns
    -------
    str or None
        A short reason ("cannot resolve the name huggingface.co", "connection
        to 127.0.0.1:8000 refused", ...) when a download cannot start, else
        ``None``.
    """
    parts = urllib.parse.urlsplit(endpoint)
    host = parts.hostname
    if not host or parts.scheme not in ("http", "https"):
        return None
    try:
        port = parts.port or (443 if parts.scheme == "https" else 80)
    except ValueError:
        return None
    if _proxied(host, parts.scheme):
        return None
    try:
        addresses = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except (socket.gaierror, UnicodeError):
        return f"cannot resolve the name {host}"
    except OSError:
        return None
    failure: OSError | None = None
    for family, kind, protocol, _, address in addresses:
        try:
            with socket.socket(family, kind, protocol) as connection:
                connection.settimeout(timeout)
                connection.connect(address)
        except OSError as err:
            failure = err
            continue
        return None
    if isinstance(failure, TimeoutError) or failure is None or failure.errno not in _HOPELESS:
        return None
    detail = "refused" if failure.errno == errno.ECONNREFUSED else (failure.strerror or "failed")
    return f"connection to {host}:{port} {detail.lower()}"


def _proxied(host: str, scheme: str) -> bool:
    """Whether requests to ``host`` go through a proxy (whose reachability we do not test)."""
    proxies = urllib.request.getproxies()
    if not any(key in proxies for key in (scheme, "all")):
        return False
    return not urllib.request.proxy_bypass(host)
