"""Build information: the version, and the commit and build time stamped at freeze time.

From a source tree the commit and build time are ``dev``. The frozen binary carries a generated module,
``openwatch/_build.py`` (``COMMIT`` and ``BUILD_TIME``), written by the release toolkit and git-ignored.
Importing this module is cheap: no database driver, no web stack.
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
