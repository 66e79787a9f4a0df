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
