"""The signature part of ``nox -s verify``: what dist/ and dist/repo/ are signed with, checked the way
operators' tools check it, against the exported key alone.

- every .rpm: ``rpm -K`` with ``_pkgverify_level signature`` in a private rpmdb holding only
  RPM-GPG-KEY-openwatch (plain ``rpm -K`` passes an unsigned rpm);
- SHA256SUMS.asc with gpgv over openwatch-archive-keyring.gpg, then every listed sha256;
- in dist/repo/: InRelease, Release.gpg and repomd.xml.asc with gpgv, the Packages files against
  Release, each pool .deb against Packages, each repository rpm with rpm -K, and dist/'s packages
  present in both trees with the same bytes.

A dist/ with no signature at all is reported as unsigned, which is not a failure; half of one is.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass, field
from pathlib import Path

from owrelease.sign import SUMS, SUMS_SIG, packages_in
from owrelease.signing import KEY_ARMORED, KEY_BINARY, gpgv_problem, rpm_is_signed, rpm_signature_problem

__all__ = ["SignatureReport", "check"]


@dataclass
class SignatureReport:
    state: str = "unsigned"  # unsigned | signed
    lines: list[str] = field(default_factory=list)
    failures: list[str] = field(default_factory=list)


def _sha(p: Path) -> str:
    return hashlib.sha256(p.read_bytes()).hexdigest()


def _sums(path: Path) -> dict[str, str]:
    out = {}
    for ln in path.read_text().splitlines():
        if ln.strip():
            digest, name = ln.split(None, 1)
            out[name.lstrip("*")] = digest
    return out


def check(dist: Path) -> SignatureReport:
    rep = SignatureReport()
    rpms, debs = packages_in(dist)
    marks = [dist / n for n in (SUMS_SIG, KEY_ARMORED, KEY_BINARY)]
    signed_rpms = [r for r in rpms if rpm_is_signed(r)]
    if not any(m.exists() for m in marks) and not signed_rpms and not (dist / "repo").exists():
        rep.lines.append(f"{dist}: unsigned (nox -s sign signs it)")
        return rep
    rep.state = "signed"
    for m in marks:
        if not m.is_file():
            rep.failures.append(f"{m}: missing: dist/ is half signed (run nox -s sign again)")
    if rep.failures:
        return rep
    keyring, armored = dist / KEY_BINARY, dist / KEY_ARMORED
    for rpm, problem in rpm_signature_problem(rpms, armored).items():
        if problem:
            rep.failures.append(f"{rpm.name}: {problem}")
        else:
            rep.lines.append(f"{rpm.name}: rpm -K (signature level, {KEY_ARMORED} only): OK")
    problem, fpr = gpgv_problem(keyring, dist / SUMS_SIG, dist / SUMS)
    if problem:
        rep.failures.append(f"{SUMS_SIG}: {problem}")
    else:
        rep.lines.append(f"{SUMS_SIG}: good signature by {fpr}")
        listed = _sums(dist / SUMS)
        for p in [*rpms, *debs]:
            if p.name not in listed:
                rep.failures.append(f"{SUMS}: {p.name} not listed")
            elif listed[p.name] != _sha(p):
                rep.failures.append(f"{SUMS}: {p.name}: sha256 {_sha(p)[:16]}, listed {listed[p.name][:16]}")
        for name in listed:
            if not (dist / name).is_file():
                rep.failures.append(f"{SUMS}: {name} listed but not in {dist}")
    repo = dist / "repo"
    if repo.is_dir():
        _check_repo(repo, dist, rpms, debs, rep)
    return rep


def _check_repo(repo: Path, dist: Path, rpms: list[Path], debs: list[Path], rep: SignatureReport) -> None:
    keyring = dist / KEY_BINARY
    for key in (KEY_ARMORED, KEY_BINARY):
        if not (repo / key).is_file() or (repo / key).read_bytes() != (dist / key).read_bytes():
            rep.failures.append(f"repo/{key}: missing or not dist/'s key")
    # dnf
    repomd = repo / "rpm" / "repodata" / "repomd.xml"
    problem, fpr = gpgv_problem(keyring, repomd.with_name("repomd.xml.asc"), repomd)
    rep.failures.append(f"repo/rpm/repodata/repomd.xml.asc: {problem}") if problem else rep.lines.append(
        f"repo/rpm/repodata/repomd.xml.asc: good signature by {fpr}"
    )
    repo_rpms = sorted((repo / "rpm").glob("*.rpm"))
    for rpm, msg in rpm_signature_problem(repo_rpms, dist / KEY_ARMORED).items():
        if msg:
            rep.failures.append(f"repo/rpm/{rpm.name}: {msg}")
    # apt
    suite = repo / "deb" / "dists" / "stable"
    problem, fpr = gpgv_problem(keyring, suite / "InRelease")
    rep.failures.append(f"repo/deb/dists/stable/InRelease: {problem}") if problem else rep.lines.append(
        f"repo/deb/dists/stable/InRelease: good signature by {fpr}"
    )
    problem, _ = gpgv_problem(keyring, suite / "Release.gpg", suite / "Release")
    if problem:
        rep.failures.append(f"repo/deb/dists/stable/Release.gpg: {problem}")
    release = (suite / "Release").read_text() if (suite / "Release").is_file() else ""
    sha_block = release.split("SHA256:", 1)[1] if "SHA256:" in release else ""
    for m in re.finditer(r"^ ([0-9a-f]{64})\s+\d+\s+(\S+)$", sha_block, re.M):
        f = suite / m[2]
        if f.is_file() and _sha(f) != m[1]:
            rep.failures.append(f"repo/deb/dists/stable/{m[2]}: sha256 not as Release says")
    for packages in suite.glob("*/binary-*/Packages"):
        for stanza in packages.read_text().split("\n\n"):
            fn = re.search(r"^Filename: (\S+)$", stanza, re.M)
            sha = re.search(r"^SHA256: (\S+)$", stanza, re.M)
            if fn and sha:
                f = repo / "deb" / fn[1]
                if not f.is_file() or _sha(f) != sha[1]:
                    rep.failures.append(f"repo/deb/{fn[1]}: missing or not as {packages.name} says")
    # dist/'s packages are the published ones
    pool = {p.name: p for p in (repo / "deb" / "pool").rglob("*.deb")}
    for p in rpms:
        q = repo / "rpm" / p.name
        if not q.is_file() or q.read_bytes() != p.read_bytes():
            rep.failures.append(f"repo/rpm/{p.name}: missing or not dist/'s bytes (run nox -s repo)")
    for p in debs:
        if p.name not in pool or pool[p.name].read_bytes() != p.read_bytes():
            rep.failures.append(f"repo/deb/pool/.../{p.name}: missing or not dist/'s bytes (run nox -s repo)")
    rep.lines.append(f"repo: {len(repo_rpms)} rpm, {len(pool)} deb published; dist/'s packages among them")
