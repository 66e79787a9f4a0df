"""The package model, loaded from ``packaging/package.toml``. Pure apart from reading that file; stdlib only.

Everything a format needs is computed here (owners, modes, which paths are config, which need fixing after
``dpkg-deb --root-owner-group``), so that the RPM spec, the DEB tree and the templates never restate it.
"""

from __future__ import annotations

import datetime as dt
import tomllib
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import Any

from owrelease.version import PackageVersion, package_version

ROOT = Path(__file__).resolve().parents[2]
PACKAGE_TOML = ROOT / "packaging" / "package.toml"

KINDS = frozenset({"binary", "config", "secret", "unit", "doc", "data", "dir", "generated"})
FORMATS = ("rpm", "deb")
# template:<path under templates/> (rendered), file:<path under the project root> (byte for byte),
# build:<name> (an artefact of the build, e.g. the frozen binary)
SOURCES = ("template:", "file:", "build:")


class ModelError(ValueError):
    """The declaration is inconsistent; the message names the entry."""


@dataclass(frozen=True)
class Account:
    user: str
    group: str
    system: bool
    home: str
    shell: str
    gecos: str


@dataclass(frozen=True)
class Entry:
    """One installed path."""

    id: str
    path: str
    kind: str
    mode: int
    owner: str
    group: str
    source: str | None
    gzip: bool
    formats: tuple[str, ...]

    @property
    def mode_str(self) -> str:
        return f"{self.mode:04o}"

    @property
    def is_dir(self) -> bool:
        return self.kind == "dir"

    @property
    def in_payload(self) -> bool:
        return self.kind != "generated"

    @property
    def is_conffile(self) -> bool:
        return self.kind in ("config", "secret")

    @property
    def relpath(self) -> str:
        return self.path.lstrip("/")

    @property
    def template(self) -> str | None:
        if self.source and self.source.startswith("template:"):
            return self.source.removeprefix("template:")
        return None

    @property
    def file(self) -> str | None:
        """A ``file:`` source: a path relative to the project root, shipped byte for byte."""
        if self.source and self.source.startswith("file:"):
            return self.source.removeprefix("file:")
        return None

    @property
    def build_artifact(self) -> str | None:
        if self.source and self.source.startswith("build:"):
            return self.source.removeprefix("build:")
        return None

    def rpm_files_line(self) -> str:
        """This entry's line in the RPM %files section."""
        attr = f"%attr({self.mode_str},{self.owner},{self.group})"
        prefix = {
            "dir": "%dir ",
            "config": "%config(noreplace) ",
            "secret": "%config(noreplace) %verify(not md5 size mtime) ",
            "doc": "%doc ",
        }.get(self.kind, "")
        return f"{prefix}{attr} {self.path}"


@dataclass(frozen=True)
class ChangelogEntry:
    version: str
    date: dt.date
    author: str
    changes: tuple[str, ...]


@dataclass(frozen=True)
class Package:
    name: str
    summary: str
    description: str
    license: str
    copyright: str
    maintainer: str
    homepage: str
    release: int
    deb_section: str
    deb_priority: str
    rpm_group: str
    glibc_max: str
    account: Account
    service: Mapping[str, str]
    defaults: Mapping[str, Mapping[str, Any]]
    entries: tuple[Entry, ...]
    depends: Mapping[str, Mapping[str, Any]]
    purge_ids: tuple[str, ...]
    bundled: tuple[Mapping[str, str], ...]
    changelog: tuple[ChangelogEntry, ...]
    by_id: Mapping[str, Entry] = field(repr=False)

    def version(self, pep440: str) -> PackageVersion:
        return package_version(pep440, self.release)

    def entries_for(self, fmt: str) -> list[Entry]:
        return [e for e in self.entries if fmt in e.formats]

    def payload(self, fmt: str) -> list[Entry]:
        return [e for e in self.entries_for(fmt) if e.in_payload]

    def rpm_files(self) -> list[str]:
        return [e.rpm_files_line() for e in self.payload("rpm")]

    def conffiles(self, fmt: str = "deb") -> list[str]:
        return [e.path for e in self.payload(fmt) if e.is_conffile]

    def ownership_fixes(self, fmt: str = "deb") -> list[Entry]:
        """Payload entries not root:root (``dpkg-deb --root-owner-group`` makes them so; postinst fixes)."""
        return [e for e in self.payload(fmt) if (e.owner, e.group) != ("root", "root")]

    def generated(self) -> list[Entry]:
        return [e for e in self.entries if e.kind == "generated"]

    def purge_paths(self) -> list[str]:
        return [self.by_id[i].path for i in self.purge_ids]

    def rpm_requires(self, glibc_floor: str) -> dict[str, list[str]]:
        dep = self.depends["rpm"]
        return {
            "requires": [*dep.get("requires", []), f"{dep['libc']} >= {glibc_floor}"],
            "requires_pre": list(dep.get("requires_pre", [])),
            "requires_post": list(dep.get("requires_post", [])),
        }

    def recommends(self, fmt: str) -> list[str]:
        """Weak dependencies (DEB Recommends, RPM Recommends): installed by default, never required."""
        return [str(r) for r in self.depends[fmt].get("recommends", [])]

    def deb_depends(self, glibc_floor: str) -> list[str]:
        dep = self.depends["deb"]
        return [f"{dep['libc']} (>= {glibc_floor})", *dep.get("depends", [])]


def _mode(raw: object, where: str) -> int:
    if not isinstance(raw, str) or not raw.isdigit() or len(raw) != 4:
        raise ModelError(f"{where}: mode must be a 4-digit octal string like '0640', got {raw!r}")
    value = int(raw, 8)
    if value & 0o002:
        raise ModelError(f"{where}: world-writable mode {raw} is not allowed")
    return value


def _entry(raw: Mapping[str, Any], account: Account) -> Entry:
    where = f"path {raw.get('path', raw.get('id', '?'))!r}"
    for key in ("id", "path", "kind", "mode"):
        if key not in raw:
            raise ModelError(f"{where}: missing '{key}'")
    kind = raw["kind"]
    if kind not in KINDS:
        raise ModelError(f"{where}: unknown kind {kind!r} (one of {', '.join(sorted(KINDS))})")
    path = str(raw["path"])
    if not path.startswith("/") or str(PurePosixPath(path)) != path or ".." in PurePosixPath(path).parts:
        raise ModelError(f"{where}: path must be absolute and normalised")
    source = raw.get("source")
    if kind in ("dir", "generated") and source:
        raise ModelError(f"{where}: a {kind} has no source")
    if kind not in ("dir", "generated") and not source:
        raise ModelError(f"{where}: a {kind} needs a source (template:..., file:... or build:...)")
    if source and not source.startswith(SOURCES):
        raise ModelError(f"{where}: source must start with 'template:', 'file:' or 'build:'")
    if source and source.startswith("file:"):
        rel = PurePosixPath(source.removeprefix("file:"))
        if not rel.parts or rel.is_absolute() or ".." in rel.parts or str(rel) != source[5:]:
            raise ModelError(f"{where}: a file: source is a normalised path relative to the project root")
    formats = tuple(raw.get("formats", FORMATS))
    if not formats or any(f not in FORMATS for f in formats):
        raise ModelError(f"{where}: formats must be a non-empty subset of {FORMATS}")
    owner = str(raw.get("owner", "root"))
    group = str(raw.get("group", "root"))
    for who in (owner, group):
        if who not in ("root", account.user, account.group):
            raise ModelError(f"{where}: owner/group {who!r} is neither root nor the service account")
    mode = _mode(raw["mode"], where)
    if kind == "secret" and mode & 0o007:
        raise ModelError(f"{where}: a secret must not be readable by others (mode {raw['mode']})")
    return Entry(
        id=str(raw["id"]),
        path=path,
        kind=kind,
        mode=mode,
        owner=owner,
        group=group,
        source=source,
        gzip=bool(raw.get("gzip", False)),
        formats=formats,
    )


def _check_tree(entries: Iterable[Entry]) -> None:
    seen: dict[str, Entry] = {}
    for e in entries:
        if e.path in seen:
            raise ModelError(f"path {e.path!r} is declared twice (ids {seen[e.path].id!r} and {e.id!r})")
        seen[e.path] = e
    for e in seen.values():
        parent = str(PurePosixPath(e.path).parent)
        if parent in seen and not seen[parent].is_dir:
            raise ModelError(f"path {e.path!r}: its parent {parent!r} is declared but is not a dir")


def parse(data: Mapping[str, Any]) -> Package:
    meta = data["package"]
    acc = data["account"]
    account = Account(
        user=acc["user"],
        group=acc["group"],
        system=bool(acc.get("system", True)),
        home=acc["home"],
        shell=acc["shell"],
        gecos=acc.get("gecos", ""),
    )
    entries = tuple(_entry(raw, account) for raw in data.get("path", []))
    _check_tree(entries)
    by_id: dict[str, Entry] = {}
    for e in entries:
        if e.id in by_id:
            raise ModelError(f"id {e.id!r} is used twice")
        by_id[e.id] = e
    for required in ("binary", "unit", "config", "secrets", "state", "tls_cert", "tls_key"):
        if required not in by_id:
            raise ModelError(f"package.toml declares no path with id {required!r}")
    purge_ids = tuple(data.get("purge", {}).get("ids", []))
    for i in purge_ids:
        if i not in by_id or not by_id[i].is_dir:
            raise ModelError(f"purge: {i!r} is not the id of a declared dir")
    for fmt in FORMATS:
        if fmt not in data.get("depends", {}) or "libc" not in data["depends"][fmt]:
            raise ModelError(f"depends.{fmt}: missing (with its 'libc' package name)")
    changelog = tuple(
        ChangelogEntry(
            version=str(c["version"]),
            date=c["date"] if isinstance(c["date"], dt.date) else dt.date.fromisoformat(str(c["date"])),
            author=str(c["author"]),
            changes=tuple(str(x) for x in c["changes"]),
        )
        for c in data.get("changelog", [])
    )
    if not changelog:
        raise ModelError("package.toml has no [[changelog]] entry")
    return Package(
        name=meta["name"],
        summary=meta["summary"],
        description=meta["description"].strip(),
        license=meta["license"],
        copyright=meta["copyright"],
        maintainer=meta["maintainer"],
        homepage=meta["homepage"],
        release=int(meta.get("release", 1)),
        deb_section=meta.get("deb_section", "misc"),
        deb_priority=meta.get("deb_priority", "optional"),
        rpm_group=meta.get("rpm_group", "Unspecified"),
        glibc_max=str(meta["glibc_max"]),
        account=account,
        service=dict(data["service"]),
        defaults={k: dict(v) for k, v in data.get("defaults", {}).items()},
        entries=entries,
        depends={k: dict(v) for k, v in data["depends"].items()},
        purge_ids=purge_ids,
        bundled=tuple(dict(b) for b in data.get("bundled", [])),
        changelog=changelog,
        by_id=by_id,
    )


def load(path: Path = PACKAGE_TOML) -> Package:
    with path.open("rb") as fh:
        return parse(tomllib.load(fh))


def app_version(root: Path = ROOT) -> str:
    """openwatch.__version__, read from the source without importing the application."""
    text = (root / "openwatch" / "__init__.py").read_text(encoding="utf-8")
    for line in text.splitlines():
        if line.startswith("__version__"):
            return line.split("=", 1)[1].strip().strip("\"'")
    raise ModelError("openwatch/__init__.py defines no __version__")


def check_changelog(pkg: Package, pep440: str) -> None:
    if pkg.changelog[0].version != pep440:
        raise ModelError(
            f"package.toml: the newest [[changelog]] entry is {pkg.changelog[0].version}, "
            f"but openwatch.__version__ is {pep440}: add an entry for it"
        )
