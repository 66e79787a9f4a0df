"""``nox -s verify``: prove what is inside the built packages.

1. Each package against the declaration (`owrelease.model`): every declared path present with its
   kind, mode, owner, group and config flags; nothing undeclared; generated paths never shipped;
   identity (name, epoch, version, release) and dependencies as the model computes them.
2. The RPM against the DEB: the paths both formats ship agree on kind, mode, owner, group, config
   flag and content.
3. The migrations embedded in ``/usr/bin/openwatch`` of each package, listed twice (PyInstaller's
   archive reader without running it, and ``openwatch migrate list --json``), against ``migrations/``
   and ``migrations/migrations.lock``.
4. The SBOMs (`owrelease.sbomcheck`): dist/openwatch.cdx.json, each package's own and the copy shipped in
   each package, against the binary inside the package: every archive member by path and sha256.
5. The quality gates (`owrelease.gates`).

Every difference is one line naming the package, the path and the field. The exit status is 1 when
any line was printed under "FAIL".
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import re
import subprocess
import sys
import tempfile
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Any

from owrelease import lock
from owrelease.inspect import PackageView, extract_file, read_package
from owrelease.model import Package, app_version, load

__all__ = [
    "Migration",
    "archive_migrations",
    "compare_formats",
    "compare_migrations",
    "find_packages",
    "main",
    "migration_table",
    "running_migrations",
    "verify_view",
]

_SQL = re.compile(r"^migrations/(?P<name>(?P<version>[0-9]+)_[^/]+\.sql)$")
_DEB_SHARED_DIR_MODE = 0o755


@dataclass(frozen=True)
class Migration:
    version: int
    name: str
    sha256: str


# ------------------------------------------------------------------------------- package vs model


def _expected_kind(kind: str) -> str:
    return "dir" if kind == "dir" else "file"


def verify_view(view: PackageView, model: Package, pep440: str) -> list[str]:
    """Differences between one built package and the declaration, one line each."""
    fmt = view.format
    label = view.filename
    out = list(view.problems)
    pv = model.version(pep440)
    expected_identity = {
        "name": model.name,
        "epoch": pv.epoch or None,
        "version": pv.upstream,
        "release": str(pv.release),
    }
    for key, want in expected_identity.items():
        got = getattr(view, key)
        if (got or None) != (want or None):
            out.append(f"{label}: (package): {key}: {got!r}, declared {want!r}")

    declared = {e.path: e for e in model.entries_for(fmt)}
    for path, decl in declared.items():
        got = view.entries.get(path)
        if decl.kind == "generated":
            if got is not None and not got.ghost:
                out.append(
                    f"{label}: {path}: shipped, but declared generated (made at install, never packaged)"
                )
            continue
        if got is None:
            out.append(
                f"{label}: {path}: missing (declared {decl.kind} {decl.mode_str} {decl.owner}:{decl.group})"
            )
            continue
        want_kind = _expected_kind(decl.kind)
        if got.kind != want_kind:
            out.append(f"{label}: {path}: kind: {got.kind}, declared {want_kind}")
        if got.mode != decl.mode:
            out.append(f"{label}: {path}: mode: {got.mode:04o}, declared {decl.mode_str}")
        if got.owner != decl.owner:
            out.append(f"{label}: {path}: owner: {got.owner}, declared {decl.owner}")
        if got.group != decl.group:
            out.append(f"{label}: {path}: group: {got.group}, declared {decl.group}")
        flag = "%config(noreplace)" if fmt == "rpm" else "conffile"
        if decl.is_conffile and not (got.config and got.noreplace):
            out.append(f"{label}: {path}: {flag}: not flagged, declared {decl.kind}")
        if not decl.is_conffile and got.config:
            out.append(f"{label}: {path}: {flag}: flagged, declared {decl.kind} (not config)")
        if fmt == "rpm":
            if decl.kind == "secret":
                missing = {"md5", "size", "mtime"} - set(got.verify_not)
                if missing:
                    off = " ".join(sorted(missing))
                    out.append(f"{label}: {path}: %verify: checks {off} still on, declared secret")
            elif got.verify_not:
                out.append(f"{label}: {path}: %verify: not {' '.join(got.verify_not)}, declared {decl.kind}")
            if decl.kind == "doc" and not got.doc:
                out.append(f"{label}: {path}: %doc: not flagged, declared doc")
            if got.ghost:
                out.append(f"{label}: {path}: %ghost: flagged, declared {decl.kind}")
        if want_kind == "file" and got.sha256 is None and not got.ghost:
            out.append(f"{label}: {path}: content: none in the payload")

    ancestors = {str(p) for d in declared.values() if d.in_payload for p in PurePosixPath(d.path).parents}
    for path, got in sorted(view.entries.items()):
        if path in declared:
            continue
        if fmt == "deb" and got.kind == "dir" and path in ancestors:
            # dpkg-deb ships every parent directory; they are the system's, so they must look like it
            if (got.mode, got.owner, got.group) != (_DEB_SHARED_DIR_MODE, "root", "root"):
                out.append(
                    f"{label}: {path}: shared parent directory is {got.describe()}, expected 0755 root:root"
                )
            continue
        out.append(f"{label}: {path}: undeclared {got.kind} in the package")

    out.extend(_verify_relations(view, model))
    return out


def _names(relations: Iterable[str]) -> set[str]:
    names: set[str] = set()
    for rel in relations:
        for alt in rel.split("|"):
            names.add(alt.strip().split()[0] if alt.strip() else "")
    return names


def _verify_relations(view: PackageView, model: Package) -> list[str]:
    out: list[str] = []
    label = view.filename
    dep = model.depends[view.format]
    if view.format == "rpm":
        got = view.relations.get("Requires", [])
        wanted = [*dep.get("requires", []), *dep.get("requires_pre", []), *dep.get("requires_post", [])]
        field_name = "Requires"
    else:
        got = view.relations.get("Depends", []) + view.relations.get("Pre-Depends", [])
        wanted = list(dep.get("depends", []))
        field_name = "Depends"
    names = _names(got)
    for name in wanted:
        if name not in names:
            out.append(f"{label}: (package): {field_name}: {name} missing")
    weak = _names(view.relations.get("Recommends", []))
    for name in model.recommends(view.format):
        if name not in weak:
            out.append(f"{label}: (package): Recommends: {name} missing")
    for name in names:
        # the database may be remote: a hard PostgreSQL dependency would be wrong, a weak one is the most
        if name.startswith("postgresql"):
            out.append(f"{label}: (package): {field_name}: {name} must not be a hard dependency")
    libc = dep["libc"]
    libc_rels = [r for r in got if r.split()[0] == libc]
    if not any(">=" in r for r in libc_rels):
        out.append(f"{label}: (package): {field_name}: no versioned {libc} (>= glibc floor) dependency")
    return out


# ------------------------------------------------------------------------------------- rpm vs deb


def compare_formats(rpm: PackageView, deb: PackageView, model: Package) -> list[str]:
    """Differences between what the two formats install, for every path both of them ship."""
    out: list[str] = []
    label = f"{rpm.filename} vs {deb.filename}"
    for key in ("name", "epoch", "version", "release"):
        a, b = getattr(rpm, key), getattr(deb, key)
        if (a or None) != (b or None):
            out.append(f"{label}: (package): {key}: rpm {a!r}, deb {b!r}")
    both = [e.path for e in model.entries if set(e.formats) >= {"rpm", "deb"} and e.in_payload]
    for path in both:
        a, b = rpm.entries.get(path), deb.entries.get(path)
        if a is None or b is None:
            continue  # already reported against the model
        for key in ("kind", "owner", "group", "config"):
            if getattr(a, key) != getattr(b, key):
                out.append(f"{label}: {path}: {key}: rpm {getattr(a, key)}, deb {getattr(b, key)}")
        if a.mode != b.mode:
            out.append(f"{label}: {path}: mode: rpm {a.mode:04o}, deb {b.mode:04o}")
        if a.sha256 != b.sha256:
            out.append(f"{label}: {path}: sha256: rpm {str(a.sha256)[:12]}, deb {str(b.sha256)[:12]}")
    return out


# ------------------------------------------------------------------------------------- migrations


def archive_migrations(binary: Path) -> list[Migration]:
    """The ``migrations/*.sql`` inside a PyInstaller onefile binary, read without running it."""
    from PyInstaller.archive.readers import CArchiveReader

    reader = CArchiveReader(str(binary))
    found: list[Migration] = []
    for name in reader.toc:
        m = _SQL.match(name)
        if m:
            data = reader.extract(name)
            found.append(Migration(int(m["version"]), m["name"], hashlib.sha256(data).hexdigest()))
    return sorted(found, key=lambda x: (x.version, x.name))


def migrate_list_json(binary: Path, timeout: float = 120.0) -> dict[str, Any]:
    """``openwatch migrate list --json`` run from a private copy of the binary, in a clean environment."""
    with tempfile.TemporaryDirectory(prefix="ow-verify-") as tmp:
        exe = Path(tmp) / "openwatch"
        exe.write_bytes(binary.read_bytes())
        exe.chmod(0o755)
        env = {"PATH": "/usr/bin:/bin", "HOME": tmp, "TMPDIR": tmp, "LANG": "C.UTF-8"}
        proc = subprocess.run(
            [str(exe), "migrate", "list", "--json"],
            capture_output=True,
            text=True,
            env=env,
            cwd=tmp,
            timeout=timeout,
            check=False,
        )
    if proc.returncode != 0:
        raise RuntimeError(f"openwatch migrate list --json exited {proc.returncode}: {proc.stderr.strip()}")
    doc: dict[str, Any] = json.loads(proc.stdout)
    return doc


def running_migrations(binary: Path, timeout: float = 120.0) -> list[Migration]:
    """The migrations ``openwatch migrate list --json`` lists."""
    doc = migrate_list_json(binary, timeout)
    out = [Migration(int(m["version"]), str(m["name"]), str(m["sha256"])) for m in doc["migrations"]]
    if doc.get("count") != len(out):
        raise RuntimeError(f"openwatch migrate list --json: count {doc.get('count')} but {len(out)} listed")
    return out


def _tree(project: Path) -> list[Migration]:
    return [Migration(f.version, f.name, f.sha256) for f in lock.tree_files(project / "migrations")]


def _locked(project: Path) -> list[Migration]:
    path = project / "migrations" / lock.LOCK_NAME
    if not path.is_file():
        return []
    return [Migration(f.version, f.name, f.sha256) for f in lock.read_lock(path)]


def compare_migrations(
    reference: Sequence[Migration], sources: Mapping[str, Sequence[Migration]]
) -> tuple[list[tuple[int, str, str, str]], list[str]]:
    """Rows (version, file, sha256 prefix, status) and failure lines; ``reference`` is the tree."""
    ref = {m.name: m for m in reference}
    by_source = {label: {m.name: m for m in ms} for label, ms in sources.items()}
    names = set(ref)
    for ms in by_source.values():
        names |= set(ms)
    rows: list[tuple[int, str, str, str]] = []
    failures: list[str] = []
    for name in sorted(names, key=lambda n: (int(n.split("_", 1)[0]), n)):
        want = ref.get(name)
        notes: list[str] = []
        for label, ms in by_source.items():
            got = ms.get(name)
            if want is None and got is not None:
                notes.append(f"extra in {label}")
                failures.append(f"{label}: migrations/{name}: extra (not in migrations/)")
            elif want is not None and got is None:
                notes.append(f"missing in {label}")
                failures.append(f"{label}: migrations/{name}: missing")
            elif want is not None and got is not None and got.sha256 != want.sha256:
                notes.append(f"changed in {label}")
                failures.append(
                    f"{label}: migrations/{name}: sha256 {got.sha256[:12]}, "
                    f"migrations/ has {want.sha256[:12]}"
                )
        if want is None:
            notes.insert(0, "not in migrations/")
        any_sha = want.sha256 if want else next(ms[name].sha256 for ms in by_source.values() if name in ms)
        version = int(name.split("_", 1)[0])
        rows.append((version, name, any_sha[:12], "; ".join(notes) if notes else "ok"))
    return rows, failures


def migration_table(rows: Sequence[tuple[int, str, str, str]], sources: Sequence[str]) -> str:
    width = max([len(r[1]) for r in rows] + [4])
    lines = [f"checked against migrations/ in: {', '.join(sources)}"]
    lines.append(f"{'version':>7}  {'file':<{width}}  {'sha256':<12}  status")
    lines.extend(f"{v:>7}  {n:<{width}}  {s:<12}  {st}" for v, n, s, st in rows)
    return "\n".join(lines)


# ------------------------------------------------------------------------------------------- main


def find_packages(dist: Path, model: Package, pep440: str) -> tuple[Path, Path]:
    """The .rpm and the .deb of this version in ``dist``; exactly one of each."""
    pv = model.version(pep440)
    rpms = sorted(dist.glob(f"{model.name}-{pv.upstream}-{pv.release}.*.rpm"))
    debs = sorted(dist.glob(f"{model.name}_{pv.upstream}-{pv.release}_*.deb"))
    rpms = [p for p in rpms if not p.name.endswith(".src.rpm")]
    if len(rpms) != 1 or len(debs) != 1:
        raise FileNotFoundError(
            f"{dist}: expected one .rpm and one .deb of {pv.upstream}-{pv.release}, "
            f"found {[p.name for p in rpms]} and {[p.name for p in debs]}"
        )
    return rpms[0], debs[0]


def _section(title: str) -> None:
    print(f"\n== {title}")


def main(project: Path, dist: Path, argv: list[str] | None = None) -> int:
    """The body of ``nox -s verify``. Returns the exit status."""
    parser = argparse.ArgumentParser(prog="owrelease.verify")
    parser.add_argument(
        "--no-gates", action="store_true", help="skip lintian, rpmlint, squawk, systemd-analyze"
    )
    parser.add_argument("--no-run", action="store_true", help="do not run the binaries (archive reader only)")
    parser.add_argument(
        "--package-toml", type=Path, default=None, help="the declaration (default: the tree's)"
    )
    parser.add_argument(
        "--manifest", action="store_true", help="write dist/openwatch-<version>.manifest.json"
    )
    args = parser.parse_args(argv)

    model = load(args.package_toml or project / "packaging" / "package.toml")
    pep440 = app_version(project)
    failures: list[str] = []
    try:
        rpm_path, deb_path = find_packages(dist, model, pep440)
    except FileNotFoundError as exc:
        print(f"verify: {exc}", file=sys.stderr)
        return 1
    views = {"rpm": read_package(rpm_path), "deb": read_package(deb_path)}

    _section("packages")
    for view in views.values():
        sha = hashlib.sha256((dist / view.filename).read_bytes()).hexdigest()
        n_files = sum(1 for _ in view.files())
        print(
            f"{view.filename}: {view.name} {view.evr} {view.arch}, {len(view.entries)} paths "
            f"({n_files} files), scripts {sorted(view.scripts)}, sha256 {sha[:16]}"
        )

    _section("packages against packaging/package.toml")
    for view in views.values():
        failures.extend(_report(verify_view(view, model, pep440)))
    _section("rpm against deb")
    failures.extend(_report(compare_formats(views["rpm"], views["deb"], model)))

    _section("embedded migrations")
    binary_path = model.by_id["binary"].path
    sources: dict[str, list[Migration]] = {}
    if (project / "migrations" / lock.LOCK_NAME).is_file():
        sources["migrations.lock"] = _locked(project)
    failures.extend(_report(lock.problems(project)))
    binaries: dict[str, Path] = {}
    with tempfile.TemporaryDirectory(prefix="ow-verify-bin-") as tmp:
        for fmt, pkg_path in (("rpm", rpm_path), ("deb", deb_path)):
            exe = Path(tmp) / f"openwatch.{fmt}"
            exe.write_bytes(extract_file(pkg_path, binary_path))
            binaries[fmt] = exe
            sources[f"{fmt}:archive"] = archive_migrations(exe)
            if not args.no_run:
                try:
                    sources[f"{fmt}:run"] = running_migrations(exe)
                except (RuntimeError, subprocess.TimeoutExpired, json.JSONDecodeError, KeyError) as exc:
                    failures.extend(_report([f"{pkg_path.name}: {binary_path}: {exc}"]))
        rows, mig_failures = compare_migrations(_tree(project), sources)
        print(migration_table(rows, list(sources)))
        failures.extend(_report(mig_failures))

        _section("SBOMs against the binaries")
        failures.extend(
            _report(verify_sboms(dist, views, {"rpm": rpm_path, "deb": deb_path}, binaries, model))
        )

        if not args.no_gates:
            from owrelease import gates

            _section("quality gates")
            for result in gates.run_all(project, rpm_path, deb_path, model):
                print(result.summary())
                for line in result.details:
                    print(f"    {line}")
                failures.extend(_report(result.failures))

        if args.manifest:
            from owrelease import manifest

            path = manifest.write(project, dist, model, pep440, [rpm_path, deb_path], binaries["deb"])
            print(f"\nmanifest: {path}")

    from owrelease import sigcheck

    _section("signatures")
    sig = sigcheck.check(dist)
    for line in sig.lines:
        print(line)
    failures.extend(_report(sig.failures))

    _section("result")
    if failures:
        print(f"FAIL: {len(failures)} problem(s)")
        return 1
    print(
        "OK: packages match the declaration and each other; "
        "embedded migrations match migrations/ and the lock; the SBOMs list every archive member"
    )
    return 0


def verify_sboms(
    dist: Path,
    views: Mapping[str, PackageView],
    packages: Mapping[str, Path],
    binaries: Mapping[str, Path],
    model: Package,
) -> list[str]:
    """Each SBOM (the binary's in dist/ and in each package, each package's own) against the binary it
    describes: every archive member listed by path with its sha256. One summary line per SBOM is printed."""
    from owrelease import bundle, sbom, sbomcheck

    failures: list[str] = []
    shipped_path = model.by_id["sbom"].path if "sbom" in model.by_id else None
    binary_sbom = dist / sbom.BINARY_SBOM
    for fmt, pkg_path in packages.items():
        found = bundle.read(binaries[fmt], with_elf=False)
        view = views[fmt]
        payload = {p: e.sha256 for p, e in view.entries.items() if e.kind == "file" and e.sha256}
        pkg_sha = hashlib.sha256(pkg_path.read_bytes()).hexdigest()
        checks: list[tuple[Path, str, str, dict[str, str] | None]] = [
            (dist / sbom.sbom_name(pkg_path.name), sbom.sbom_name(pkg_path.name), pkg_sha, payload),
        ]
        if fmt == "deb":  # one binary in both packages (rpm vs deb compares them): check dist's copy once
            checks.append((binary_sbom, binary_sbom.name, found.sha256, None))
        with tempfile.TemporaryDirectory(prefix="ow-verify-sbom-") as tmp:
            if shipped_path:
                inside = Path(tmp) / sbom.BINARY_SBOM
                try:
                    inside.write_bytes(extract_file(pkg_path, shipped_path))
                    checks.append((inside, f"{pkg_path.name}:{shipped_path}", found.sha256, None))
                except Exception as exc:  # InspectError: reported, never hidden
                    failures.append(f"{pkg_path.name}: {shipped_path}: {exc}")
            for path, label, subject, files in checks:
                if not path.is_file():
                    failures.append(f"{label}: missing (the build writes it before SHA256SUMS)")
                    continue
                report = sbomcheck.check(path, found, subject_sha256=subject, payload=files, label=label)
                print(report.summary())
                failures.extend(report.failures)
    return failures


def _report(lines: list[str], *, quiet: bool = False) -> list[str]:
    for line in lines:
        if not quiet:
            print(f"FAIL {line}")
    return lines


if __name__ == "__main__":  # pragma: no cover
    root = Path(os.environ.get("OPENWATCH_PROJECT", Path.cwd()))
    raise SystemExit(main(root, root / "dist", sys.argv[1:]))
