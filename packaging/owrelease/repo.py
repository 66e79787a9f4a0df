"""``nox -s repo``: publish a signed dist/ into a signed dnf and apt repository tree (static files only).

    dist/repo/
      rpm/<name>.rpm, rpm/repodata/repomd.xml(.asc)        createrepo_c, then a detached signature
      deb/pool/main/<p>/<name>/<file>.deb                  every version ever published here
      deb/dists/stable/{Release,InRelease,Release.gpg}     apt-ftparchive, then clearsigned and detached
      deb/dists/stable/main/binary-<arch>/Packages(.gz)
      openwatch.repo, openwatch.sources                    what operators drop into their system
      RPM-GPG-KEY-openwatch, openwatch-archive-keyring.gpg the keys

Packages already in the tree stay (upgrades and downgrades work from it); a file of the same name with
other bytes is refused: a published version is never replaced. The new tree is made in a staging copy
and swapped in, so a failure leaves the published tree as it was. dist/ must be signed by the key in the
environment (``nox -s sign``): its rpm signatures and SHA256SUMS.asc are checked before anything is copied.
"""

from __future__ import annotations

import argparse
import datetime as dt
import gzip
import hashlib
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

from owrelease import buildenv
from owrelease.sign import SUMS, SUMS_SIG, packages_in
from owrelease.signing import (
    KEY_ARMORED,
    KEY_BINARY,
    Signer,
    SigningError,
    gpgv_problem,
    key_from_env,
    rpm_signature_problem,
)

__all__ = ["PLACEHOLDER_URL", "SUITE", "main", "publish"]

SUITE = "stable"
COMPONENT = "main"
# .invalid never resolves (RFC 6761): a file installed without setting the URL fails loudly
PLACEHOLDER_URL = "https://openwatch-repo.invalid"
APT_KEYRING = "/etc/apt/keyrings/openwatch-archive-keyring.gpg"


def dnf_repo_file(base_url: str) -> str:
    """gpgkey= is the key in the tree itself: dnf (also with --installroot, where a file:// key would be
    read from the host) imports it on first use and prints its fingerprint for the operator to compare."""
    return (
        "# /etc/yum.repos.d/openwatch.repo\n"
        "[openwatch]\n"
        "name=OpenWatch\n"
        f"baseurl={base_url.rstrip('/')}/rpm\n"
        "enabled=1\n"
        "gpgcheck=1\n"
        "repo_gpgcheck=1\n"
        f"gpgkey={base_url.rstrip('/')}/{KEY_ARMORED}\n"
        # Debian's and some hosts' dnf.conf say skip_if_unavailable=True: a badly signed repository would
        # then be skipped with a warning and `dnf upgrade` would exit 0
        "skip_if_unavailable=0\n"
    )


def apt_sources_file(base_url: str, keyring: str = APT_KEYRING) -> str:
    return (
        "# /etc/apt/sources.list.d/openwatch.sources\n"
        "Types: deb\n"
        f"URIs: {base_url.rstrip('/')}/deb\n"
        f"Suites: {SUITE}\n"
        f"Components: {COMPONENT}\n"
        f"Signed-By: {keyring}\n"
    )


def _run(argv: list[str], cwd: Path | None = None) -> str:
    proc = subprocess.run(
        argv,
        cwd=cwd,
        capture_output=True,
        text=True,
        check=False,
        env={"LC_ALL": "C", "PATH": os.environ.get("PATH", "/usr/bin:/bin")},
    )
    if proc.returncode != 0:
        last = (proc.stderr.strip().splitlines() or proc.stdout.strip().splitlines() or ["no output"])[-1]
        raise SigningError(f"{argv[0]} failed (exit {proc.returncode}): {last}")
    return proc.stdout


def check_signed_dist(dist: Path, signer: Signer) -> tuple[list[Path], list[Path]]:
    """The packages of dist/, refusing anything not signed by this key (rpm header, SHA256SUMS.asc)."""
    rpms, debs = packages_in(dist)
    if not rpms and not debs:
        raise SigningError(f"{dist}: no .rpm or .deb to publish")
    key = dist / KEY_BINARY
    for f in (dist / KEY_ARMORED, key, dist / SUMS, dist / SUMS_SIG):
        if not f.is_file():
            raise SigningError(f"{f}: missing: dist/ is not signed (run nox -s sign first)")
    if key.read_bytes() != signer.export(armored=False):
        raise SigningError(f"{key}: not the key {signer.key.fingerprint} of the environment")
    problem, _ = gpgv_problem(key, dist / SUMS_SIG, dist / SUMS)
    if problem:
        raise SigningError(f"{dist / SUMS_SIG}: {problem}")
    listed: dict[str, str] = {}
    for ln in (dist / SUMS).read_text().splitlines():
        if ln.strip():
            digest, name = ln.split(None, 1)
            listed[name] = digest
    for p in [*rpms, *debs]:
        if listed.get(p.name) != hashlib.sha256(p.read_bytes()).hexdigest():
            raise SigningError(f"{p}: not as {SUMS} lists it (sign again after building)")
    for rpm, msg in rpm_signature_problem(rpms, dist / KEY_ARMORED).items():
        if msg:
            raise SigningError(f"{rpm}: {msg}")
    return rpms, debs


def _place(src: Path, dest: Path) -> bool:
    """Copy a package into the tree; False when the same bytes are already there. Never replaces."""
    if dest.exists():
        if dest.read_bytes() == src.read_bytes():
            return False
        raise SigningError(
            f"{dest}: already published with other bytes (a version is never replaced: bump the release)"
        )
    dest.parent.mkdir(parents=True, exist_ok=True)
    shutil.copy2(src, dest)
    return True


def _deb_arch(deb: Path) -> str:
    return deb.name.rsplit("_", 1)[-1].removesuffix(".deb")


def _apt_date(now: float) -> str:
    return dt.datetime.fromtimestamp(now, dt.UTC).strftime("%a, %d %b %Y %H:%M:%S +0000")


def build_deb_tree(deb_root: Path, signer: Signer) -> None:
    """Packages(.gz) per architecture over the whole pool, then Release, InRelease and Release.gpg."""
    suite = deb_root / "dists" / SUITE
    shutil.rmtree(suite, ignore_errors=True)
    arches = sorted({_deb_arch(p) for p in (deb_root / "pool").rglob("*.deb")} - {"all"}) or [
        buildenv.arch()[1]
    ]
    for arch in arches:
        bdir = suite / COMPONENT / f"binary-{arch}"
        bdir.mkdir(parents=True)
        packages = _run(["apt-ftparchive", "--arch", arch, "packages", "pool"], cwd=deb_root)
        (bdir / "Packages").write_text(packages, encoding="utf-8")
        with (
            open(bdir / "Packages.gz", "wb") as raw,
            gzip.GzipFile(fileobj=raw, mode="wb", compresslevel=9, mtime=0) as gz,
        ):
            gz.write(packages.encode())
    opts = {
        "Origin": "OpenWatch", "Label": "OpenWatch", "Suite": SUITE, "Codename": SUITE,
        "Architectures": " ".join(arches), "Components": COMPONENT, "Date": _apt_date(time.time()),
        "Description": "OpenWatch server packages",
    }  # fmt: skip
    argv = ["apt-ftparchive"]
    for k, v in opts.items():
        argv += ["-o", f"APT::FTPArchive::Release::{k}={v}"]
    release = _run([*argv, "release", f"dists/{SUITE}"], cwd=deb_root)
    (suite / "Release").write_text(release, encoding="utf-8")
    signer.clearsign(suite / "Release", suite / "InRelease")
    signer.detach_sign(suite / "Release", suite / "Release.gpg")


def build_rpm_tree(rpm_root: Path, signer: Signer) -> None:
    repodata = rpm_root / "repodata"
    argv = ["createrepo_c", "--quiet", "--general-compress-type=gz", "--checksum=sha256"]
    if repodata.is_dir():
        argv.append("--update")
    _run([*argv, str(rpm_root)])
    (repodata / "repomd.xml.asc").unlink(missing_ok=True)
    signer.detach_sign(repodata / "repomd.xml", repodata / "repomd.xml.asc")


def publish(dist: Path, out: Path, signer: Signer, base_url: str, log=print) -> dict[str, int]:  # type: ignore[no-untyped-def]
    """Add dist/'s signed packages to the tree at ``out`` (made when absent); returns counts."""
    for tool in ("createrepo_c", "apt-ftparchive"):
        buildenv.require(tool)
    rpms, debs = check_signed_dist(dist, signer)
    staging = out.parent / f".{out.name}-staging-{os.getpid()}"
    old = out.parent / f".{out.name}-old-{os.getpid()}"
    shutil.rmtree(staging, ignore_errors=True)
    try:
        if out.is_dir():
            # packages are immutable once published: hard links; metadata is rewritten into new files
            shutil.copytree(out, staging, copy_function=_link_or_copy, symlinks=True)
        else:
            staging.mkdir(parents=True)
        added = 0
        for rpm in rpms:
            added += _place(rpm, staging / "rpm" / rpm.name)
        for deb in debs:
            name = deb.name.split("_", 1)[0]
            added += _place(deb, staging / "deb" / "pool" / COMPONENT / name[0] / name / deb.name)
        (staging / "rpm").mkdir(exist_ok=True)
        build_rpm_tree(staging / "rpm", signer)
        (staging / "deb" / "pool").mkdir(parents=True, exist_ok=True)
        build_deb_tree(staging / "deb", signer)
        for key in (KEY_ARMORED, KEY_BINARY):
            (staging / key).unlink(missing_ok=True)
            shutil.copyfile(dist / key, staging / key)
        for name, text in (
            ("openwatch.repo", dnf_repo_file(base_url)),
            ("openwatch.sources", apt_sources_file(base_url)),
        ):
            (staging / name).unlink(missing_ok=True)
            (staging / name).write_text(text, encoding="utf-8")
        if out.exists():
            os.rename(out, old)
        os.rename(staging, out)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
        shutil.rmtree(old, ignore_errors=True)
    counts = {
        "added": added,
        "rpm": len(list((out / "rpm").glob("*.rpm"))),
        "deb": len(list((out / "deb" / "pool").rglob("*.deb"))),
    }
    log(
        f"repo: {out}: {counts['added']} package(s) added; "
        f"{counts['rpm']} rpm and {counts['deb']} deb published"
    )
    return counts


def _link_or_copy(src: str, dst: str) -> None:
    if src.endswith((".rpm", ".deb")):
        try:
            os.link(src, dst)
            return
        except OSError:
            pass
    shutil.copy2(src, dst)


def main(project: Path, argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="owrelease.repo", description="publish signed dist/ into dist/repo/"
    )
    parser.add_argument("--dist", type=Path, default=project / "dist")
    parser.add_argument("--out", type=Path, default=None, help="the repository tree (default: DIST/repo)")
    parser.add_argument(
        "--base-url",
        default=os.environ.get("OWRELEASE_REPO_URL", PLACEHOLDER_URL),
        help="where the tree will be served; written into openwatch.repo and openwatch.sources "
        f"(default: $OWRELEASE_REPO_URL, else {PLACEHOLDER_URL} for the operator to replace)",
    )
    args = parser.parse_args(argv)
    start = time.monotonic()
    out = args.out or args.dist / "repo"
    try:
        with Signer(key_from_env(), None) as signer:
            publish(args.dist, out, signer, args.base_url)
    except (SigningError, buildenv.ToolMissing, OSError) as exc:
        print(f"repo: {exc}", file=sys.stderr)
        return 1
    print(f"repo: done in {time.monotonic() - start:.2f} s")
    return 0


if __name__ == "__main__":  # pragma: no cover
    raise SystemExit(main(Path(os.environ.get("OPENWATCH_PROJECT", Path.cwd())), sys.argv[1:]))
