"""The glibc gate: which ``GLIBC_x.y`` symbol versions does a frozen binary need?

``ld.so`` refuses to start a program when one of its ELF objects asks for a symbol version
(``hypot@GLIBC_2.35``) that the system's glibc does not define.  A PyInstaller onefile binary is
many ELF objects: the bootloader, plus libpython, the extension modules and the shared libraries
packed in its CArchive, which the bootloader extracts and loads at start.  This module reads all
of them and reports the highest glibc version any of them needs (the *floor* a package must
declare), and gates a build against a maximum.

The archive is read with PyInstaller's own reader (``PyInstaller.archive.readers.CArchiveReader``);
members are extracted to a temporary directory and parsed there.  Version needs are read with a
small pure-Python ELF parser (``.gnu.version_r`` + ``.gnu.version`` + ``.dynsym``), so that every
offending *symbol* can be named, not only the version: no binutils needed.

``GLIBC_ABI_DT_RELR`` (a need that ld adds for ``-z pack-relative-relocs``) is counted as 2.36, the
glibc release that introduced it.  ``GLIBC_PRIVATE`` is not a version and is ignored.

Command line: ``python -m owrelease.elfgate PATH [--max 2.28]`` prints the floor, and with
``--max`` exits 1 listing every offender.
"""

from __future__ import annotations

import argparse
import itertools
import os
import re
import struct
import sys
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

__all__ = [
    "ElfNeeds",
    "GlibcGateError",
    "GlibcNeed",
    "check",
    "measure_floor",
    "parse_version",
    "scan",
]

_ELF_MAGIC = b"\x7fELF"
_SHT_DYNSYM = 11
_SHT_GNU_VERNEED = 0x6FFFFFFE
_SHT_GNU_VERSYM = 0x6FFFFFFF
_VERSION_RE = re.compile(r"^GLIBC_(\d+(?:\.\d+)*)$")
# Version needs that are not numbered but imply a minimum glibc release.
_SPECIAL = {"GLIBC_ABI_DT_RELR": (2, 36)}
_SEQ = itertools.count()


class GlibcGateError(Exception):
    """A file in the bundle needs a glibc newer than allowed; ``str()`` lists every offender, one a line."""

    def __init__(self, message: str, offenders: list[str]) -> None:
        super().__init__(message)
        self.offenders = offenders


class ElfError(Exception):
    """A file looked like ELF but could not be parsed."""


@dataclass(frozen=True, order=True)
class GlibcNeed:
    version: tuple[int, ...]
    name: str  # as written in the ELF: GLIBC_2.35
    library: str  # the DT_NEEDED it is asked of: libm.so.6


@dataclass
class ElfNeeds:
    """The glibc version needs of one ELF object, with the symbols that use each."""

    label: str  # path, or ``onefile!member`` for a file inside a PyInstaller archive
    needs: list[GlibcNeed] = field(default_factory=list)
    symbols: dict[str, list[str]] = field(default_factory=dict)  # version name -> symbol names

    @property
    def max_version(self) -> tuple[int, ...] | None:
        return max((n.version for n in self.needs), default=None)


def parse_version(text: str) -> tuple[int, ...]:
    """``"2.28"`` or ``"GLIBC_2.28"`` -> ``(2, 28)``."""
    raw = text.removeprefix("GLIBC_")
    if not re.fullmatch(r"\d+(?:\.\d+)*", raw):
        raise ValueError(f"not a glibc version: {text!r}")
    return tuple(int(p) for p in raw.split("."))


def _fmt(version: tuple[int, ...]) -> str:
    return ".".join(str(p) for p in version)


def _glibc_version(name: str) -> tuple[int, ...] | None:
    if name in _SPECIAL:
        return _SPECIAL[name]
    m = _VERSION_RE.match(name)
    return tuple(int(p) for p in m.group(1).split(".")) if m else None


def _cstr(data: bytes, offset: int) -> str:
    end = data.find(b"\0", offset)
    return data[offset : end if end >= 0 else len(data)].decode("utf-8", "replace")


def parse_elf(data: bytes, label: str) -> ElfNeeds:
    """Read the GLIBC_ version needs of one ELF image (and which undefined symbols use them)."""
    if data[:4] != _ELF_MAGIC or len(data) < 64:
        raise ElfError(f"{label}: not an ELF file")
    cls, enc = data[4], data[5]
    if cls not in (1, 2) or enc not in (1, 2):
        raise ElfError(f"{label}: unknown ELF class/encoding {cls}/{enc}")
    e = "<" if enc == 1 else ">"
    is64 = cls == 2
    try:
        if is64:
            shoff, shentsize, shnum = (
                struct.unpack_from(e + "Q", data, 0x28)[0],
                *struct.unpack_from(e + "HH", data, 0x3A),
            )
            sh_fmt = e + "IIQQQQIIQQ"
        else:
            shoff, shentsize, shnum = (
                struct.unpack_from(e + "I", data, 0x20)[0],
                *struct.unpack_from(e + "HH", data, 0x2E),
            )
            sh_fmt = e + "IIIIIIIIII"
        sections: list[tuple[int, int, int, int, int]] = []  # type, offset, size, link, entsize
        for i in range(shnum):
            fields = struct.unpack_from(sh_fmt, data, shoff + i * shentsize)
            _name, sh_type, _flags, _addr, off, size, link, _info, _align, entsize = fields
            sections.append((sh_type, off, size, link, entsize))
        result = ElfNeeds(label=label)
        verneed = [s for s in sections if s[0] == _SHT_GNU_VERNEED]
        if not verneed:
            return result  # static, or needs no versioned symbol
        _t, vn_off, _size, vn_link, _es = verneed[0]
        strtab_sec = sections[vn_link]
        strtab = data[strtab_sec[1] : strtab_sec[1] + strtab_sec[2]]
        index_to_name: dict[int, str] = {}
        pos = vn_off
        while True:
            _vn_version, vn_cnt, vn_file, vn_aux, vn_next = struct.unpack_from(e + "HHIII", data, pos)
            library = _cstr(strtab, vn_file)
            apos = pos + vn_aux
            for _ in range(vn_cnt):
                _hash, _flags, other, name_off, next_aux = struct.unpack_from(e + "IHHII", data, apos)
                vname = _cstr(strtab, name_off)
                index_to_name[other] = vname
                gv = _glibc_version(vname)
                if gv is not None:
                    result.needs.append(GlibcNeed(gv, vname, library))
                if not next_aux:
                    break
                apos += next_aux
            if not vn_next:
                break
            pos += vn_next
        # Which undefined dynamic symbols are bound to which needed version.
        versym = [s for s in sections if s[0] == _SHT_GNU_VERSYM]
        dynsym = [s for s in sections if s[0] == _SHT_DYNSYM]
        if versym and dynsym:
            _t, vs_off, vs_size, _l, _es = versym[0]
            _t, ds_off, ds_size, ds_link, ds_entsize = dynsym[0]
            dstr_sec = sections[ds_link]
            dynstr = data[dstr_sec[1] : dstr_sec[1] + dstr_sec[2]]
            ent = ds_entsize or (24 if is64 else 16)
            count = min(ds_size // ent, vs_size // 2)
            for i in range(1, count):
                (vidx,) = struct.unpack_from(e + "H", data, vs_off + 2 * i)
                needed = index_to_name.get(vidx & 0x7FFF)
                if needed is None or _glibc_version(needed) is None:
                    continue
                base = ds_off + i * ent
                if is64:
                    st_name, _info, _other, shndx = struct.unpack_from(e + "IBBH", data, base)
                else:
                    st_name = struct.unpack_from(e + "I", data, base)[0]
                    shndx = struct.unpack_from(e + "H", data, base + 14)[0]
                if shndx != 0:
                    continue  # defined here, not needed from glibc
                result.symbols.setdefault(needed, []).append(_cstr(dynstr, st_name))
        result.needs.sort()
        return result
    except (struct.error, IndexError) as exc:
        raise ElfError(f"{label}: malformed ELF ({exc})") from exc


def _is_elf(path: Path) -> bool:
    try:
        with path.open("rb") as fp:
            return fp.read(4) == _ELF_MAGIC
    except OSError:
        return False


def _archive_members(binary: Path) -> Iterator[tuple[str, bytes]]:
    """Every member of the PyInstaller CArchive appended to ``binary`` (none when it has no archive)."""
    from PyInstaller.archive.readers import ArchiveReadError, CArchiveReader

    try:
        reader = CArchiveReader(str(binary))
    except ArchiveReadError:
        return
    for name, entry in reader.toc.items():
        typecode = entry[4]
        if typecode in ("z", "n", "o"):  # PYZ, symlink, option: never ELF
            continue
        yield name, reader.extract(name)


def _scan_file(path: Path, label: str, tmp: Path) -> Iterator[ElfNeeds]:
    yield parse_elf(path.read_bytes(), label)
    for i, (name, blob) in enumerate(_archive_members(path)):
        if blob[:4] != _ELF_MAGIC:
            continue
        out = tmp / f"{next(_SEQ)}-{i}" / name
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_bytes(blob)
        yield parse_elf(out.read_bytes(), f"{label}!{name}")


def scan(target: Path) -> list[ElfNeeds]:
    """The glibc needs of every ELF in ``target``: a onefile binary (bootloader + archive) or a directory."""
    target = Path(target)
    if not target.exists():
        raise FileNotFoundError(f"{target}: no such file or directory")
    results: list[ElfNeeds] = []
    with tempfile.TemporaryDirectory(prefix="elfgate-") as tmpdir:
        tmp = Path(tmpdir)
        if target.is_dir():
            for dirpath, _dirs, files in os.walk(target):
                for fname in sorted(files):
                    p = Path(dirpath) / fname
                    if p.is_symlink() or not p.is_file() or not _is_elf(p):
                        continue
                    results.extend(_scan_file(p, str(p), tmp))
        else:
            if not _is_elf(target):
                raise ElfError(f"{target}: not an ELF file")
            results.extend(_scan_file(target, str(target), tmp))
    return results


def measure_floor(binary: Path) -> str:
    """The highest ``GLIBC_x.y`` needed by any ELF in ``binary`` (onefile or directory), as ``"2.28"``."""
    versions = [v for r in scan(binary) if (v := r.max_version) is not None]
    if not versions:
        raise ElfError(f"{binary}: no ELF object needs any GLIBC_ version (not a glibc program?)")
    return _fmt(max(versions))


def offenders(results: list[ElfNeeds], max_allowed: str) -> list[str]:
    limit = parse_version(max_allowed)
    lines: list[str] = []
    for r in results:
        for need in r.needs:
            if need.version <= limit:
                continue
            syms = sorted(set(r.symbols.get(need.name, [])))
            if syms:
                lines.extend(f"{r.label}: {s}@{need.name} (from {need.library})" for s in syms)
            else:
                lines.append(f"{r.label}: (version need) {need.name} (from {need.library})")
    return lines


def check(binary: Path, max_allowed: str) -> None:
    """Raise :class:`GlibcGateError` when any ELF in ``binary`` needs a glibc newer than ``max_allowed``."""
    results = scan(binary)
    bad = offenders(results, max_allowed)
    if bad:
        floor = _fmt(max(v for r in results if (v := r.max_version) is not None))
        head = f"{binary} needs GLIBC_{floor}, above the allowed GLIBC_{max_allowed}; offending symbols:"
        raise GlibcGateError("\n".join([head, *bad]), bad)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="elfgate", description=__doc__.splitlines()[0])
    ap.add_argument("path", type=Path)
    ap.add_argument("--max", dest="max_allowed", help="fail when the floor is above this, e.g. 2.28")
    args = ap.parse_args(argv)
    try:
        print(measure_floor(args.path))
        if args.max_allowed:
            check(args.path, args.max_allowed)
    except GlibcGateError as exc:
        print(exc, file=sys.stderr)
        return 1
    except (ElfError, OSError) as exc:
        print(f"elfgate: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
