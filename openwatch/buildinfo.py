"""Build information: the version, and the commit and build time stamped at freeze time.

From a source tree the commit and build time are ``dev``. The frozen binary carries a generated module,
``openwatch/_build.py`` (``COMMIT``, ``BUILD_TIME`` and ``RUNTIME``), written by the release toolkit and
git-ignored. Importing this module is cheap: no database driver, no web stack.

:func:`runtime` names what the process runs on: Python, OpenSSL, libpq and psycopg. The frozen binary recorded
them at freeze time (its bundle cannot change), so it loads neither libssl nor libpq to say so. From source it
reports what the running interpreter has, without loading anything to say so (``--version`` and ``migrate
list`` never import ssl or psycopg): OpenSSL and libpq as the already imported ``ssl`` and ``psycopg.pq``
report them, else ``not loaded``; psycopg's version from its installed metadata (a directory name).
"""

from __future__ import annotations

import importlib
import sys

from openwatch import __version__

version: str = __version__
commit: str = "dev"
build_time: str = "dev"


def _load_stamp() -> tuple[str, str]:
    if not getattr(sys, "frozen", False):
        return "dev", "dev"
    try:
        stamp = importlib.import_module("openwatch._build")
    except ImportError:
        return "dev", "dev"
    return str(getattr(stamp, "COMMIT", "dev")), str(getattr(stamp, "BUILD_TIME", "dev"))


commit, build_time = _load_stamp()


# The runtime's versions are computed when asked for, each as cheaply as it can be: ``--version`` must
# not import what it reports on (ssl, psycopg), so such facts belong in the freeze-time stamp.


def python_version() -> str:
    """``platform.python_version()`` without importing platform: the first word of ``sys.version``."""
    return sys.version.split()[0]


RUNTIME_KEYS = ("python", "openssl", "libpq", "psycopg")


def runtime() -> dict[str, str]:
    """``{"python", "openssl", "libpq", "psycopg"}`` -> version, as this process runs (see the module doc)."""
    if getattr(sys, "frozen", False):
        try:
            recorded = getattr(importlib.import_module("openwatch._build"), "RUNTIME", None)
        except ImportError:
            recorded = None
        if isinstance(recorded, dict) and all(k in recorded for k in RUNTIME_KEYS):
            return {k: str(recorded[k]) for k in RUNTIME_KEYS}
    ssl = sys.modules.get("ssl")
    return {
        "python": python_version(),
        "openssl": ssl.OPENSSL_VERSION.split()[1] if ssl is not None else "not loaded",
        "libpq": _libpq_version(sys.modules["psycopg.pq"].version())
        if "psycopg.pq" in sys.modules
        else "not loaded",
        "psycopg": _distribution_version("psycopg"),
    }


def _libpq_version(v: int) -> str:
    return f"{v // 10000}.{v % 10000}"


def _distribution_version(name: str) -> str:
    """The installed distribution's version from its metadata, without importing it or importlib.metadata."""
    import os

    for entry in sys.path:
        try:
            names = os.listdir(entry or ".")
        except OSError:
            continue
        for n in names:
            if n.lower().startswith(f"{name}-") and n.endswith(".dist-info"):
                return n[len(name) + 1 : -len(".dist-info")]
    return "not installed"
