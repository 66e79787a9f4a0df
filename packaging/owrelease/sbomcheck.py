"""Read an SBOM back and prove it complete against a binary: the verify side of :mod:`owrelease.sbom`.

An SBOM passes when it validates strictly as CycloneDX 1.6 and every member of the binary's archive (and of
its PYZ) is listed, by path (``evidence.occurrences[].location``) with its sha256, and it lists nothing the
binary lacks. Every difference is one line naming the SBOM and the member.
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from owrelease.bundle import TYPECODES, Bundle
from owrelease.sbom import KIND, SbomError, validate

__all__ = ["Listed", "Report", "check", "listed_members", "load"]


@dataclass(frozen=True)
class Listed:
    path: str
    sha256: str
    kind: str  # the top-level component's openwatch:kind


@dataclass
class Report:
    label: str
    failures: list[str] = field(default_factory=list)
    kinds: Counter[str] = field(default_factory=Counter)  # top-level components per kind
    members: Counter[str] = field(default_factory=Counter)  # archive members per type
    unaccounted: int = 0

    def summary(self) -> str:
        kinds = ", ".join(f"{n} {k}" for k, n in sorted(self.kinds.items()))
        members = ", ".join(f"{n} {k}" for k, n in sorted(self.members.items()))
        state = "OK" if not self.failures else "FAIL"
        return (
            f"{state} {self.label}: components {kinds}; archive members {sum(self.members.values())} "
            f"({members}); {self.unaccounted} unaccounted"
        )


def load(path: Path) -> dict[str, Any]:
    """The SBOM's JSON, after strict schema validation (:class:`SbomError` otherwise)."""
    text = path.read_text(encoding="utf-8")
    validate(text, path.name)
    return dict(json.loads(text))


def _walk(components: list[dict[str, Any]], kind: str) -> Iterator[tuple[dict[str, Any], str]]:
    for c in components:
        here = next((p["value"] for p in c.get("properties", []) if p.get("name") == KIND), kind)
        yield c, here
        yield from _walk(c.get("components", []), here)


def listed_members(doc: Mapping[str, Any]) -> tuple[dict[str, Listed], Counter[str], list[str]]:
    """(path -> listing, top-level components per kind, problems such as a path listed twice)."""
    out: dict[str, Listed] = {}
    kinds: Counter[str] = Counter()
    problems: list[str] = []
    for c in doc.get("components", []):
        props = {p.get("name"): p.get("value") for p in c.get("properties", [])}
        if KIND in props:
            kinds[str(props[KIND])] += 1
    for comp, kind in _walk(doc.get("components", []), ""):
        locations = [o["location"] for o in comp.get("evidence", {}).get("occurrences", [])]
        if not locations:
            continue
        sha = next((h["content"] for h in comp.get("hashes", []) if h.get("alg") == "SHA-256"), "")
        for loc in locations:
            if loc in out:
                problems.append(f"{loc}: listed twice")
            out[loc] = Listed(loc, sha, kind)
    return out, kinds, problems


def check(
    sbom_path: Path,
    bundle: Bundle,
    *,
    doc: Mapping[str, Any] | None = None,
    subject_sha256: str | None = None,
    payload: Mapping[str, str] | None = None,
    label: str | None = None,
) -> Report:
    """Compare the SBOM at ``sbom_path`` with ``bundle``; ``subject_sha256``: what metadata.component must
    hash; ``payload``: a package's installed files (path -> sha256), which a package's SBOM must list too."""
    label = label or sbom_path.name
    report = Report(label)
    try:
        doc = doc if doc is not None else load(sbom_path)
    except (SbomError, json.JSONDecodeError, OSError) as exc:
        report.failures.append(f"{label}: {exc}")
        report.unaccounted = len(bundle.members)
        return report
    if subject_sha256 is not None:
        subject = doc.get("metadata", {}).get("component", {})
        got = next((h["content"] for h in subject.get("hashes", []) if h.get("alg") == "SHA-256"), "")
        if got != subject_sha256:
            report.failures.append(
                f"{label}: metadata.component {subject.get('name')}: sha256 {got[:16]}, the artifact has "
                f"{subject_sha256[:16]}"
            )
    listed, report.kinds, problems = listed_members(doc)
    report.failures.extend(f"{label}: {p}" for p in problems)
    for path, member in sorted(bundle.members.items()):
        report.members[TYPECODES.get(member.typecode, member.typecode)] += 1
        entry = listed.get(path)
        if entry is None:
            report.unaccounted += 1
            report.failures.append(f"{label}: {bundle.path.name}!{path}: in the archive, not in the SBOM")
        elif entry.sha256 != member.sha256:
            report.unaccounted += 1
            report.failures.append(
                f"{label}: {bundle.path.name}!{path}: sha256 {member.sha256[:16]}, "
                f"the SBOM lists {entry.sha256[:16]}"
            )
    # absolute locations are a package's installed paths, checked against the package, not the archive
    for path in sorted(p for p in set(listed) - set(bundle.members) if not p.startswith("/")):
        report.failures.append(f"{label}: {path}: listed in the SBOM, not in {bundle.path.name}")
    if payload is not None:
        installed = {p for p in listed if p.startswith("/")}
        for path, digest in sorted(payload.items()):
            got = listed.get(path)
            if got is None:
                report.failures.append(f"{label}: {path}: installed by the package, not in the SBOM")
            elif got.sha256 != digest:
                report.failures.append(
                    f"{label}: {path}: sha256 {digest[:16]}, the SBOM lists {got.sha256[:16]}"
                )
        for path in sorted(installed - set(payload)):
            report.failures.append(f"{label}: {path}: listed in the SBOM, not installed by the package")
    return report
