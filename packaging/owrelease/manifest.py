"""``dist/openwatch-<version>.manifest.json``: what a release is made of, for humans and diffs.

It lists each package file with its sha256, the binary's sha256 and glibc floor, and the migrations
embedded in the binary (read with PyInstaller's archive reader) with their sha256, the runtime the binary
reports (``migrate list --json``: Python, OpenSSL, libpq, psycopg) and the orig tarballs its CPython and
OpenSSL were built from (packaging/runtime.lock.json). Keys are sorted
and the output has no timestamp, so two builds of one commit write the same manifest.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from owrelease.model import Package

__all__ = ["build_manifest", "manifest_path", "write"]


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def manifest_path(dist: Path, model: Package, pep440: str) -> Path:
    return dist / f"{model.name}-{model.version(pep440).upstream}.manifest.json"


def build_manifest(model: Package, pep440: str, packages: Sequence[Path], binary: Path) -> dict[str, Any]:
    from owrelease import elfgate, runtimelock
    from owrelease.verify import archive_migrations, migrate_list_json

    pv = model.version(pep440)
    migrations = archive_migrations(binary)
    return {
        "name": model.name,
        "version": pep440,
        "rpm_evr": pv.rpm_evr,
        "deb_version": pv.deb,
        "packages": [{"file": p.name, "sha256": _sha256(p), "size": p.stat().st_size} for p in packages],
        "binary": {
            "path": model.by_id["binary"].path,
            "sha256": _sha256(binary),
            "size": binary.stat().st_size,
            "glibc_floor": elfgate.measure_floor(binary),
            "runtime": migrate_list_json(binary).get("runtime", {}),
        },
        "runtime_sources": {name: c.entry() for name, c in runtimelock.load().items()},
        "migrations": {
            "count": len(migrations),
            "head": migrations[-1].version if migrations else 0,
            "files": [{"version": m.version, "name": m.name, "sha256": m.sha256} for m in migrations],
        },
    }


def write(
    project: Path, dist: Path, model: Package, pep440: str, packages: Sequence[Path], binary: Path
) -> Path:
    """Write the manifest next to the packages; return its path."""
    del project  # the manifest is made from the built artefacts only
    data = build_manifest(model, pep440, packages, binary)
    # every SBOM of the release (owrelease.sbom), each with its sha256
    data["sboms"] = [
        {"file": p.name, "sha256": _sha256(p), "media_type": "application/vnd.cyclonedx+json"}
        for p in sorted(dist.glob("*.cdx.json"))
    ]
    target = manifest_path(dist, model, pep440)
    tmp = target.with_suffix(".tmp")
    tmp.write_text(json.dumps(data, indent=2, sort_keys=True) + "\n", encoding="utf-8")
    tmp.replace(target)
    return target
