"""``openwatch serve``: the HTTPS JSON API and the embedded UI, behind a schema guard.

Only ``cli`` imports this package, and only for ``serve``: the web stack (hypercorn over h11, argon2,
ssl's server side, the UI's files) costs nothing to the other commands. The UI's static files live in ``ui/``
beside this file; a frozen build must carry them (PyInstaller: ``--add-data
openwatch/server/ui:openwatch/server/ui``).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from openwatch.config import Config


def run(cfg: Config) -> int:
    """Serve until SIGTERM or SIGINT; 0 on a clean shutdown, 1 (one line on stderr) on a fatal error."""
    from openwatch.server.app import serve

    return serve(cfg)
