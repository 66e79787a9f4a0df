"""Which members of the onefile are unpacked on demand, and what each extension module needs unpacked.

Run inside the PyInstaller spec (owrelease.freeze.spec_source), after ``Analysis``: it sees the bundle's
TOC (``a.binaries``, ``a.datas``) and the files behind it. Standard library only, because the spec runs in
the build root's venv; its text is part of the freeze cache key.

The onefile's bootloader writes every extracted member to a fresh directory on every start. Our bootloader
patch (packaging/buildroot/pyinstaller-bootloader.patch) leaves out each member named by an OPTION entry
``pyi-openwatch-ondemand NAME``; ``openwatch.ondemand`` unpacks it when it is first needed. The plan:

* an extension module is on demand unless the interpreter imports it before our runtime hook runs
  (:data:`EAGER_MODULES`); it brings the bundled libraries it links, closed over DT_NEEDED;
* a shared library is on demand when no eager member links it (libpython and its closure stay eager);
* data is on demand under :data:`DATA_PREFIXES`, whose readers call ``openwatch.ondemand.ensure``, and
  in ``*.dist-info/`` (unpacked when importlib.metadata asks); anything else a library might open by path
  stays eager.
"""

from __future__ import annotations

import os
import struct
from collections.abc import Iterable, Sequence

OPTION_PREFIX = "pyi-openwatch-ondemand "
# Imported before the first runtime hook by PyInstaller's bootstrap (pyimod01_archive: zlib and struct).
# A module missing here fails every start of the frozen binary, which every frozen test runs. Not here:
# _ctypes, which the bootstrap imports only to wrap ctypes.CDLL if it can (openwatch.ondemand does that
# wrapping when something first imports ctypes: psycopg, for ctypes.util).
EAGER_MODULES = frozenset({"zlib", "_struct"})
# Data whose only readers go through openwatch.ondemand.ensure: the migrations and the UI; and the
# distributions' metadata, which importlib.metadata finds only after asking sys.meta_path (the on-demand
# finder unpacks it then).
DATA_PREFIXES = ("migrations/", "openwatch/server/ui/")
DIST_INFO = ".dist-info/"
_EXT_SUFFIXES = (".so",)

Toc = Sequence[tuple[str, str, str]]  # (dest name, source path, typecode), PyInstaller's TOC tuples


def needed(path: str) -> list[str]:
    """DT_NEEDED of an ELF64 little-endian file, read from its section headers (``.dynamic``/``.dynstr``).

    Section headers, not program headers: strip keeps them, and patchelf rewrites both consistently.
    A file that is not such an ELF needs nothing.
    """
    with open(path, "rb") as fh:
        data = fh.read()
    if data[:4] != b"\x7fELF" or data[4] != 2 or data[5] != 1:
        return []
    shoff, shentsize, shnum = struct.unpack_from("<Q", data, 0x28)[0], *struct.unpack_from("<HH", data, 0x3A)
    sections = [struct.unpack_from("<IIQQQQIIQQ", data, shoff + i * shentsize) for i in range(shnum)]
    out: list[str] = []
    for _name, sh_type, _fl, _addr, off, size, link, _info, _al, entsize in sections:
        if sh_type != 6:  # SHT_DYNAMIC
            continue
        str_off = sections[link][4]
        for i in range(size // (entsize or 16)):
            tag, val = struct.unpack_from("<qQ", data, off + i * 16)
            if tag == 0:
                break
            if tag == 1:  # DT_NEEDED
                end = data.index(b"\0", str_off + val)
                out.append(data[str_off + val : end].decode())
    return out


def module_name(dest: str) -> str | None:
    """The dotted module an EXTENSION member is: ``python3.11/lib-dynload/_ssl.cpython-311-...so`` ->
    ``_ssl``, ``psycopg_binary/_psycopg.cpython-311-...so`` -> ``psycopg_binary._psycopg``."""
    parts = dest.split("/")
    if len(parts) >= 3 and parts[0].startswith("python3") and parts[1] == "lib-dynload":
        parts = parts[2:]
    if not parts[-1].endswith(_EXT_SUFFIXES):
        return None
    parts[-1] = parts[-1].split(".", 1)[0]
    return ".".join(parts)


def plan(binaries: Toc, datas: Toc) -> tuple[dict[str, list[str]], list[str]]:
    """(module -> members to unpack, libraries first and the module's own file last; on-demand data).

    Every member named in the result is one the bootloader leaves in the archive.
    """
    files = {dest: src for dest, src, code in binaries if code in ("BINARY", "EXTENSION")}
    by_base: dict[str, list[str]] = {}
    for dest in files:
        by_base.setdefault(os.path.basename(dest), []).append(dest)
    deps = {dest: sorted({m for n in needed(src) for m in by_base.get(n, ())}) for dest, src in files.items()}

    def closure(roots: Iterable[str]) -> list[str]:
        """Post-order over DT_NEEDED: every library before what links it."""
        seen: set[str] = set()
        order: list[str] = []

        def visit(m: str) -> None:
            if m in seen:
                return
            seen.add(m)
            for d in deps.get(m, ()):
                visit(d)
            order.append(m)

        for r in roots:
            visit(r)
        return order

    extensions = {dest: module_name(dest) for dest, _s, code in binaries if code == "EXTENSION"}
    lazy_ext = {d: m for d, m in sorted(extensions.items()) if m and m not in EAGER_MODULES}
    reached = set(closure(lazy_ext)) - set(lazy_ext)
    # eager: the extensions imported before our hook, libpython (the bootloader loads it by name, nothing
    # need link it), and every library no on-demand extension links (the safe default for the unknown)
    eager_roots = [
        d
        for d in files
        if d not in lazy_ext
        and (d in extensions or d not in reached or os.path.basename(d).startswith("libpython"))
    ]
    eager = set(closure(eager_roots))
    modules = {m: [x for x in closure([d]) if x not in eager] for d, m in lazy_ext.items()}
    data = sorted(
        dest
        for dest, _s, code in datas
        if code == "DATA" and (dest.startswith(DATA_PREFIXES) or DIST_INFO in dest.split("/", 1)[0] + "/")
    )
    return modules, data


def members(modules: dict[str, list[str]], data: Sequence[str]) -> list[str]:
    """Every member the bootloader must leave in the archive, once each, sorted."""
    return sorted({m for ms in modules.values() for m in ms} | set(data))


def manifest_source(modules: dict[str, list[str]], data: Sequence[str]) -> str:
    """``openwatch/_ondemand.py``, the module the frozen binary reads (openwatch.ondemand)."""
    return (
        '"""Written by owrelease.ondemandplan at freeze time: what openwatch.ondemand unpacks when."""\n\n'
        f"MODULES = {dict(sorted(modules.items()))!r}\n"
        f"DATA = {tuple(data)!r}\n"
    )
