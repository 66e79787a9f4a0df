"""The Debian mirror this host already uses, read from its apt configuration.

Why: operators build behind internal mirrors, so no mirror host name is written into the project.  The
build root (debootstrap, deb-src) and the tests' throwaway roots all take the mirror from here:

1. ``$OPENWATCH_DEBIAN_MIRROR`` when set (an explicit override wins);
2. otherwise the first ``deb`` entry of the host's apt sources (deb822 ``*.sources`` and one-line
   ``sources.list``/``*.list``, in apt's own order) that serves a Debian release suite: not
   ``-security`` (a different archive layout), not ``-updates``/``-backports`` (partial suites).

Stdlib only: nox imports it before any venv exists.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterator
from pathlib import Path

__all__ = ["MirrorNotFound", "apt_sources", "host_mirror"]

ENV = "OPENWATCH_DEBIAN_MIRROR"
APT_ETC = Path("/etc/apt")
# a suite that is a whole release (bookworm, stable, sid, ...), not an overlay of one
_OVERLAY = re.compile(r"-(security|updates|backports|proposed-updates)$|/updates$")


class MirrorNotFound(RuntimeError):
    """No usable Debian mirror; ``str()`` is one line saying what to set."""


def _deb822(text: str) -> Iterator[tuple[str, str, list[str]]]:
    for stanza in re.split(r"\n\s*\n", text):
        fields: dict[str, str] = {}
        key = ""
        for line in stanza.splitlines():
            if not line.strip() or line.lstrip().startswith("#"):
                continue
            if line[0].isspace() and key:  # continuation line
                fields[key] += " " + line.strip()
                continue
            key, _, value = line.partition(":")
            key = key.strip().lower()
            fields[key] = value.strip()
        if fields.get("enabled", "yes").lower() == "no":
            continue
        for kind in fields.get("types", "").split():
            for uri in fields.get("uris", "").split():
                yield kind, uri, fields.get("suites", "").split()


def _one_line(text: str) -> Iterator[tuple[str, str, list[str]]]:
    for raw in text.splitlines():
        line = raw.split("#", 1)[0].strip()
        if not line:
            continue
        line = re.sub(r"\[[^\]]*\]", " ", line)  # options such as [signed-by=...]
        parts = line.split()
        if len(parts) >= 3 and parts[0] in ("deb", "deb-src"):
            yield parts[0], parts[1], [parts[2]]


def apt_sources(etc: Path = APT_ETC) -> list[tuple[str, str, list[str]]]:
    """(type, uri, suites) of every enabled entry, in the order apt reads its files."""
    entries: list[tuple[str, str, list[str]]] = []
    main = etc / "sources.list"
    if main.is_file():
        entries += _one_line(main.read_text(errors="replace"))
    parts = etc / "sources.list.d"
    if parts.is_dir():
        for f in sorted(parts.iterdir()):
            if f.suffix == ".list":
                entries += _one_line(f.read_text(errors="replace"))
            elif f.suffix == ".sources":
                entries += _deb822(f.read_text(errors="replace"))
    return entries


def host_mirror(etc: Path = APT_ETC, environ: dict[str, str] | None = None) -> str:
    """The Debian archive's base URI (no trailing slash), e.g. ``http://mirror.example/debian``."""
    env = os.environ if environ is None else environ
    if env.get(ENV):
        return env[ENV].rstrip("/")
    for kind, uri, suites in apt_sources(etc):
        web = uri.startswith(("http://", "https://", "file:"))
        if kind == "deb" and web and any(not _OVERLAY.search(s) for s in suites):
            return uri.rstrip("/")
    raise MirrorNotFound(
        f"no Debian mirror in {etc}/sources.list or {etc}/sources.list.d/"
        f" (a 'deb' entry for a release suite): set {ENV}=URI"
    )


if __name__ == "__main__":
    print(host_mirror())
