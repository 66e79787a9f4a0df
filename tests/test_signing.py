"""nox -s sign / repo / verify's signature checks, with real gpg, rpmsign, rpm, gpgv, createrepo_c and
apt-ftparchive, on the packages the session built and a throwaway key."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from owrelease import sigcheck
from signkeys import ThrowawayKey, make_key

pytestmark = [pytest.mark.packages, pytest.mark.slow]
ROOT = Path(__file__).resolve().parent.parent


def _copy_dist(release_build: object, dest: Path) -> Path:
    dest.mkdir()
    for p in (release_build.rpm, release_build.deb):  # type: ignore[attr-defined]
        shutil.copy2(p, dest / p.name)
    (dest / "SHA256SUMS").write_text("stale\n")
    return dest


def _tool(module: str, env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    env = {**env, "PYTHONPATH": str(ROOT / "packaging"), "SOURCE_DATE_EPOCH": "1767225600"}
    return subprocess.run(
        [sys.executable, "-m", f"owrelease.{module}", *args],
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )


def _snapshot(d: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted(d.iterdir()) if p.is_file()}


def _agents(home: Path) -> list[str]:
    found = []
    for cmd in Path("/proc").glob("[0-9]*/cmdline"):
        try:
            text = cmd.read_bytes().replace(b"\0", b" ").decode()
        except OSError:
            continue
        if text.startswith("gpg-agent") and str(home) in text:
            found.append(text)
    return found


def test_sign_then_verify_and_same_bytes_twice(
    release_build: object, signing_key: ThrowawayKey, tmp_path: Path
) -> None:
    a, b = _copy_dist(release_build, tmp_path / "a"), _copy_dist(release_build, tmp_path / "b")
    for d in (a, b):
        proc = _tool("sign", signing_key.env(), "--dist", str(d))
        assert proc.returncode == 0, proc.stderr
    assert _snapshot(a) == _snapshot(b), "same key and commit gave different bytes"
    assert not _agents(signing_key.home), "gpg-agent left running"
    names = set(_snapshot(a))
    assert {"RPM-GPG-KEY-openwatch", "openwatch-archive-keyring.gpg", "SHA256SUMS", "SHA256SUMS.asc"} <= names
    dearmored = subprocess.run(
        ["gpg", "--dearmor"],
        input=(a / "RPM-GPG-KEY-openwatch").read_bytes(),
        capture_output=True,
        check=True,
    ).stdout
    assert dearmored == (a / "openwatch-archive-keyring.gpg").read_bytes()
    # the operator's two commands, as the README gives them
    ok = subprocess.run(
        "gpgv --keyring ./openwatch-archive-keyring.gpg SHA256SUMS.asc SHA256SUMS && sha256sum -c SHA256SUMS",
        shell=True, cwd=a, capture_output=True, text=True, check=False,
    )  # fmt: skip
    assert ok.returncode == 0 and "Good signature" in ok.stderr, ok
    rep = sigcheck.check(a)
    assert rep.state == "signed" and not rep.failures, rep
    # signing a signed dist/ again is a no-op
    again = _tool("sign", signing_key.env(), "--dist", str(a))
    assert again.returncode == 0 and _snapshot(a) == _snapshot(b), again.stderr


def test_unsigned_dist_is_reported_not_failed(release_build: object, tmp_path: Path) -> None:
    rep = sigcheck.check(_copy_dist(release_build, tmp_path / "d"))
    assert rep.state == "unsigned" and not rep.failures and "unsigned" in rep.lines[0]


@pytest.mark.parametrize("missing", ["GNUPGHOME", "OWRELEASE_SIGNING_KEY"])
def test_no_key_is_one_line_naming_the_variable(
    release_build: object, signing_key: ThrowawayKey, tmp_path: Path, missing: str
) -> None:
    d = _copy_dist(release_build, tmp_path / "d")
    before = _snapshot(d)
    env = signing_key.env()
    del env[missing]
    proc = _tool("sign", env, "--dist", str(d))
    assert proc.returncode == 1
    lines = proc.stderr.splitlines()
    assert len(lines) == 1 and lines[0].startswith(f"sign: {missing} not set"), proc.stderr
    assert _snapshot(d) == before


def test_passphrase_key_on_a_pipe_and_the_refusals(release_build: object, tmp_path: Path) -> None:
    key = make_key(tmp_path, "pass", passphrase=True)
    d = _copy_dist(release_build, tmp_path / "d")
    before = _snapshot(d)
    # without the passphrase file: gpg's batch-mode refusal, dist/ untouched
    env = key.env()
    del env["OWRELEASE_SIGNING_PASSPHRASE_FILE"]
    proc = _tool("sign", env, "--dist", str(d))
    assert proc.returncode == 1 and "Sorry, we are in batchmode - can't get input" in proc.stderr, proc.stderr
    assert _snapshot(d) == before and not list(d.glob(".sign-*"))
    # a wrong passphrase, after the agent was stopped: it must not pass from a cache
    wrong = tmp_path / "wrong"
    wrong.write_text("not it\n")
    wrong.chmod(0o600)
    proc = _tool("sign", key.env(OWRELEASE_SIGNING_PASSPHRASE_FILE=str(wrong)), "--dist", str(d))
    assert proc.returncode == 1 and "Bad passphrase" in proc.stderr, proc.stderr
    assert _snapshot(d) == before
    # a world-readable passphrase file is refused before gpg runs
    wrong.chmod(0o644)
    proc = _tool("sign", key.env(OWRELEASE_SIGNING_PASSPHRASE_FILE=str(wrong)), "--dist", str(d))
    assert proc.returncode == 1 and "lets everyone read it" in proc.stderr, proc.stderr
    # the right one signs; then a wrong one again fails: the agent's cache was dropped
    proc = _tool("sign", key.env(), "--dist", str(d))
    assert proc.returncode == 0, proc.stderr
    assert not sigcheck.check(d).failures
    assert key.passphrase_file is not None
    assert key.passphrase_file.read_text().strip() not in proc.stdout + proc.stderr
    assert not _agents(key.home)
    d2 = _copy_dist(release_build, tmp_path / "d2")
    wrong.chmod(0o600)
    proc = _tool("sign", key.env(OWRELEASE_SIGNING_PASSPHRASE_FILE=str(wrong)), "--dist", str(d2))
    assert proc.returncode == 1 and "Bad passphrase" in proc.stderr, proc.stderr


def test_repo_tree_verified_and_tampering_found(
    release_build: object, signing_key: ThrowawayKey, other_key: ThrowawayKey, tmp_path: Path
) -> None:
    d = _copy_dist(release_build, tmp_path / "d")
    refused = _tool("repo", signing_key.env(), "--dist", str(d))
    assert refused.returncode == 1 and "dist/ is not signed" in refused.stderr, refused.stderr
    assert not (d / "repo").exists()
    assert _tool("sign", signing_key.env(), "--dist", str(d)).returncode == 0
    wrong = _tool("repo", other_key.env(), "--dist", str(d))
    assert wrong.returncode == 1 and "not the key" in wrong.stderr, wrong.stderr
    proc = _tool("repo", signing_key.env(), "--dist", str(d), "--base-url", "https://repo.example.invalid/ow")
    assert proc.returncode == 0, proc.stderr
    repo = d / "repo"
    text = (repo / "openwatch.repo").read_text()
    for line in (
        "gpgcheck=1",
        "repo_gpgcheck=1",
        "skip_if_unavailable=0",
        "baseurl=https://repo.example.invalid/ow/rpm",
    ):
        assert line in text.splitlines(), text
    assert (
        "Signed-By: /etc/apt/keyrings/openwatch-archive-keyring.gpg"
        in (repo / "openwatch.sources").read_text()
    )
    for f in ("rpm/repodata/repomd.xml.asc", "deb/dists/stable/InRelease", "deb/dists/stable/Release.gpg",
              "deb/dists/stable/main/binary-amd64/Packages.gz"):  # fmt: skip
        assert (repo / f).is_file(), f
    rep = sigcheck.check(d)
    assert not rep.failures, rep.failures
    # publishing again is a no-op for the packages; the tree keeps them
    assert _tool("repo", signing_key.env(), "--dist", str(d)).returncode == 0
    assert not sigcheck.check(d).failures
    # tampering anywhere is found
    with open(repo / "rpm" / "repodata" / "repomd.xml", "a") as fh:
        fh.write("<!-- x -->\n")
    pk = repo / "deb/dists/stable/main/binary-amd64/Packages"
    pk.write_text(pk.read_text().replace("Maintainer:", "Maintainer: x"))
    failures = "\n".join(sigcheck.check(d).failures)
    assert "repomd.xml.asc: gpgv: BAD signature" in failures, failures
    assert "binary-amd64/Packages: sha256 not as Release says" in failures, failures
