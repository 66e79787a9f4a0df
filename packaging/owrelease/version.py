"""PEP 440 -> RPM and DEB version strings. Pure: no I/O, stdlib only.

The mapping keeps the PEP 440 order under rpm's and dpkg's own comparators:

    1.0.dev1 < 1.0a1.dev1 < 1.0a1 < 1.0b2 < 1.0rc1 < 1.0 < 1.0.post1 < 1.0.1

* pre-releases become ``~a1`` / ``~b2`` / ``~rc1`` (``~`` sorts before everything, even the end);
* a dev release becomes ``~~dev1`` (below any pre-release of the same release: ``~~`` < ``~``); on top of
  a pre- or post-release it is ``~dev1`` (below that pre/post release);
* a post-release becomes ``+post1`` (above the release, below the next one);
* a local version ``+abc.1`` becomes ``+local.abc.1`` (dashes and underscores turn into dots);
* an epoch ``N!`` becomes RPM ``Epoch: N`` and DEB ``N:``.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

_PEP440 = re.compile(
    r"""
    ^\s*v?
    (?:(?P<epoch>[0-9]+)!)?
    (?P<release>[0-9]+(?:\.[0-9]+)*)
    (?:[-_.]?(?P<pre_l>a|b|c|rc|alpha|beta|pre|preview)[-_.]?(?P<pre_n>[0-9]+)?)?
    (?:-(?P<post_n1>[0-9]+)|[-_.]?(?P<post_l>post|rev|r)[-_.]?(?P<post_n2>[0-9]+)?)?
    (?:[-_.]?(?P<dev_l>dev)[-_.]?(?P<dev_n>[0-9]+)?)?
    (?:\+(?P<local>[a-z0-9]+(?:[-_.][a-z0-9]+)*))?
    \s*$
    """,
    re.VERBOSE | re.IGNORECASE,
)

_PRE = {"a": "a", "alpha": "a", "b": "b", "beta": "b", "c": "rc", "rc": "rc", "pre": "rc", "preview": "rc"}


class VersionError(ValueError):
    """Not a PEP 440 version."""


@dataclass(frozen=True)
class PackageVersion:
    """One PEP 440 version and its package-format spellings."""

    pep440: str
    epoch: int
    upstream: str  # RPM Version and DEB upstream part: 0.2.0~rc1
    release: int  # RPM Release and DEB revision

    @property
    def rpm_version(self) -> str:
        return self.upstream

    @property
    def rpm_release(self) -> str:
        return str(self.release)

    @property
    def rpm_evr(self) -> str:
        prefix = f"{self.epoch}:" if self.epoch else ""
        return f"{prefix}{self.upstream}-{self.release}"

    @property
    def deb(self) -> str:
        prefix = f"{self.epoch}:" if self.epoch else ""
        return f"{prefix}{self.upstream}-{self.release}"

    def rpm_filename(self, name: str, arch: str) -> str:
        return f"{name}-{self.upstream}-{self.release}.{arch}.rpm"

    def deb_filename(self, name: str, arch: str) -> str:
        # the epoch never appears in a .deb file name
        return f"{name}_{self.upstream}-{self.release}_{arch}.deb"


def upstream(pep440: str) -> tuple[int, str]:
    """(epoch, upstream version) for a PEP 440 version, e.g. ``0.2.0rc1`` -> ``(0, "0.2.0~rc1")``."""
    m = _PEP440.match(pep440)
    if m is None:
        raise VersionError(f"not a PEP 440 version: {pep440!r}")
    epoch = int(m["epoch"] or 0)
    release = ".".join(str(int(part)) for part in m["release"].split("."))
    out = release
    has_pre = m["pre_l"] is not None
    if has_pre:
        out += f"~{_PRE[m['pre_l'].lower()]}{int(m['pre_n'] or 0)}"
    post: int | None = None
    if m["post_n1"] is not None:
        post = int(m["post_n1"])
    elif m["post_l"] is not None:
        post = int(m["post_n2"] or 0)
    if post is not None:
        out += f"+post{post}"
    if m["dev_l"] is not None:
        dev = int(m["dev_n"] or 0)
        out += f"~dev{dev}" if (has_pre or post is not None) else f"~~dev{dev}"
    if m["local"]:
        out += "+local." + re.sub(r"[-_]", ".", m["local"].lower())
    return epoch, out


def package_version(pep440: str, release: int = 1) -> PackageVersion:
    if release < 1:
        raise VersionError(f"package release must be >= 1, got {release}")
    epoch, up = upstream(pep440)
    return PackageVersion(pep440=pep440, epoch=epoch, upstream=up, release=release)
