"""Build the .deb: stage the payload and DEBIAN/, run dpkg-deb reproducibly.

Entries are root-owned (postinst sets the declared owners); gzip -9, not xz: the payload is one
already-compressed executable, xz saves 1% and costs ~15 s here.
"""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

from owrelease import buildenv, render, stage
from owrelease.model import ROOT, Package
from owrelease.render import BuildFacts

FORMAT = "deb"


def installed_size_kib(root: Path) -> int:
    """Like dpkg-gencontrol: 1 KiB per directory and per started KiB of each file."""
    total = 0
    for dirpath, dirnames, filenames in os.walk(root):
        total += len(dirnames)
        for name in filenames:
            total += (os.lstat(os.path.join(dirpath, name)).st_size + 1023) // 1024
    return total


def build(
    pkg: Package,
    facts: BuildFacts,
    binary: Path,
    dist: Path,
    work: Path,
    epoch: int,
    *,
    project: Path = ROOT,
) -> Path:
    buildenv.require("dpkg-deb")
    ctx = render.context(pkg, facts)
    version = pkg.version(facts.pep440)
    work = stage.fresh_dir(work)
    root = work / "root"
    files = stage.stage(
        pkg,
        FORMAT,
        root,
        render.payload_files(pkg, ctx, FORMAT),
        stage.build_artifacts(binary),
        epoch,
        project=project,
    )
    conffiles = set(pkg.conffiles(FORMAT))
    md5sums = sorted(
        (render.md5_of(f), f.relative_to(root).as_posix())
        for f in files
        if "/" + f.relative_to(root).as_posix() not in conffiles
    )
    size = installed_size_kib(root)
    control = root / "DEBIAN"
    control.mkdir()
    os.chmod(control, 0o755)
    for name, text in render.deb_control_files(ctx, size, md5sums).items():
        if not text.strip():
            continue  # an empty conffiles list is no file at all
        path = control / name
        path.write_text(text, encoding="utf-8")
        os.chmod(path, 0o755 if name in render.DEB_SCRIPTS else 0o644)
    stage.normalise_mtimes(root, epoch)
    dist.mkdir(parents=True, exist_ok=True)
    target = dist / version.deb_filename(pkg.name, facts.arch_deb)
    env = {**os.environ, "SOURCE_DATE_EPOCH": str(epoch), "LC_ALL": "C", "TZ": "UTC"}
    argv = ["dpkg-deb", "--root-owner-group", "-Zgzip", "-z9", "--build", str(root), str(target)]
    res = subprocess.run(argv, env=env, capture_output=True, text=True, check=False)
    if res.returncode != 0:
        raise RuntimeError(f"dpkg-deb failed (exit {res.returncode}):\n{res.stdout}{res.stderr}")
    return target
