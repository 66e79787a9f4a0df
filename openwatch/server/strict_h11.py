"""Refuse a request that repeats Content-Length, which h11 would fold into one.

h11 (under hypercorn) accepts ``Content-Length: 5`` twice, or ``Content-Length: 5, 5``, and passes one
header on (RFC 9110 8.6 allows a recipient to do so).  A proxy in front may pick a different rule, so a
repeated length is a framing ambiguity: this service refuses it with 400 before any handler runs.

h11 offers no hook for this, so :func:`install` wraps the one function through which every parsed
request's headers pass (``h11._events.normalize_and_validate``, which ``Request`` calls with
``_parsed=True``).  That is a private name of the pinned h11 (packaging/requirements/freeze.txt):
:func:`install` checks it is still there and fails at start-up, in one line, if an upgrade moved it;
tests/test_serve_probes.py proves the refusal on the real server.
"""

from __future__ import annotations

from typing import Any

_INSTALLED = False


def repeated_length(headers: Any) -> bool:
    """More than one Content-Length field, or one whose value is a comma-separated list."""
    count = 0
    for name, value in headers:
        if bytes(name).lower() == b"content-length":
            count += 1 + bytes(value).count(b",")
    return count > 1


def install() -> None:
    global _INSTALLED
    if _INSTALLED:
        return
    import h11
    from h11 import _events

    original = getattr(_events, "normalize_and_validate", None)
    if original is None:
        raise RuntimeError(f"h11 {h11.__version__}: _events.normalize_and_validate is gone: pin h11 0.16")

    def checked(headers: Any, _parsed: bool = False) -> Any:
        if _parsed and repeated_length(headers):
            raise h11.LocalProtocolError("repeated Content-Length", error_status_hint=400)
        return original(headers, _parsed=_parsed)

    _events.normalize_and_validate = checked
    _INSTALLED = True
