"""Build the .rpm: stage the payload, render the spec, run rpmbuild reproducibly."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

from owrelease import buildenv, render, stage
from owrelease.model import ROOT, Package
from owrelease.render import BuildFacts

FORMAT = "rpm"


def rpmbuild_argv(spec: Path, topdir: Path, staged: Path, arch: str) -> list[str]:
    """The rpmbuild command line: reproducible (SOURCE_DATE_EPOCH from the environment), no build-id links."""
    defines = {
        "_topdir": str(topdir),
        "_tmppath": str(topdir / "tmp"),
        "ow_stage": str(staged),
        "_build_name_fmt": "%%{NAME}-%%{VERSION}-%%{RELEASE}.%%{ARCH}.rpm",
        "use_source_date_epoch_as_buildtime": "1",
        "clamp_mtime_to_source_date_epoch": "1",
        "build_mtime_policy": "clamp_to_source_date_epoch",
        "source_date_epoch_from_changelog": "0",
        "_buildhost": "reproducible",
        "_build_id_links": "none",
        "_binary_payload": "w9.gzdio",
    }
    argv = ["rpmbuild", "-bb", "--quiet", "--target", arch]
    for key, value in defines.items():
        argv += ["--define", f"{key} {value}"]
    return [*argv, str(spec)]


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
    buildenv.require("rpmbuild")
    ctx = render.context(pkg, facts)
    version = pkg.version(facts.pep440)
    work = stage.fresh_dir(work)
    staged = work / "stage"
    stage.stage(
        pkg,
        FORMAT,
        staged,
        render.payload_files(pkg, ctx, FORMAT),
        stage.build_artifacts(binary),
        epoch,
        project=project,
    )
    spec = work / f"{pkg.name}.spec"
    spec.write_text(render.rpm_spec(ctx), encoding="utf-8")
    topdir = work / "topdir"
    for sub in ("RPMS", "BUILD", "BUILDROOT", "SOURCES", "SPECS", "SRPMS", "tmp"):
        (topdir / sub).mkdir(parents=True)
    env = {"SOURCE_DATE_EPOCH": str(epoch), "LC_ALL": "C", "TZ": "UTC", "PATH": _path()}
    res = subprocess.run(
        rpmbuild_argv(spec, topdir, staged, facts.arch_rpm),
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )
    if res.returncode != 0:
        raise RuntimeError(f"rpmbuild failed (exit {res.returncode}):\n{res.stdout}{res.stderr}")
    name = version.rpm_filename(pkg.name, facts.arch_rpm)
    built = topdir / "RPMS" / name
    if not built.is_file():
        found = sorted(p.name for p in (topdir / "RPMS").rglob("*.rpm"))
        raise RuntimeError(f"rpmbuild: expected {name}, found {found}")
    dist.mkdir(parents=True, exist_ok=True)
    target = dist / name
    shutil.copyfile(built, target)
    return target


def _path() -> str:
    import os

    return os.environ.get("PATH", "/usr/sbin:/usr/bin:/sbin:/bin")
