"""What a PyInstaller onefile holds, read without running it: every CArchive member and every PYZ module.

The SBOM (:mod:`owrelease.sbom`) is made from this, and verify (:mod:`owrelease.sbomcheck`) checks an SBOM
against it, so both sides name a thing the same way:

* a CArchive member by its TOC name (``libpython3.11.so.1.0``, ``migrations/0001_initial.sql``);
* a module of the embedded PYZ as ``PYZ.pyz/<module>`` (``PYZ.pyz/psycopg.connection``).

The sha256 of a member is that of its extracted (decompressed) bytes; of a PYZ module, that of its raw
(decompressed, still marshalled) entry. ELF members are read with pyelftools for their SONAME, DT_NEEDED and
the upstream version their bytes tell (:func:`elf_version`).
"""

from __future__ import annotations

import hashlib
import io
import posixpath
import re
from dataclasses import dataclass, field
from pathlib import Path

__all__ = ["Bundle", "ElfFacts", "Member", "elf_facts", "elf_version", "read"]

PYZ_PREFIX = "PYZ.pyz/"
# CArchive type codes (PyInstaller.archive.readers) -> the word an SBOM reader sees
TYPECODES = {
    "b": "binary",
    "x": "data",
    "n": "symlink",
    "z": "pyz",
    "s": "script",
    "m": "module",
    "M": "package",
    "d": "dependency",
    "l": "splash",
}


@dataclass(frozen=True)
class Member:
    path: str  # TOC name, or PYZ.pyz/<module>
    typecode: str  # CArchive type code; "pyz-module" for a PYZ entry
    sha256: str
    size: int
    link: str | None = None  # a symlink's target, as a member path


@dataclass(frozen=True)
class ElfFacts:
    soname: str | None
    needed: tuple[str, ...]
    version: str | None  # the upstream version the bytes tell, when they tell one


@dataclass
class Bundle:
    path: Path
    sha256: str
    members: dict[str, Member] = field(default_factory=dict)
    elf: dict[str, ElfFacts] = field(default_factory=dict)  # member path -> facts, ELF members only
    options: list[str] = field(default_factory=list)

    def modules(self) -> list[str]:
        return sorted(p.removeprefix(PYZ_PREFIX) for p in self.members if p.startswith(PYZ_PREFIX))


def read(binary: Path, *, with_elf: bool = True) -> Bundle:
    """Every member of ``binary``'s CArchive and of its PYZ, hashed; with ``with_elf``, ELF facts too."""
    from PyInstaller.archive.readers import CArchiveReader

    data = binary.read_bytes()
    bundle = Bundle(path=binary, sha256=hashlib.sha256(data).hexdigest())
    reader = CArchiveReader(str(binary))
    bundle.options = list(reader.options)
    for name, entry in sorted(reader.toc.items()):
        typecode = entry[4]
        blob = reader.extract(name)
        link = None
        if typecode == "n":  # the blob is the link's target, relative to the link's directory
            link = posixpath.normpath(posixpath.join(posixpath.dirname(name), blob.rstrip(b"\0").decode()))
        bundle.members[name] = Member(name, typecode, hashlib.sha256(blob).hexdigest(), len(blob), link)
        if with_elf and typecode == "b" and blob[:4] == b"\x7fELF":
            bundle.elf[name] = elf_facts(blob)
        if typecode == "z":
            pyz = reader.open_embedded_archive(name)
            for module in sorted(pyz.toc):
                raw = pyz.extract(module, raw=True) or b""  # a PEP 420 namespace package has no blob
                path = PYZ_PREFIX + module
                bundle.members[path] = Member(path, "pyz-module", hashlib.sha256(raw).hexdigest(), len(raw))
    return bundle


def elf_facts(blob: bytes) -> ElfFacts:
    from elftools.elf.elffile import ELFFile

    elf = ELFFile(io.BytesIO(blob))
    soname: str | None = None
    needed: list[str] = []
    from elftools.elf.dynamic import DynamicSection

    dynamic = elf.get_section_by_name(".dynamic")
    if isinstance(dynamic, DynamicSection):
        for tag in dynamic.iter_tags():
            if tag.entry.d_tag == "DT_NEEDED":
                needed.append(str(getattr(tag, "needed", "")))
            elif tag.entry.d_tag == "DT_SONAME":
                soname = str(getattr(tag, "soname", ""))
    # only a shared library (one with a SONAME) tells its own version: an extension module's strings name
    # the libraries it was built against (_hashlib says "OpenSSL 3.0.0")
    version = elf_version(blob, elf) if soname else None
    return ElfFacts(soname=soname, needed=tuple(needed), version=version)


# Version strings that the libraries themselves embed (tried on the bundle's own bytes).
_VERSION_STRINGS = (
    re.compile(rb"OpenSSL (\d+\.\d+\.\d+[a-z]?) "),
    re.compile(rb"KRB5_BRAND: krb5-(\d+\.\d+(?:\.\d+)?)-final"),
    re.compile(rb"inflate (\d+\.\d+\.\d+(?:\.\d+)?) Copyright"),
    re.compile(rb"\0(\d+\.\d+\.\d+), \d{1,2}-[A-Z][a-z]{2}-\d{4}\0"),  # bzip2's BZ2_bzlibVersion
    re.compile(rb"\0keyutils-(\d+\.\d+(?:\.\d+)?)\0"),
    re.compile(rb"\0Cyrus SASL\0(\d+\.\d+\.\d+)\0"),
)


def elf_version(blob: bytes, elf: object | None = None) -> str | None:
    """The upstream version an ELF's bytes tell: libpq's ``PQlibVersion`` constant, or a version string."""
    pq = _pqlibversion(blob, elf)
    if pq is not None:
        major, minor = divmod(pq, 10000)
        return f"{major}.{minor}" if major >= 10 else f"{major}.{minor // 100}.{minor % 100}"
    for pattern in _VERSION_STRINGS:
        m = pattern.search(blob)
        if m:
            return m.group(1).decode()
    return None


def _pqlibversion(blob: bytes, elf: object | None) -> int | None:
    """libpq's ``PQlibVersion`` is ``[endbr64;] mov eax, imm32; ret``: read the constant through .dynsym."""
    from elftools.elf.elffile import ELFFile

    elf_file = elf if isinstance(elf, ELFFile) else ELFFile(io.BytesIO(blob))
    dynsym = elf_file.get_section_by_name(".dynsym")
    if dynsym is None or not hasattr(dynsym, "get_symbol_by_name"):
        return None
    found = dynsym.get_symbol_by_name("PQlibVersion")
    if not found or not found[0].entry.st_value:
        return None
    offsets = list(elf_file.address_offsets(found[0].entry.st_value))
    if not offsets:
        return None
    code = blob[offsets[0] : offsets[0] + 16]
    if code.startswith(b"\xf3\x0f\x1e\xfa"):  # endbr64
        code = code[4:]
    if len(code) >= 6 and code[0] == 0xB8 and code[5] == 0xC3:
        return int.from_bytes(code[1:5], "little")
    return None
