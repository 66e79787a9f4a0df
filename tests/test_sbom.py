"""The SBOMs of the real binary and packages: strict schema, reproducible bytes, complete, and refusals."""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import shutil
from collections import deque
from pathlib import Path
from typing import Any

import pytest
from conftest import ReleaseBuild
from cyclonedx.schema import SchemaVersion
from cyclonedx.validation.json import JsonStrictValidator
from owrelease import buildenv, bundle, provenance, sbom, sbomcheck
from owrelease.inspect import extract_file
from test_verify import alter_archive_member

pytestmark = [pytest.mark.packages, pytest.mark.slow]

REPO = Path(__file__).resolve().parent.parent
SHIPPED = "/usr/share/doc/openwatch/openwatch.cdx.json"
MIGRATION = "migrations/0003_job_queue.sql"


def _sboms(rb: ReleaseBuild) -> dict[str, Path]:
    return {
        "binary": rb.dist / sbom.BINARY_SBOM,
        "rpm": rb.dist / sbom.sbom_name(rb.rpm.name),
        "deb": rb.dist / sbom.sbom_name(rb.deb.name),
    }


def _sha(c: dict[str, Any]) -> str:
    return next(h["content"] for h in c.get("hashes", []) if h["alg"] == "SHA-256")


def _kind(c: dict[str, Any]) -> str | None:
    return next((p["value"] for p in c.get("properties", []) if p["name"] == sbom.KIND), None)


def _all(components: list[dict[str, Any]]) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    for c in components:
        out.append(c)
        out.extend(_all(c.get("components", [])))
    return out


@pytest.fixture(scope="module")
def binary_doc(release_build: ReleaseBuild) -> dict[str, Any]:
    return sbomcheck.load(_sboms(release_build)["binary"])


def test_each_sbom_validates_strictly_offline(release_build: ReleaseBuild) -> None:
    validator = JsonStrictValidator(SchemaVersion.V1_6)
    for label, path in _sboms(release_build).items():
        assert validator.validate_str(path.read_text()) is None, label
        assert json.loads(path.read_text())["specVersion"] == "1.6"
    # the copy shipped in both packages is the binary's SBOM, byte for byte
    binary_text = _sboms(release_build)["binary"].read_bytes()
    for pkg in (release_build.rpm, release_build.deb):
        assert extract_file(pkg, SHIPPED) == binary_text, pkg.name


def test_writer_is_byte_identical_and_derives_serial_and_time(release_build: ReleaseBuild) -> None:
    """Two runs of the writer over the same binary give the same bytes as the build wrote; the serial comes
    from the artifact's sha256 and the timestamp from SOURCE_DATE_EPOCH, so nothing varies between builds."""
    exe = release_build.frozen.path
    facts = sbom.app_facts(*_model_and_version(), REPO)
    epoch = buildenv.source_date_epoch(REPO)
    runs = [sbom.binary_sbom(bundle.read(exe), provenance.load(exe), facts, epoch=epoch) for _ in range(2)]
    assert runs[0] == runs[1]
    assert runs[0] == _sboms(release_build)["binary"].read_text()
    doc = json.loads(runs[0])
    sha = hashlib.sha256(exe.read_bytes()).hexdigest()
    assert doc["serialNumber"] == f"urn:uuid:{sbom.serial_for(sha)}"
    assert sbom.serial_for(sha) != sbom.serial_for("0" * 64)
    when = dt.datetime.fromtimestamp(epoch, dt.UTC).strftime("%Y-%m-%dT%H:%M:%S")
    assert doc["metadata"]["timestamp"].startswith(when)
    for pkg in (release_build.rpm, release_build.deb):
        pdoc = json.loads((release_build.dist / sbom.sbom_name(pkg.name)).read_text())
        pkg_sha = hashlib.sha256(pkg.read_bytes()).hexdigest()
        assert pdoc["serialNumber"] == f"urn:uuid:{sbom.serial_for(pkg_sha)}"
        assert _sha(pdoc["metadata"]["component"]) == pkg_sha


def _model_and_version() -> tuple[Any, str]:
    from owrelease import build

    return build.load_checked(REPO)


def test_complete_against_the_real_binary(release_build: ReleaseBuild, binary_doc: dict[str, Any]) -> None:
    exe = release_build.frozen.path
    b = bundle.read(exe)
    report = sbomcheck.check(_sboms(release_build)["binary"], b, subject_sha256=b.sha256)
    assert report.failures == []
    assert report.unaccounted == 0
    assert report.summary().startswith("OK openwatch.cdx.json: components ")
    assert report.summary().endswith("; 0 unaccounted")
    for kind in ("application", "bootloader", "migration", "python", "runtime", "debian"):
        assert report.kinds[kind] >= 1, kind
    assert sum(report.members.values()) == len(b.members)
    listed, _kinds, problems = sbomcheck.listed_members(binary_doc)
    assert problems == []
    for path, member in b.members.items():
        assert listed[path].sha256 == member.sha256, path

    migrations = [c for c in binary_doc["components"] if _kind(c) == "migration"]
    assert len(migrations) == 46 == len(list((REPO / "migrations").glob("*.sql")))
    for c in migrations:
        assert c["type"] == "data"
        assert _sha(c) == hashlib.sha256((REPO / "migrations" / c["name"]).read_bytes()).hexdigest()

    lock = json.loads((REPO / "packaging" / "runtime.lock.json").read_text())["components"]
    by_name = {c["name"]: c for c in binary_doc["components"]}
    for name, key in (("cpython", "python"), ("openssl", "openssl")):
        c, src = by_name[name], lock[key]
        assert c["purl"] == f"pkg:generic/{name}@{src['upstream_version']}"
        assert c["cpe"].startswith("cpe:2.3:a:") and f":{src['upstream_version']}:" in c["cpe"]
        (ref,) = [r for r in c["externalReferences"] if r["type"] == "source-distribution"]
        assert ref["hashes"] == [{"alg": "SHA-256", "content": src["sha256"]}]
        assert ref["url"].endswith(src["orig_tarball"])
        (ancestor,) = c["pedigree"]["ancestors"]
        assert ancestor["name"] == src["source_package"]
        assert ancestor["purl"].startswith(f"pkg:deb/debian/{src['source_package']}@{src['debian_version']}")

    every = _all(binary_doc["components"])
    libpq = next(c for c in every if c["bom-ref"].startswith("member:psycopg_binary.libs/libpq"))
    texts = [p["diff"]["text"]["content"] for p in libpq["pedigree"]["patches"]]
    assert any(t.startswith("patchelf --replace-needed ") for t in texts), texts
    assert libpq["pedigree"]["ancestors"][0]["purl"].startswith("pkg:pypi/psycopg-binary@")

    boot = by_name["pyinstaller-bootloader"]
    (patch,) = boot["pedigree"]["patches"]
    noexec = (REPO / "packaging" / "buildroot" / "pyinstaller-bootloader.patch").read_text()
    assert patch["diff"]["text"]["content"].strip() == noexec.strip()

    # openwatch -> psycopg -> libpq -> OpenSSL, by dependencies alone
    edges = {d["ref"]: d.get("dependsOn", []) for d in binary_doc["dependencies"]}
    openssl_refs = {c["bom-ref"] for c in _all([by_name["openssl"]])}
    seen, queue = {"openwatch"}, deque(["openwatch"])
    while queue:
        for nxt in edges.get(queue.popleft(), []):
            if nxt not in seen:
                seen.add(nxt)
                queue.append(nxt)
    assert "pypi:psycopg" in edges["openwatch"]
    assert libpq["bom-ref"] in seen
    assert set(edges[libpq["bom-ref"]]) & openssl_refs


@pytest.fixture
def exe_copy(release_build: ReleaseBuild, tmp_path: Path) -> Path:
    exe = tmp_path / "openwatch"
    shutil.copyfile(release_build.frozen.path, exe)
    return exe


def test_altered_member_is_named(release_build: ReleaseBuild, exe_copy: Path) -> None:
    original = (REPO / MIGRATION).read_bytes()
    altered = original[: original.rstrip(b"\n").rfind(b"\n") + 1]
    alter_archive_member(exe_copy, MIGRATION, altered)
    report = sbomcheck.check(_sboms(release_build)["binary"], bundle.read(exe_copy))
    new, old = hashlib.sha256(altered).hexdigest(), hashlib.sha256(original).hexdigest()
    assert report.failures == [
        f"openwatch.cdx.json: openwatch!{MIGRATION}: sha256 {new[:16]}, the SBOM lists {old[:16]}"
    ]
    assert report.unaccounted == 1 and report.summary().endswith("; 1 unaccounted")


def test_member_not_in_the_sbom_is_named(release_build: ReleaseBuild, binary_doc: dict[str, Any]) -> None:
    """An archive member the SBOM does not list (here: its listing removed, which is what an added member
    looks like to the check) is refused, naming it."""
    doc = json.loads(json.dumps(binary_doc))
    doc["components"] = [c for c in doc["components"] if c["name"] != MIGRATION.split("/")[1]]
    b = bundle.read(release_build.frozen.path)
    report = sbomcheck.check(_sboms(release_build)["binary"], b, doc=doc)
    assert report.failures == [f"openwatch.cdx.json: openwatch!{MIGRATION}: in the archive, not in the SBOM"]


def test_hand_edited_sbom_is_named(release_build: ReleaseBuild, tmp_path: Path) -> None:
    b = bundle.read(release_build.frozen.path)
    text = _sboms(release_build)["binary"].read_text()
    sha = b.members[MIGRATION].sha256
    # a hash edited: still valid CycloneDX, no longer the binary
    edited = tmp_path / "openwatch.cdx.json"
    edited.write_text(text.replace(sha, "0" * 64))
    assert sbomcheck.check(edited, b).failures == [
        f"openwatch.cdx.json: openwatch!{MIGRATION}: sha256 {sha[:16]}, the SBOM lists {'0' * 16}"
    ]
    # a field the schema does not allow: refused by strict validation, in one line naming the file
    doc = json.loads(text)
    doc["metadata"]["comment"] = "edited by hand"
    invalid = tmp_path / "broken.cdx.json"
    invalid.write_text(json.dumps(doc))
    (line,) = sbomcheck.check(invalid, b).failures
    assert line.startswith("broken.cdx.json: broken.cdx.json: not valid CycloneDX 1.6: ")
    assert "\n" not in line
