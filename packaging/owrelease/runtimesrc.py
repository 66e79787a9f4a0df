"""The runtime's pinned orig tarballs, fetched from the host's Debian mirror and checked against the lock.

Why here and not ``apt-get source`` in the root: apt resolves the *newest* version of a suite at build time,
so two builds of one commit could compile different sources. The build fetches exactly the file the lock
names, from the pool directory it names, and refuses any byte that does not match the lock's sha256.

Tarballs are kept in ``<cache>/sources/<sha256>/<name>``: a rebuild needs no network, and a version the
archive has since dropped (sid keeps only its newest) still builds on a machine that fetched it once.
Stdlib only.
"""

from __future__ import annotations

import hashlib
import shutil
import tempfile
import urllib.error
import urllib.request
from pathlib import Path

from owrelease.debmirror import host_mirror
from owrelease.runtimelock import Component

__all__ = ["SourceMismatch", "fetch", "sha256_of"]


class SourceMismatch(RuntimeError):
    """A tarball is missing or differs from the lock; ``str()`` is one line naming it."""


def sha256_of(path: Path) -> str:
    h = hashlib.sha256()
    with path.open("rb") as fp:
        for block in iter(lambda: fp.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def _verify(c: Component, path: Path) -> None:
    got = sha256_of(path)
    if got != c.sha256:
        raise SourceMismatch(
            f"packaging/runtime.lock.json: {c.name}: {c.orig_tarball} has sha256 {got}, "
            f"the lock pins {c.sha256}"
        )


def fetch(c: Component, cache_dir: Path, *, mirror: str | None = None, timeout: float = 120) -> Path:
    """The verified tarball of ``c`` in the cache, downloaded once; raises :class:`SourceMismatch`."""
    dest = Path(cache_dir) / "sources" / c.sha256 / c.orig_tarball
    if dest.is_file():
        _verify(c, dest)  # a cache edited or corrupted in place fails just like a bad download
        return dest
    base = mirror or host_mirror()
    url = f"{base}/{c.directory}/{c.orig_tarball}"
    dest.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.NamedTemporaryFile(dir=dest.parent, prefix=".part-", delete=False) as tmp:
        part = Path(tmp.name)
        try:
            with urllib.request.urlopen(url, timeout=timeout) as resp:
                shutil.copyfileobj(resp, tmp, 1 << 20)
        except (urllib.error.URLError, OSError) as exc:
            part.unlink(missing_ok=True)
            reason = getattr(exc, "code", None) or getattr(exc, "reason", exc)
            raise SourceMismatch(
                f"packaging/runtime.lock.json: {c.name}: cannot fetch {c.directory}/{c.orig_tarball} "
                f"from the host mirror ({reason}); if the archive dropped it, run: nox -s runtime -- --update"
            ) from None
    try:
        _verify(c, part)
    except SourceMismatch:
        part.unlink(missing_ok=True)
        raise
    part.rename(dest)
    return dest
