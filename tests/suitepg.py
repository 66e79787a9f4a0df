"""The suite's own PostgreSQL: a throwaway cluster started on first use and removed at the end.

Unless ``OPENWATCH_TEST_PG_ADMIN`` names an existing server, the tests never touch a cluster of the
machine: ``initdb`` into a temporary directory (owned by the ``postgres`` system user when run as root),
a free port, TCP on 127.0.0.1 only, scram-sha-256 with a random superuser password that reaches initdb
through a 0600 file (never argv). The postmaster runs in its own session, so a Ctrl-C in the terminal
reaches pytest (which then tears down) and not the server. Removal: pytest's session end, atexit,
SIGTERM/SIGHUP (turned into KeyboardInterrupt so pytest unwinds), and, for a run that was SIGKILLed, the
next run reaps every ``ow-suitepg-*`` directory whose owner pid is gone.

Imported only as ``suitepg`` (one module object, whichever way conftest itself was imported).
"""

from __future__ import annotations

import atexit
import contextlib
import os
import pwd
import secrets
import shutil
import signal
import tempfile
from pathlib import Path

from pgcluster import Cluster, free_port

PREFIX = "ow-suitepg-"
PASSWORD = secrets.token_urlsafe(24)
PORT = free_port()
ADMIN_DSN = f"postgresql://postgres:{PASSWORD}@127.0.0.1:{PORT}/postgres"
_cluster: Cluster | None = None


def _owner() -> tuple[int, int]:
    if os.geteuid() != 0:
        return os.getuid(), os.getgid()
    pw = pwd.getpwnam("postgres")  # created by postgresql-common
    return pw.pw_uid, pw.pw_gid


def _reap_leftovers() -> None:
    """Clusters of earlier runs that died without cleanup (SIGKILL): stop and remove them."""
    for base in Path(tempfile.gettempdir()).glob(PREFIX + "*"):
        try:
            pid = int((base / "owner.pid").read_text())
            os.kill(pid, 0)
            continue  # its run is alive
        except ProcessLookupError:
            pass
        except (OSError, ValueError):
            continue
        leftover = Cluster(base=base, port=0)
        with contextlib.suppress(Exception):
            if leftover.running():
                leftover.stop("immediate")
        shutil.rmtree(base, ignore_errors=True)


def admin_dsn() -> str:
    """The superuser DSN of the suite's cluster, starting it on first call."""
    global _cluster
    if _cluster is not None:
        return ADMIN_DSN
    _reap_leftovers()
    base = Path(tempfile.mkdtemp(prefix=PREFIX))
    (base / "owner.pid").write_text(str(os.getpid()))
    uid, gid = _owner()
    os.chown(base, uid, gid)
    base.chmod(0o700)
    cluster = Cluster(base=base, port=PORT, password=PASSWORD, max_connections=100)
    _cluster = cluster
    atexit.register(stop)
    for sig in (signal.SIGTERM, signal.SIGHUP):
        signal.signal(sig, _interrupt)
    cluster.init()
    cluster.start()
    return ADMIN_DSN


def _interrupt(signum: int, frame: object) -> None:
    raise KeyboardInterrupt(f"signal {signum}")


def stop() -> None:
    """Stop and remove the suite's cluster (idempotent)."""
    global _cluster
    cluster, _cluster = _cluster, None
    if cluster is None:
        return
    with contextlib.suppress(Exception):
        if cluster.running():
            cluster.stop("immediate")
    shutil.rmtree(cluster.base, ignore_errors=True)
