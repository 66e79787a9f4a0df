"""Lay out a package payload from the model: directories, rendered files, the frozen binary. Pure file I/O."""

from __future__ import annotations

import gzip
import io
import os
import shutil
from collections.abc import Mapping
from pathlib import Path

from owrelease.model import ROOT, Package


def gzip_bytes(data: bytes) -> bytes:
    """gzip -9n: no name, no timestamp (reproducible)."""
    buf = io.BytesIO()
    with gzip.GzipFile(filename="", mode="wb", compresslevel=9, fileobj=buf, mtime=0) as gz:
        gz.write(data)
    return buf.getvalue()


def stage(
    pkg: Package,
    fmt: str,
    dest: Path,
    rendered: Mapping[str, str],
    artifacts: Mapping[str, Path],
    epoch: int,
    *,
    project: Path = ROOT,
) -> list[Path]:
    """Write the ``fmt`` payload under ``dest``; returns the regular files written.

    Modes are set explicitly (never from the umask); owners are left to the format (RPM %attr,
    DEB postinst). Every mtime, directories included, is set to ``epoch``. ``file:`` sources are read
    under ``project``.
    """
    dest.mkdir(parents=True, exist_ok=True)
    os.chmod(dest, 0o755)
    files: list[Path] = []
    for e in pkg.payload(fmt):
        target = dest / e.relpath
        _parents(dest, target.parent)
        if e.is_dir:
            target.mkdir(exist_ok=True)
        else:
            if e.template:
                data = rendered[e.id].encode("utf-8")
            elif e.file:
                data = (project / e.file).read_bytes()
            elif e.build_artifact:
                data = artifacts[e.build_artifact].read_bytes()
            else:  # pragma: no cover - the model forbids it
                raise ValueError(f"{e.path}: no source")
            target.write_bytes(gzip_bytes(data) if e.gzip else data)
            files.append(target)
        os.chmod(target, e.mode)
    normalise_mtimes(dest, epoch)
    return files


def build_artifacts(binary: Path) -> dict[str, Path]:
    """The ``build:<name>`` sources of package.toml: the frozen binary and what the build wrote next to it
    (``openwatch.cdx.json``, its SBOM)."""
    return {"openwatch": binary, "openwatch.cdx.json": binary.with_name("openwatch.cdx.json")}


def _parents(root: Path, directory: Path) -> None:
    missing = []
    d = directory
    while d != root and not d.exists():
        missing.append(d)
        d = d.parent
    for d in reversed(missing):
        d.mkdir()
        os.chmod(d, 0o755)


def normalise_mtimes(root: Path, epoch: int) -> None:
    for dirpath, dirnames, filenames in os.walk(root):
        for name in [*dirnames, *filenames]:
            os.utime(os.path.join(dirpath, name), (epoch, epoch), follow_symlinks=False)
    os.utime(root, (epoch, epoch))


def fresh_dir(path: Path) -> Path:
    if path.exists():
        shutil.rmtree(path)
    path.mkdir(parents=True)
    return path
