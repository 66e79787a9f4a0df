"""``nox -s sign``: sign what ``build_rpm``/``build_deb`` put in dist/, all or nothing.

1. each .rpm gets an rpmsign header signature (checked at once with ``_pkgverify_level signature`` against
   the exported key alone);
2. the public key is exported as ``RPM-GPG-KEY-openwatch`` (armored) and ``openwatch-archive-keyring.gpg``
   (binary);
3. each signed .rpm's SBOM (``<rpm>.cdx.json``) is moved onto the signed bytes (:func:`sbomid.retarget`:
   the sha256 and serial number of ``metadata.component``; the components are the payload's, unchanged);
4. ``SHA256SUMS`` is rewritten over the signed packages and every SBOM, then signed into ``SHA256SUMS.asc``.

DEBs are not signed one by one (dpkg checks no such signature): they are trusted through the signed
SHA256SUMS and the repository's InRelease. Everything is made on copies in ``dist/.sign-<pid>/`` and moved
into dist/ only once all of it succeeded, so a failure leaves dist/ exactly as it was.

Exit status: 0 signed; 1 anything refused (one line naming the variable, key, file or tool).
"""

from __future__ import annotations

import argparse
import hashlib
import os
import shutil
import sys
import time
from collections.abc import Callable
from pathlib import Path

from owrelease import buildenv, sbomid
from owrelease.signing import (
    KEY_ARMORED,
    KEY_BINARY,
    Signer,
    SigningError,
    key_from_env,
    rpm_signature_problem,
)

__all__ = ["SUMS", "SUMS_SIG", "main", "packages_in", "sign_dist", "write_package_sums"]

SUMS = "SHA256SUMS"
SUMS_SIG = "SHA256SUMS.asc"


def packages_in(dist: Path) -> tuple[list[Path], list[Path]]:
    rpms = sorted(p for p in dist.glob("*.rpm") if p.is_file() and not p.name.endswith(".src.rpm"))
    debs = sorted(p for p in dist.glob("*.deb") if p.is_file())
    return rpms, debs


def write_package_sums(target: Path, packages: list[Path]) -> None:
    """sha256sum -c format over what an operator downloads: packages and SBOMs (names relative to dist/)."""
    lines = [f"{hashlib.sha256(p.read_bytes()).hexdigest()}  {p.name}\n" for p in sorted(packages)]
    target.write_text("".join(lines), encoding="utf-8")


def sign_dist(dist: Path, signer: Signer, log: Callable[[str], None] = print) -> list[Path]:
    """Sign dist/ in a staging directory, then move the results in; returns the files replaced or added."""
    rpms, debs = packages_in(dist)
    if not rpms and not debs:
        raise SigningError(f"{dist}: no .rpm or .deb to sign (run nox -s build_rpm build_deb first)")
    if rpms:
        buildenv.require("rpmsign")
    staging = dist / f".sign-{os.getpid()}"
    shutil.rmtree(staging, ignore_errors=True)
    staging.mkdir()
    try:
        signed: list[Path] = []
        for rpm in rpms:
            copy = staging / rpm.name
            shutil.copy2(rpm, copy)
            signer.rpmsign(copy)  # a no-op when the same key already made an identical signature
            signed.append(copy)
        (staging / KEY_ARMORED).write_bytes(signer.export(armored=True))
        (staging / KEY_BINARY).write_bytes(signer.export(armored=False))
        for rpm, problem in rpm_signature_problem(signed, staging / KEY_ARMORED).items():
            if problem:
                raise SigningError(
                    f"{rpm.name}: signed, but does not verify against {KEY_ARMORED}: {problem}"
                )
        sboms: list[Path] = []
        for rpm, copy in zip(rpms, signed, strict=True):
            sbom = dist / sbomid.sbom_name(rpm.name)
            if sbom.is_file():
                moved = staging / sbom.name
                old, new = (hashlib.sha256(p.read_bytes()).hexdigest() for p in (rpm, copy))
                try:
                    text = sbomid.retarget(sbom.read_text(encoding="utf-8"), old, new, sbom.name)
                except sbomid.RetargetError as exc:
                    raise SigningError(str(exc)) from None
                moved.write_text(text, encoding="utf-8")
                sboms.append(moved)
        unsigned_sboms = [
            p
            for p in sorted(dist.glob("*.cdx.json"))
            if p.is_file() and p.name not in {s.name for s in sboms}
        ]
        # the DEBs and other SBOMs are listed as they are; staged files stand for the ones they will replace
        write_package_sums(staging / SUMS, [*signed, *debs, *sboms, *unsigned_sboms])
        signer.detach_sign(staging / SUMS, staging / SUMS_SIG)
        # all made: move in (same filesystem, each a rename); the signature goes last
        order = [
            *signed,
            *sboms,
            staging / KEY_ARMORED,
            staging / KEY_BINARY,
            staging / SUMS,
            staging / SUMS_SIG,
        ]
        for path in order:
            os.replace(path, dist / path.name)
        for rpm in signed:
            log(f"sign: {rpm.name}: header signature by {signer.key.fingerprint}")
        return [dist / p.name for p in order]
    finally:
        shutil.rmtree(staging, ignore_errors=True)


def main(project: Path, argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="owrelease.sign", description="sign dist/ with the key the environment names"
    )
    parser.add_argument("--dist", type=Path, default=project / "dist")
    args = parser.parse_args(argv)
    start = time.monotonic()
    try:
        key = key_from_env()
        with Signer(key, buildenv.source_date_epoch(project)) as signer:
            written = sign_dist(args.dist, signer)
            print(
                f"sign: signature time {buildenv.iso_utc(signer.sig_time or 0)} "
                "(SOURCE_DATE_EPOCH, or the key's creation when later)"
            )
    except (SigningError, buildenv.ToolMissing, OSError) as exc:
        print(f"sign: {exc}", file=sys.stderr)  # one line; dist/ is as it was
        return 1
    print(f"sign: wrote {', '.join(p.name for p in written)} in {time.monotonic() - start:.2f} s")
    return 0


if __name__ == "__main__":  # pragma: no cover
    raise SystemExit(main(Path(os.environ.get("OPENWATCH_PROJECT", Path.cwd())), sys.argv[1:]))
