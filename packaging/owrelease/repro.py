"""Reproducibility: two clean builds of one commit must give byte-identical .rpm, .deb and binary.

`compare` takes two dist directories (and optionally the two binaries) and returns one line per
difference. When two packages differ it says where: identity or metadata fields, a path's kind, mode,
owner, group, flags, mtime or content, and, for the frozen binary, which member of PyInstaller's
archive differs. `main` (``nox -s repro``) clones the current commit twice into fresh directories,
runs the build in each (each clone starts with an empty build/ cache), and compares.
"""

from __future__ import annotations

import argparse
import hashlib
import os
import subprocess
import sys
import tempfile
from dataclasses import fields
from pathlib import Path

from owrelease.inspect import PackageView, extract_file, read_package

__all__ = ["archive_members", "compare", "compare_binaries", "compare_views", "main"]

_ARTEFACTS = ("*.rpm", "*.deb")


def _sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def archive_members(binary: Path) -> dict[str, str]:
    """Member name -> sha256 of the bytes, for every entry of a PyInstaller onefile's archive."""
    from PyInstaller.archive.readers import CArchiveReader

    reader = CArchiveReader(str(binary))
    return {name: _sha256(reader.extract(name)) for name in reader.toc}


def compare_binaries(a: Path, b: Path, label: str) -> list[str]:
    if _sha256(a.read_bytes()) == _sha256(b.read_bytes()):
        return []
    out: list[str] = []
    try:
        ma, mb = archive_members(a), archive_members(b)
    except Exception as exc:  # not a PyInstaller binary: say so, do not hide the difference
        return [f"{label}: binary differs and its archive cannot be read: {exc}"]
    for name in sorted(set(ma) | set(mb)):
        if name not in ma or name not in mb:
            out.append(f"{label}: archive member {name}: only in {'first' if name in ma else 'second'} build")
        elif ma[name] != mb[name]:
            out.append(f"{label}: archive member {name}: sha256 {ma[name][:12]} != {mb[name][:12]}")
    if not out:
        out.append(f"{label}: binary differs outside the archive members (bootloader, ELF sections or TOC)")
    return out


def compare_views(a: PackageView, b: PackageView) -> list[str]:
    """Field-by-field differences between two views of the same package built twice."""
    label = a.filename
    out: list[str] = []
    for key in ("name", "epoch", "version", "release", "arch"):
        if getattr(a, key) != getattr(b, key):
            out.append(f"{label}: (package): {key}: {getattr(a, key)!r} != {getattr(b, key)!r}")
    for key in sorted(set(a.metadata) | set(b.metadata)):
        if a.metadata.get(key) != b.metadata.get(key):
            out.append(f"{label}: (header): {key}: {a.metadata.get(key)!r} != {b.metadata.get(key)!r}")
    for key in sorted(set(a.scripts) | set(b.scripts)):
        if a.scripts.get(key) != b.scripts.get(key):
            out.append(f"{label}: (script): {key} differs")
    for key in sorted(set(a.relations) | set(b.relations)):
        if a.relations.get(key) != b.relations.get(key):
            out.append(f"{label}: (relations): {key}: {a.relations.get(key)} != {b.relations.get(key)}")
    for path in sorted(set(a.entries) | set(b.entries)):
        ea, eb = a.entries.get(path), b.entries.get(path)
        if ea is None or eb is None:
            out.append(f"{label}: {path}: only in {'first' if ea else 'second'} build")
            continue
        for f in fields(ea):
            va, vb = getattr(ea, f.name), getattr(eb, f.name)
            if va != vb:
                out.append(f"{label}: {path}: {f.name}: {va!r} != {vb!r}")
    return out


def compare(dist_a: Path, dist_b: Path, binary_path: str = "/usr/bin/openwatch") -> list[str]:
    """Every difference between the packages of two dist directories, one line each."""
    out: list[str] = []
    names_a = {p.name for pattern in _ARTEFACTS for p in dist_a.glob(pattern)}
    names_b = {p.name for pattern in _ARTEFACTS for p in dist_b.glob(pattern)}
    if not names_a | names_b:
        return [f"{dist_a}, {dist_b}: no .rpm or .deb to compare"]
    for name in sorted(names_a ^ names_b):
        out.append(f"{name}: only in {dist_a if name in names_a else dist_b}")
    for name in sorted(names_a & names_b):
        pa, pb = dist_a / name, dist_b / name
        sa, sb = _sha256(pa.read_bytes()), _sha256(pb.read_bytes())
        if sa == sb:
            continue
        out.append(f"{name}: sha256 {sa[:16]} != {sb[:16]}")
        va, vb = read_package(pa), read_package(pb)
        details = compare_views(va, vb)
        if binary_path in va.entries and binary_path in vb.entries:
            with tempfile.TemporaryDirectory(prefix="ow-repro-") as tmp:
                ba, bb = Path(tmp) / "a", Path(tmp) / "b"
                ba.write_bytes(extract_file(pa, binary_path))
                bb.write_bytes(extract_file(pb, binary_path))
                details.extend(compare_binaries(ba, bb, f"{name}: {binary_path}"))
        out.extend(
            details or [f"{name}: same contents and metadata; the container differs (compression, order)"]
        )
    return out


def _clean_build(project: Path, dest: Path, commands: list[list[str]]) -> Path:
    subprocess.run(["git", "clone", "--quiet", "--no-local", str(project), str(dest)], check=True)
    env = {**os.environ, "PYTHONPATH": str(dest / "packaging")}
    for argv in commands:
        subprocess.run(argv, cwd=dest, env=env, check=True)
    return dest / "dist"


def main(project: Path, argv: list[str] | None = None) -> int:
    """``nox -s repro``: build the committed tree twice from fresh clones and compare."""
    parser = argparse.ArgumentParser(prog="owrelease.repro")
    parser.add_argument("--keep", type=Path, default=None, help="build in this directory and keep it")
    parser.add_argument("dists", nargs="*", type=Path, help="compare these two dist directories instead")
    args = parser.parse_args(argv)
    if args.dists:
        if len(args.dists) != 2:
            parser.error("give two dist directories, or none")
        dist_a, dist_b = args.dists
    else:
        base = args.keep or Path(tempfile.mkdtemp(prefix="ow-repro-"))
        commands = [
            [sys.executable, "-m", "owrelease", "build-rpm"],
            [sys.executable, "-m", "owrelease", "build-deb"],
        ]
        dist_a = _clean_build(project, base / "a", commands)
        dist_b = _clean_build(project, base / "b", commands)
    diffs = compare(dist_a, dist_b)
    for p in sorted(dist_a.glob("*.rpm")) + sorted(dist_a.glob("*.deb")):
        state = "differs" if any(line.startswith(p.name) for line in diffs) else "identical"
        print(f"{p.name}: {_sha256(p.read_bytes())[:16]} {state}")
    for line in diffs:
        print(f"FAIL {line}")
    print("reproducible" if not diffs else f"NOT reproducible: {len(diffs)} difference(s)")
    return 1 if diffs else 0


if __name__ == "__main__":  # pragma: no cover
    raise SystemExit(main(Path(os.environ.get("OPENWATCH_PROJECT", Path.cwd())), sys.argv[1:]))
