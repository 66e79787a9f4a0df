"""The release jobs the noxfile wires: freeze, render, build_rpm, build_deb, checksums."""

from __future__ import annotations

import hashlib
import os
from collections.abc import Callable
from pathlib import Path

from owrelease import buildenv, deb, freeze, lock, render, rpm
from owrelease.model import ROOT, Package, app_version, check_changelog, load

Log = Callable[[str], None]
FORMATS: dict[str, Callable[..., Path]] = {"rpm": rpm.build, "deb": deb.build}


BUILDERS = ("auto", "buildroot", "host")


def default_builder(log: Log = print) -> freeze.Builder:
    """Where release binaries are frozen: the Debian bullseye build root when this host can make one.

    A binary frozen on bookworm needs glibc 2.35 and fails on RHEL 8/9; the build root's CPython needs
    at most 2.28. ``OWRELEASE_BUILDER`` (auto | buildroot | host) overrides the choice; without a build
    root the host builds and the freeze says in one line which glibc the result needs.
    """
    from owrelease import buildroot

    choice = os.environ.get("OWRELEASE_BUILDER", "auto")
    if choice not in BUILDERS:
        raise ValueError(f"OWRELEASE_BUILDER={choice!r}: use one of {', '.join(BUILDERS)}")
    if choice == "buildroot" or (choice == "auto" and buildroot.usable()):
        return freeze.RootBuilder.ensure(buildroot.DEFAULT_CACHE)
    if choice == "auto":
        log(
            "freeze: no bullseye build root here (it needs root, chroot, unshare and debootstrap): "
            "freezing on the host"
        )
    return freeze.HostBuilder()


def load_checked(root: Path = ROOT) -> tuple[Package, str]:
    pkg = load(root / "packaging" / "package.toml")
    pep440 = app_version(root)
    check_changelog(pkg, pep440)
    return pkg, pep440


def facts_for(pep440: str, glibc_floor: str) -> render.BuildFacts:
    arch_rpm, arch_deb = buildenv.arch()
    return render.BuildFacts(pep440=pep440, glibc_floor=glibc_floor, arch_rpm=arch_rpm, arch_deb=arch_deb)


def do_freeze(
    *, root: Path = ROOT, builder: freeze.Builder | None = None, log: Log = print, gate: bool | None = None
) -> freeze.FrozenBinary:
    """``gate``: enforce package.toml's glibc_max; by default whenever the build root froze the binary."""
    pkg, _ = load_checked(root)
    lock.check(root)  # LockError (one line per problem) before anything is frozen
    builder = builder or default_builder(log)
    if gate is None:
        gate = isinstance(builder, freeze.RootBuilder)
    frozen = freeze.freeze(
        builder,
        src=root,
        cache=root / "build" / "freeze",
        glibc_max=pkg.glibc_max if gate else None,
        log=log,
    )
    binary_sbom(frozen, root=root, log=log)
    return frozen


def binary_sbom(frozen: freeze.FrozenBinary, *, root: Path = ROOT, log: Log = print) -> Path:
    """``openwatch.cdx.json`` next to the frozen binary (shipped in both packages, copied to dist/).

    Made from the binary and the provenance its freeze recorded; rewritten only when its bytes change.
    """
    import time

    from owrelease import bundle, provenance, sbom

    t0 = time.monotonic()
    pkg, pep440 = load_checked(root)
    target = frozen.path.with_name(sbom.BINARY_SBOM)
    text = sbom.binary_sbom(
        bundle.read(frozen.path),
        provenance.load(frozen.path),
        sbom.app_facts(pkg, pep440, root),
        epoch=buildenv.source_date_epoch(root),
    )
    sbom.write(text, target)
    log(f"sbom: {target.name} for the binary ({len(text) / 1e3:.0f} kB) in {time.monotonic() - t0:.1f} s")
    return target


def package_sbom(
    fmt: str, package: Path, frozen: freeze.FrozenBinary, dist: Path, *, root: Path = ROOT, log: Log = print
) -> Path:
    """``dist/<package>.cdx.json`` (the package, the binary in it and every installed file), and
    ``dist/openwatch.cdx.json`` (the binary's own SBOM): both before SHA256SUMS, so the sums cover them."""
    import shutil
    import time

    from owrelease import bundle, provenance, sbom
    from owrelease.inspect import read_package

    t0 = time.monotonic()
    pkg, pep440 = load_checked(root)
    pv = pkg.version(pep440)
    view = read_package(package)
    payload = {p: e.sha256 for p, e in view.entries.items() if e.kind == "file" and e.sha256}
    arch = facts_for(pep440, frozen.glibc_floor).arch_rpm if fmt == "rpm" else view.arch
    text = sbom.package_sbom(
        package,
        fmt,
        payload,
        pkg.by_id["binary"].path,
        bundle.read(frozen.path),
        provenance.load(frozen.path),
        sbom.app_facts(pkg, pep440, root),
        name=pkg.name,
        version=pv.rpm_evr if fmt == "rpm" else pv.deb,
        arch=arch,
        epoch=buildenv.source_date_epoch(root),
    )
    target = sbom.write(text, dist / sbom.sbom_name(package.name))
    binary_copy = dist / sbom.BINARY_SBOM
    tmp = binary_copy.with_name(binary_copy.name + ".tmp")
    shutil.copyfile(frozen.path.with_name(sbom.BINARY_SBOM), tmp)
    tmp.replace(binary_copy)
    log(f"sbom: {target.name} in {time.monotonic() - t0:.1f} s")
    return target


def do_render(out: Path, *, root: Path = ROOT, glibc_floor: str | None = None) -> list[Path]:
    """Render every template into ``out`` (readable); without a measured floor, the declared maximum."""
    pkg, pep440 = load_checked(root)
    return render.render_tree(pkg, facts_for(pep440, glibc_floor or pkg.glibc_max), out)


def build_package(
    fmt: str,
    dist: Path,
    *,
    root: Path = ROOT,
    frozen: freeze.FrozenBinary | None = None,
    builder: freeze.Builder | None = None,
    log: Log = print,
) -> Path:
    pkg, pep440 = load_checked(root)
    frozen = frozen or do_freeze(root=root, builder=builder, log=log)
    if not frozen.path.with_name("openwatch.cdx.json").is_file():
        binary_sbom(frozen, root=root, log=log)  # a binary frozen by freeze.freeze() directly
    facts = facts_for(pep440, frozen.glibc_floor)
    epoch = buildenv.source_date_epoch(root)
    work = root / "build" / "pkg" / f"{fmt}-{os.getpid()}"
    try:
        out = FORMATS[fmt](pkg, facts, frozen.path, dist, work, epoch, project=root)
    finally:
        import shutil

        shutil.rmtree(work, ignore_errors=True)
    package_sbom(fmt, out, frozen, dist, root=root, log=log)
    write_sums(dist)
    log(f"{fmt}: {out} ({out.stat().st_size / 1e6:.1f} MB)")
    return out


def write_sums(dist: Path) -> Path:
    """dist/SHA256SUMS over every other file in dist/ (sha256sum -c format), the SBOMs included."""
    lines = []
    for path in sorted(dist.iterdir()):
        if (
            path.is_file()
            and path.name not in ("SHA256SUMS", "SHA256SUMS.asc")
            and not path.name.endswith(".tmp")
        ):
            lines.append(f"{hashlib.sha256(path.read_bytes()).hexdigest()}  {path.name}\n")
    target = dist / "SHA256SUMS"
    tmp = target.with_suffix(".tmp")
    tmp.write_text("".join(lines), encoding="utf-8")
    tmp.replace(target)
    # a rebuilt dist/ is unsigned again: a signature over the old sums would only mislead (nox -s sign)
    (dist / "SHA256SUMS.asc").unlink(missing_ok=True)
    return target
