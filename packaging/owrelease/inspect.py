"""Read built packages as data: one `PackageView` for an ``.rpm`` (rpmfile) or a ``.deb`` (python-debian).

No ``rpm`` or ``dpkg`` command is run here: the header, the control members and the payload are
parsed in Python, so what we check is what the file holds, not what a tool chooses to print.

A view describes what the package *produces once installed*:

* RPM: every path of the header file list (ghosts included) with the mode, owner and group of
  the header, the flags (``%config``, ``noreplace``, ``%ghost``, ``%doc``, ``%verify``), and the
  sha256 of the bytes in the payload (cross-checked against the header's digest).
* DEB: every member of ``data.tar`` (``dpkg-deb --root-owner-group`` makes them ``root:root``), then
  the ownership fixes that the generated ``postinst`` applies. Those live in a marked block that
  the generator writes and this module parses line by line (see `OWNERSHIP_BEGIN`)::

      # owrelease:ownership begin
      install -d -m 0750 -o openwatch -g openwatch /var/lib/openwatch
      chown root:openwatch /etc/openwatch/secrets.env
      chmod 0640 /etc/openwatch/secrets.env
      # owrelease:ownership end

  Only ``chown [-h] OWNER:GROUP PATH``, ``chmod MODE PATH`` (octal) and
  ``install -d -m MODE -o OWNER -g GROUP PATH`` are allowed in the block; anything else is a
  problem of the view, never silently skipped. ``conffiles`` gives the config flag.
"""

from __future__ import annotations

import hashlib
import re
import shlex
import stat
import tarfile
from collections.abc import Iterator
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Literal

import rpmfile
from debian import debfile

__all__ = [
    "OWNERSHIP_BEGIN",
    "OWNERSHIP_END",
    "Entry",
    "InspectError",
    "Kind",
    "PackageView",
    "extract_file",
    "parse_ownership_block",
    "read_deb",
    "read_package",
    "read_rpm",
]

Kind = Literal["file", "dir", "symlink"]
OWNERSHIP_BEGIN = "# owrelease:ownership begin"
OWNERSHIP_END = "# owrelease:ownership end"
_GUARDED = re.compile(r"^\[ ! -e (?P<path>\S+) \] \|\| \{ (?P<body>.*?);? \}$")

# rpm's file flags (rpmfiles.h) and verify flags (rpmvf.h).
_RPMFILE = {"config": 1 << 0, "doc": 1 << 1, "missingok": 1 << 3, "noreplace": 1 << 4, "ghost": 1 << 6}
_RPMFILE_LICENSE = 1 << 7
_RPMVERIFY = {
    "md5": 1 << 0,
    "size": 1 << 1,
    "link": 1 << 2,
    "user": 1 << 3,
    "group": 1 << 4,
    "mtime": 1 << 5,
    "mode": 1 << 6,
    "rdev": 1 << 7,
    "caps": 1 << 8,
}
# rpm's script tags -> the Debian names, so both views use one vocabulary.
_RPM_SCRIPTS = {"prein": "preinst", "postin": "postinst", "preun": "prerm", "postun": "postrm"}
_RPM_EXTRA_SCRIPTS = ("pretrans", "posttrans", "verifyscript")
_RPMSENSE = {2: "<", 4: ">", 8: "="}
_DEB_SCRIPTS = ("preinst", "postinst", "prerm", "postrm", "config")
_DEB_RELATIONS = ("Pre-Depends", "Depends", "Recommends", "Suggests", "Conflicts", "Breaks", "Replaces")


class InspectError(Exception):
    """The file is not a package this module can read."""


@dataclass(frozen=True)
class Entry:
    """One installed path as the package declares it."""

    path: str
    kind: Kind
    mode: int  # permission bits only (0o7777)
    owner: str
    group: str
    size: int = 0
    sha256: str | None = None  # files with content in the payload
    target: str | None = None  # symlinks
    config: bool = False
    noreplace: bool = False
    ghost: bool = False
    doc: bool = False
    missingok: bool = False
    # rpm %verify(not ...): the checks switched off, e.g. ("md5", "mtime", "size"); empty = all on.
    verify_not: tuple[str, ...] = ()

    def describe(self) -> str:
        return f"{self.kind} {self.mode:04o} {self.owner}:{self.group}"


@dataclass
class PackageView:
    """A built package as data: identity, paths, scripts, relations."""

    format: Literal["rpm", "deb"]
    filename: str
    name: str
    epoch: int | None
    version: str
    release: str
    arch: str
    entries: dict[str, Entry] = field(default_factory=dict)
    scripts: dict[str, str] = field(default_factory=dict)
    # relation kind ("Depends", "Requires", "Recommends", ...) -> list of "name (op version)" strings
    relations: dict[str, list[str]] = field(default_factory=dict)
    metadata: dict[str, str] = field(default_factory=dict)
    problems: list[str] = field(default_factory=list)  # inconsistencies found while reading

    @property
    def evr(self) -> str:
        epoch = f"{self.epoch}:" if self.epoch else ""
        return f"{epoch}{self.version}-{self.release}"

    @property
    def label(self) -> str:
        return self.filename

    def files(self) -> Iterator[Entry]:
        return (e for e in self.entries.values() if e.kind == "file")


# ---------------------------------------------------------------------------------------------- rpm


def _text(value: Any) -> str:
    if isinstance(value, bytes):
        return value.decode("utf-8", "surrogateescape")
    return "" if value is None else str(value)


def _seq(headers: dict[str, Any], key: str) -> list[Any]:
    """rpmfile returns a scalar for a one-element integer array: make every array a list."""
    value = headers.get(key)
    if value is None:
        return []
    if isinstance(value, list | tuple):
        return list(value)
    return [value]


def _kind_of(mode: int) -> Kind:
    if stat.S_ISDIR(mode):
        return "dir"
    if stat.S_ISLNK(mode):
        return "symlink"
    return "file"


def _rpm_relation(name: str, flags: int, version: str) -> str:
    op = "".join(sym for bit, sym in sorted(_RPMSENSE.items(), reverse=True) if flags & bit)
    op = {"<": "<", ">": ">", "=": "=", "<=": "<=", "=<": "<=", ">=": ">=", "=>": ">="}.get(op, op)
    if version and op:
        return f"{name} {op} {version}"
    return name


def read_rpm(path: Path) -> PackageView:
    """Read an ``.rpm`` with rpmfile: header file list, flags, scripts, requirements, payload digests."""
    try:
        rpm = rpmfile.open(str(path))
    except Exception as exc:  # rpmfile raises bare exceptions on a bad lead or header
        raise InspectError(f"{path.name}: not a readable rpm: {exc}") from exc
    with rpm:
        h = rpm.headers
        epoch_raw = h.get("serial")
        view = PackageView(
            format="rpm",
            filename=path.name,
            name=_text(h.get("name")),
            epoch=int(epoch_raw) if epoch_raw is not None else None,
            version=_text(h.get("version")),
            release=_text(h.get("release")),
            arch=_text(h.get("arch")),
        )
        for key in ("summary", "description", "copyright", "url", "vendor", "packager", "group", "buildhost"):
            if key in h:
                view.metadata["license" if key == "copyright" else key] = _text(h[key])
        if "buildtime" in h:
            view.metadata["buildtime"] = str(h["buildtime"])

        for tag, deb_name in _RPM_SCRIPTS.items():
            if tag in h:
                view.scripts[deb_name] = _text(h[tag])
        for tag in _RPM_EXTRA_SCRIPTS:
            if tag in h:
                view.scripts[tag] = _text(h[tag])

        for kind, prefix in (
            ("Requires", "require"),
            ("Provides", "provide"),
            ("Recommends", "recommend"),
            ("Suggests", "suggest"),
            ("Conflicts", "conflict"),
            ("Obsoletes", "obsolete"),
        ):
            names = [_text(n) for n in _seq(h, f"{prefix}name")]
            if not names:
                continue
            flags = _seq(h, f"{prefix}flags") or [0] * len(names)
            versions = [_text(v) for v in _seq(h, f"{prefix}version")] or [""] * len(names)
            rels = [_rpm_relation(n, f, v) for n, f, v in zip(names, flags, versions, strict=True)]
            view.relations[kind] = [r for r in rels if not r.startswith("rpmlib(")]

        basenames = [_text(b) for b in _seq(h, "basenames")]
        dirnames = [_text(d) for d in _seq(h, "dirnames")]
        dirindexes = _seq(h, "dirindexes")
        paths = [dirnames[i] + b for i, b in zip(dirindexes, basenames, strict=True)]
        count = len(paths)

        def column(key: str, default: Any) -> list[Any]:
            values = _seq(h, key)
            return values if len(values) == count else [default] * count

        modes = column("filemodes", 0)
        sizes = column("filesizes", 0)
        users = [_text(u) for u in column("fileusername", b"root")]
        groups = [_text(g) for g in column("filegroupname", b"root")]
        flags = column("fileflags", 0)
        vflags = column("fileverifyflags", 0xFFFFFFFF)
        links = [_text(t) for t in column("filelinktos", b"")]
        digests = [_text(d) for d in column("filemd5s", b"")]
        algo = h.get("filedigestalgo", 1)

        payload: dict[str, bytes] = {}
        for member in rpm.getmembers():
            if not member.isdir:  # rpmfile's member.mode holds permission bits only
                payload[_tar_path(member.name)] = rpm.extractfile(member).read()

        for i, p in enumerate(paths):
            mode = int(modes[i]) & 0xFFFF
            kind = _kind_of(mode)
            fl = int(flags[i])
            vf = int(vflags[i]) & 0xFFFFFFFF
            ghost = bool(fl & _RPMFILE["ghost"])
            sha = None
            if kind == "file" and not ghost:
                data = payload.get(p)
                if data is None:
                    view.problems.append(
                        f"{path.name}: {p}: listed in the header but absent from the payload"
                    )
                else:
                    sha = hashlib.sha256(data).hexdigest()
                    if algo == 8 and digests[i] and digests[i] != sha:
                        view.problems.append(
                            f"{path.name}: {p}: payload sha256 {sha[:12]} != header digest {digests[i][:12]}"
                        )
            view.entries[p] = Entry(
                path=p,
                kind=kind,
                mode=stat.S_IMODE(mode),
                owner=users[i],
                group=groups[i],
                size=int(sizes[i]),
                sha256=sha,
                target=(links[i] or None) if kind == "symlink" else None,
                config=bool(fl & _RPMFILE["config"]),
                noreplace=bool(fl & _RPMFILE["noreplace"]),
                ghost=ghost,
                doc=bool(fl & (_RPMFILE["doc"] | _RPMFILE_LICENSE)),
                missingok=bool(fl & _RPMFILE["missingok"]),
                verify_not=tuple(sorted(n for n, bit in _RPMVERIFY.items() if not vf & bit)),
            )
    return view


# ---------------------------------------------------------------------------------------------- deb


@dataclass(frozen=True)
class OwnershipFix:
    """One line of the postinst ownership block."""

    op: Literal["chown", "chmod", "mkdir"]
    path: str
    owner: str | None = None
    group: str | None = None
    mode: int | None = None


def _parse_mode(text: str) -> int:
    if not text or any(c not in "01234567" for c in text):
        raise ValueError(f"mode {text!r} is not octal")
    return int(text, 8)


def _fix_line(raw: str) -> list[OwnershipFix]:
    """One block line: a bare command, or ``[ ! -e PATH ] || { cmd PATH; cmd PATH; }``."""
    m = _GUARDED.match(raw)
    if m is None:
        return [_parse_fix(shlex.split(raw))]
    guard = shlex.split(m["path"])
    fixes = [_parse_fix(shlex.split(part)) for part in m["body"].split(";") if part.strip()]
    if len(guard) != 1 or any(f.path != guard[0] for f in fixes):
        raise ValueError("the guarded path and the commands' path differ")
    return fixes


def parse_ownership_block(script: str) -> tuple[list[OwnershipFix], list[str]]:
    """Parse the ownership block of a postinst: (fixes, problems).

    The block is exactly the lines between `OWNERSHIP_BEGIN` and `OWNERSHIP_END` (templates/scripts/
    fixperms.sh.j2 writes both); nothing outside it is read. Returns no fixes and no problems when the
    script has no block (the view then keeps dpkg-deb's root:root, which verify reports).
    """
    fixes: list[OwnershipFix] = []
    problems: list[str] = []
    lines = script.splitlines()
    starts = [i for i, line in enumerate(lines) if line.strip() == OWNERSHIP_BEGIN]
    ends = [i for i, line in enumerate(lines) if line.strip() == OWNERSHIP_END]
    if not starts and not ends:
        return fixes, problems
    if len(starts) != 1 or len(ends) != 1 or ends[0] < starts[0]:
        unbalanced = f"{len(starts)} begin, {len(ends)} end"
        return fixes, [f"postinst: ownership block markers are unbalanced ({unbalanced})"]
    for number in range(starts[0] + 1, ends[0]):
        raw = lines[number].strip()
        if not raw or raw.startswith("#"):
            continue
        try:
            fixes.extend(_fix_line(raw))
        except ValueError as exc:
            problems.append(f"postinst:{number + 1}: cannot read ownership line {raw!r}: {exc}")
    return fixes, problems


def _parse_fix(argv: list[str]) -> OwnershipFix:
    if not argv:
        raise ValueError("empty line")
    cmd, args = argv[0], argv[1:]
    if cmd == "chown":
        if args and args[0] == "-h":
            args = args[1:]
        if len(args) != 2 or ":" not in args[0]:
            raise ValueError("expected chown [-h] OWNER:GROUP PATH")
        owner, group = args[0].split(":", 1)
        return OwnershipFix("chown", args[1], owner=owner, group=group)
    if cmd == "chmod":
        if len(args) != 2:
            raise ValueError("expected chmod MODE PATH")
        return OwnershipFix("chmod", args[1], mode=_parse_mode(args[0]))
    if cmd == "install":
        opts: dict[str, str] = {}
        rest = list(args)
        if not rest or rest.pop(0) != "-d":
            raise ValueError("expected install -d -m MODE -o OWNER -g GROUP PATH")
        while len(rest) > 1 and rest[0] in ("-m", "-o", "-g"):
            opts[rest[0]] = rest[1]
            rest = rest[2:]
        if len(rest) != 1 or set(opts) != {"-m", "-o", "-g"}:
            raise ValueError("expected install -d -m MODE -o OWNER -g GROUP PATH")
        return OwnershipFix(
            "mkdir", rest[0], owner=opts["-o"], group=opts["-g"], mode=_parse_mode(opts["-m"])
        )
    raise ValueError(f"command {cmd!r} is not allowed in the ownership block")


def _tar_path(name: str) -> str:
    stripped = name[2:] if name.startswith("./") else name.lstrip("/")
    return "/" + stripped.rstrip("/") if stripped not in ("", ".") else "/"


def _control_text(path: Path, deb: debfile.DebFile, name: str) -> str:
    """The text of control member ``name`` (a regular file: python-debian gives None otherwise)."""
    text = deb.control.get_content(name, encoding="utf-8")
    if text is None:
        raise InspectError(f"{path.name}: control member {name} is not a regular file")
    return text


def read_deb(path: Path) -> PackageView:
    """Read a ``.deb`` with python-debian: control, conffiles, scripts, data.tar, postinst fixes."""
    try:
        deb = debfile.DebFile(str(path))
    except Exception as exc:  # python-debian raises several types on a bad ar/tar
        raise InspectError(f"{path.name}: not a readable deb: {exc}") from exc
    try:
        control = deb.debcontrol()
        full_version = control.get("Version", "")
        epoch: int | None = None
        if ":" in full_version:
            epoch_text, full_version = full_version.split(":", 1)
            epoch = int(epoch_text)
        upstream, _, revision = full_version.rpartition("-")
        if not upstream:
            upstream, revision = revision, ""
        view = PackageView(
            format="deb",
            filename=path.name,
            name=control.get("Package", ""),
            epoch=epoch,
            version=upstream,
            release=revision,
            arch=control.get("Architecture", ""),
        )
        for key in ("Maintainer", "Section", "Priority", "Homepage", "Description", "Installed-Size"):
            if key in control:
                view.metadata[key.lower()] = control[key]
        for rel in _DEB_RELATIONS:
            if rel in control:
                view.relations[rel] = [r.strip() for r in control[rel].split(",") if r.strip()]

        for script in _DEB_SCRIPTS:
            if deb.control.has_file(script):
                view.scripts[script] = _control_text(path, deb, script)
        conffiles: set[str] = set()
        if deb.control.has_file("conffiles"):
            text = _control_text(path, deb, "conffiles")
            conffiles = {line.split()[-1] for line in text.splitlines() if line.strip()}
        md5sums: dict[str, str] = {}
        if deb.control.has_file("md5sums"):
            for line in _control_text(path, deb, "md5sums").splitlines():
                if line.strip():
                    digest, name = line.split(None, 1)
                    md5sums["/" + name.strip()] = digest

        tar = deb.data.tgz()
        for member in tar.getmembers():
            p = _tar_path(member.name)
            if member.isdir():
                kind: Kind = "dir"
            elif member.issym():
                kind = "symlink"
            elif member.isfile():
                kind = "file"
            else:
                view.problems.append(f"{path.name}: {p}: unsupported tar member type {member.type!r}")
                continue
            sha = None
            if kind == "file":
                fh = tar.extractfile(member)
                assert fh is not None
                data = fh.read()
                sha = hashlib.sha256(data).hexdigest()
                listed = md5sums.get(p)
                if listed is not None and hashlib.md5(data).hexdigest() != listed:
                    view.problems.append(f"{path.name}: {p}: md5sums entry does not match the payload")
                elif listed is None and md5sums and p not in conffiles:
                    view.problems.append(f"{path.name}: {p}: not in md5sums")
            view.entries[p] = Entry(
                path=p,
                kind=kind,
                mode=member.mode & 0o7777,
                owner=member.uname or str(member.uid),
                group=member.gname or str(member.gid),
                size=member.size if kind == "file" else 0,
                sha256=sha,
                target=member.linkname if kind == "symlink" else None,
                config=p in conffiles,
                noreplace=p in conffiles,  # dpkg never overwrites a changed conffile without asking
                doc=p.startswith("/usr/share/doc/"),
            )
        view.entries.pop("/", None)
        for conf in sorted(conffiles - view.entries.keys()):
            view.problems.append(f"{path.name}: {conf}: listed in conffiles but absent from data.tar")

        fixes, problems = parse_ownership_block(view.scripts.get("postinst", ""))
        view.problems.extend(f"{path.name}: {p}" for p in problems)
        for fix in fixes:
            entry = view.entries.get(fix.path)
            if fix.op == "mkdir":
                assert fix.mode is not None and fix.owner is not None and fix.group is not None
                base = entry or Entry(path=fix.path, kind="dir", mode=fix.mode, owner="root", group="root")
                view.entries[fix.path] = replace(base, mode=fix.mode, owner=fix.owner, group=fix.group)
                continue
            if entry is None:
                view.problems.append(
                    f"{path.name}: {fix.path}: postinst {fix.op} of a path not in the package"
                )
                continue
            if fix.op == "chown":
                assert fix.owner is not None and fix.group is not None
                view.entries[fix.path] = replace(entry, owner=fix.owner, group=fix.group)
            else:
                assert fix.mode is not None
                view.entries[fix.path] = replace(entry, mode=fix.mode)
    finally:
        deb.close()
    return view


def read_package(path: Path) -> PackageView:
    """Read an ``.rpm`` or a ``.deb``, chosen by the file name."""
    if path.suffix == ".rpm":
        return read_rpm(path)
    if path.suffix == ".deb":
        return read_deb(path)
    raise InspectError(f"{path.name}: neither .rpm nor .deb")


def extract_file(package: Path, inside: str) -> bytes:
    """The bytes of one installed path (e.g. ``/usr/bin/openwatch``) taken out of a package."""
    if package.suffix == ".rpm":
        with rpmfile.open(str(package)) as rpm:
            for member in rpm.getmembers():
                if not member.isdir and _tar_path(member.name) == inside:
                    return bytes(rpm.extractfile(member).read())
    elif package.suffix == ".deb":
        deb = debfile.DebFile(str(package))
        try:
            tar: tarfile.TarFile = deb.data.tgz()
            for member in tar.getmembers():
                if member.isfile() and _tar_path(member.name) == inside:
                    fh = tar.extractfile(member)
                    assert fh is not None
                    return fh.read()
        finally:
            deb.close()
    raise InspectError(f"{package.name}: {inside}: not in the payload")
