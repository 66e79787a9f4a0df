"""CycloneDX 1.6 SBOMs of the frozen binary and of each package, made from what is really inside them.

Inputs: the binary read back (:mod:`owrelease.bundle`) and the provenance the freeze recorded next to it
(:mod:`owrelease.provenance`). Nothing is guessed: a member no fact accounts for fails the build, naming it.

Shape (every SBOM):

* ``metadata.component``: the artifact itself (the binary, the .rpm or the .deb) with its sha256.
* top-level ``components``, one per thing a consumer asks about, each with the property ``openwatch:kind``:
  ``application`` (openwatch's own code), ``python`` (a distribution: ``pkg:pypi`` purl, licence),
  ``runtime`` (CPython, OpenSSL: ``pkg:generic`` + CPE, the orig tarball as source distribution, pedigree),
  ``debian`` (a Debian package of the build root that shipped a library: ``pkg:deb``), ``bootloader``
  (PyInstaller's, with our patch), ``migration`` (one ``data`` component per embedded SQL file).
* every archive member and PYZ module is one nested component (``file``; ``library`` for an ELF object) under
  the component it came from, with its sha256 and ``evidence.occurrences[0].location`` = its path in the
  archive (:mod:`owrelease.bundle` names). verify checks the binary against exactly these.
* ``dependencies``: the Python requirements, the ELF ``DT_NEEDED`` edges between members, and the package
  edges they imply (the app -> psycopg -> psycopg-binary -> OpenSSL ...).

Reproducible: the serial number is a UUID derived from the artifact's sha256 and the timestamp is
SOURCE_DATE_EPOCH, so one commit always gives the same bytes. Validated strictly and offline (the schema
ships in cyclonedx-python-lib) before anything is written.
"""

from __future__ import annotations

import datetime as dt
import re
import warnings
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import Any

from cyclonedx.contrib.license.factories import LicenseFactory
from cyclonedx.model import (
    AttachedText,
    ExternalReference,
    ExternalReferenceType,
    HashAlgorithm,
    HashType,
    Property,
    XsUri,
)
from cyclonedx.model.bom import Bom, BomMetaData
from cyclonedx.model.component import Component, ComponentType, Diff, Patch, PatchClassification, Pedigree
from cyclonedx.model.component_evidence import ComponentEvidence, Occurrence
from cyclonedx.output.json import JsonV1Dot6
from cyclonedx.schema import SchemaVersion
from cyclonedx.validation.json import JsonStrictValidator
from packageurl import PackageURL

from owrelease.bundle import PYZ_PREFIX, Bundle
from owrelease.sbomid import sbom_name, serial_for  # re-exported: the build and verify name them here

__all__ = ["KIND", "SbomError", "Subject", "make", "render", "sbom_name", "serial_for", "validate", "write"]

KIND = "openwatch:kind"  # property naming a top-level component's kind
SCHEMA = SchemaVersion.V1_6
MEDIA_TYPE = "application/vnd.cyclonedx+json"
# Debian suite -> the purl distro qualifier
_DEBIAN = {"buster": "10", "bullseye": "11", "bookworm": "12", "trixie": "13", "forky": "14"}
_CPE = {
    "cpython": "cpe:2.3:a:python:python:{v}:*:*:*:*:*:*:*",
    "openssl": "cpe:2.3:a:openssl:openssl:{v}:*:*:*:*:*:*:*",
}
_RUNTIME_LICENCE = {"cpython": "PSF-2.0", "openssl": "Apache-2.0"}
_APP = "openwatch"
HOST = "host-freeze"


class SbomError(RuntimeError):
    """The SBOM cannot be made or does not validate; ``str()`` is one line naming the artifact or member."""


@dataclass(frozen=True)
class Subject:
    """The artifact an SBOM describes (``metadata.component``)."""

    name: str
    version: str
    sha256: str
    purl: PackageURL
    filename: str  # dist/<filename>.cdx.json
    description: str = ""


@dataclass
class _Owner:
    """A top-level component under construction, with the members it contributed."""

    component: Component
    members: list[Component] = field(default_factory=list)


def _sha(digest: str) -> list[HashType]:
    return [HashType(alg=HashAlgorithm.SHA_256, content=digest)]


def _licences(expr: str) -> list[Any]:
    return [LicenseFactory().make_from_string(expr)] if expr else []


def _norm(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def _top(
    ref: str,
    kind: str,
    name: str,
    *,
    version: str = "",
    ctype: ComponentType = ComponentType.LIBRARY,
    **kw: Any,
) -> _Owner:
    props = [Property(name=KIND, value=kind)]
    return _Owner(
        Component(type=ctype, name=name, version=version or None, bom_ref=ref, properties=props, **kw)
    )


def _member(
    path: str, sha: str, *, elf_name: str | None = None, version: str | None = None, **kw: Any
) -> Component:
    return Component(
        type=ComponentType.LIBRARY if elf_name else ComponentType.FILE,
        name=elf_name or path,
        version=version,
        bom_ref=f"member:{path}",
        hashes=_sha(sha),
        evidence=ComponentEvidence(occurrences=[Occurrence(location=path)]),
        **kw,
    )


def _debian_purl(name: str, version: str, arch: str, distro: str) -> PackageURL:
    return PackageURL("deb", "debian", name, version, {"arch": arch, "distro": distro})


def _runtime(name: str, src: Mapping[str, str], prov: Mapping[str, Any]) -> _Owner:
    version = src["upstream_version"]
    applied = prov["applied"]
    distro = f"debian-{_DEBIAN.get(src['suite'], src['suite'])}"
    configure = applied["python_configure" if name == "cpython" else "openssl_configure"]
    include = applied["force_include"]
    patch_state = "applied" if applied.get("debian_patches") else "NOT applied"
    notes = (
        f"Built from the orig tarball {src['orig_tarball']} (sha256 {src['sha256']}) of the Debian source "
        f"package {src['source_package']} {src['debian_version']} ({src['suite']}): upstream {version} as "
        f"released. The Debian patch series of {src['debian_version']} was {patch_state}: Debian's "
        "backported "
        f"fixes are {'in' if applied.get('debian_patches') else 'not in'} it. Configured with: "
        f"{' '.join(configure)}. Every C file force-includes {include['name']} (sha256 {include['sha256']}), "
        "which binds exp/log/pow/exp2/log2 to their GLIBC_2.2.5 versions so the bundle needs glibc <= 2.28."
    )
    ancestor = Component(
        type=ComponentType.LIBRARY,
        name=src["source_package"],
        version=src["debian_version"],
        bom_ref=f"ancestor:{src['source_package']}",
        purl=PackageURL(
            "deb",
            "debian",
            src["source_package"],
            src["debian_version"],
            {"arch": "source", "distro": distro},
        ),
    )
    patch = Patch(
        type=PatchClassification.UNOFFICIAL,
        diff=Diff(
            text=AttachedText(content=f"-include {include['name']} (sha256 {include['sha256']}) in CFLAGS")
        ),
    )
    pkg_dir = src["source_package"]
    prefix = f"lib{pkg_dir[0]}" if pkg_dir.startswith("lib") else pkg_dir[0]
    owner = _top(
        name,
        "runtime",
        name,
        version=version,
        purl=PackageURL("generic", name=name, version=version),
        cpe=_CPE[name].format(v=version),
        licenses=_licences(_RUNTIME_LICENCE[name]),
        external_references=[
            ExternalReference(
                type=ExternalReferenceType.SOURCE_DISTRIBUTION,
                # relative to any Debian mirror: the host's own mirror is never written into an artifact
                url=XsUri(f"pool/main/{prefix}/{pkg_dir}/{src['orig_tarball']}"),
                hashes=_sha(src["sha256"]),
                comment=f"orig tarball of Debian source package {pkg_dir} {src['debian_version']}",
            )
        ],
        pedigree=Pedigree(ancestors=[ancestor], patches=[patch], notes=notes),
    )
    return owner


def _distribution_of(path: str, dists: list[dict[str, Any]]) -> str | None:
    for d in dists:
        if path in d["record"] or path.split("/", 1)[0] == d["dist_info"]:
            return str(d["name"])
    return None


def _module_owner(module: str, dists: list[dict[str, Any]], stdlib: set[str]) -> str | None:
    top = module.split(".")[0]
    if top == _APP or top.startswith(_APP + "_"):
        return _APP
    if top.startswith(("pyimod", "pyi_", "pyiboot")):
        return "pyinstaller"
    base = module.replace(".", "/")
    for d in dists:
        rec = d["record"]
        if f"{base}.py" in rec or f"{base}/__init__.py" in rec or any(p.startswith(base + ".") for p in rec):
            return f"pypi:{_norm(d['name'])}"
    if top in stdlib or top.startswith("_sysconfigdata_"):
        return "cpython"
    return None


def _owner_of(path: str, bundle: Bundle, prov: Mapping[str, Any], stdlib: set[str]) -> str | None:
    """The bom-ref of the top-level component that contributed archive member ``path``."""
    dists = prov["distributions"]
    member = bundle.members[path]
    if path.startswith(PYZ_PREFIX):
        return _module_owner(path.removeprefix(PYZ_PREFIX), dists, stdlib)
    if member.link is not None:
        if member.link not in bundle.members or bundle.members[member.link].link is not None:
            return None
        return _owner_of(member.link, bundle, prov, stdlib)  # a link belongs with what it points at
    origin = prov["origins"].get(path)
    if origin:
        kind = origin["kind"]
        if kind == "wheel":
            return f"pypi:{_norm(origin['distribution'])}"
        if kind == "debian":
            return f"deb:{origin['package']}"
        return str(kind)
    if path.startswith("migrations/"):
        return f"migration:{path.removeprefix('migrations/')}" if path.endswith(".sql") else _APP
    if member.typecode == "z":
        return "pyinstaller"  # the container; its modules are accounted one by one
    if member.typecode in ("s", "m", "M"):
        return _module_owner(path, dists, stdlib)
    if path == "base_library.zip" or path.startswith(("lib-dynload/", "python3")):
        return "cpython"
    if path.split("/")[0] == _APP:
        return _APP
    dist = _distribution_of(path, dists)
    if dist:
        return f"pypi:{_norm(dist)}"
    return None


def _app_version_purl(version: str) -> PackageURL:
    return PackageURL("generic", name=_APP, version=version)


def _components(
    bundle: Bundle, prov: Mapping[str, Any], app: Mapping[str, str]
) -> tuple[dict[str, _Owner], dict[str, str], list[str]]:
    """(owners by bom-ref, member path -> owner ref, unaccounted member paths)."""
    owners: dict[str, _Owner] = {}
    stdlib = set(prov.get("stdlib", []))
    owners[_APP] = _top(
        _APP,
        "application",
        _APP,
        version=app["version"],
        ctype=ComponentType.APPLICATION,
        purl=_app_version_purl(app["version"]),
        licenses=_licences(app["licence"]),
        description="OpenWatch's own code: the openwatch package, its UI and entry script",
    )
    if prov.get("builder") != "buildroot":
        return _host_components(bundle, owners)
    for name, src in (("cpython", prov["runtime"]["python"]), ("openssl", prov["runtime"]["openssl"])):
        owners[name] = _runtime(name, src, prov)
    pyi = prov["pyinstaller"]
    pyi_dist = next((d for d in prov["distributions"] if _norm(d["name"]) == "pyinstaller"), None)
    owners["pyinstaller"] = _top(
        "pyinstaller",
        "bootloader",
        "pyinstaller-bootloader",
        version=pyi["version"],
        ctype=ComponentType.APPLICATION,
        purl=PackageURL("pypi", name="pyinstaller", version=pyi["version"]),
        licenses=_licences(pyi_dist["licence"] if pyi_dist else ""),
        hashes=_sha(pyi["bootloader_sha256"]) if pyi["bootloader_sha256"] else [],
        description="PyInstaller's onefile bootloader (rebuilt from the sdist) and its runtime modules",
        pedigree=Pedigree(
            ancestors=[
                Component(
                    type=ComponentType.APPLICATION,
                    name="pyinstaller",
                    version=pyi["version"],
                    bom_ref="ancestor:pyinstaller",
                    purl=PackageURL("pypi", name="pyinstaller", version=pyi["version"]),
                )
            ],
            patches=[
                Patch(type=PatchClassification.UNOFFICIAL, diff=Diff(text=AttachedText(content=pyi["patch"])))
            ],
            notes=f"The bootloader was rebuilt from the PyInstaller {pyi['version']} sdist with our patch "
            f"{pyi['patch_name']} applied: a temporary directory on a noexec file system is skipped for the "
            "next "
            "candidate instead of failing to map the extracted libraries.",
        ),
    )
    members_by_owner: dict[str, str] = {}
    unaccounted: list[str] = []
    dists_used: set[str] = set()
    for path in sorted(bundle.members):
        ref = _owner_of(path, bundle, prov, stdlib)
        if ref is None:
            unaccounted.append(path)
            continue
        members_by_owner[path] = ref
        if ref.startswith("pypi:"):
            dists_used.add(ref)
    for d in prov["distributions"]:
        ref = f"pypi:{_norm(d['name'])}"
        if ref not in dists_used:
            continue
        owners[ref] = _top(
            ref,
            "python",
            _norm(d["name"]),
            version=d["version"],
            purl=PackageURL("pypi", name=_norm(d["name"]), version=d["version"]),
            licenses=_licences(d["licence"]),
            description=d["summary"] or None,
        )
    for path, origin in prov["origins"].items():
        if origin["kind"] == "debian" and f"deb:{origin['package']}" not in owners:
            distro = prov["distro"]
            owners[f"deb:{origin['package']}"] = _top(
                f"deb:{origin['package']}",
                "debian",
                origin["package"],
                version=origin["version"],
                purl=_debian_purl(origin["package"], origin["version"], origin["arch"], distro),
                description=f"the build root's Debian package (source {origin['source']} "
                f"{origin['source_version']}), identified by the hash of {path}",
            )
    for path, ref in members_by_owner.items():
        if ref.startswith("migration:") and ref not in owners:
            owners[ref] = _migration(path, bundle)
            continue
        owners[ref].members.append(_member_component(path, bundle, prov))
    return owners, members_by_owner, unaccounted


def _host_components(
    bundle: Bundle, owners: dict[str, _Owner]
) -> tuple[dict[str, _Owner], dict[str, str], list[str]]:
    """A host freeze records no origins: every member is listed (path, sha256) under one component that says
    so, never attributed by guess. Release builds freeze in the build root."""
    owners[HOST] = _top(
        HOST,
        "unattributed",
        "host-freeze",
        ctype=ComponentType.APPLICATION,
        description="frozen on the host, not in the build root: the origin of these members was not recorded",
    )
    members: dict[str, str] = {}
    for path in sorted(bundle.members):
        if path.startswith("migrations/") and path.endswith(".sql"):
            members[path] = f"migration:{path.removeprefix('migrations/')}"
            owners[members[path]] = _migration(path, bundle)
        else:
            members[path] = HOST
            owners[HOST].members.append(_member(path, bundle.members[path].sha256))
    return owners, members, []


def _migration(path: str, bundle: Bundle) -> _Owner:
    return _Owner(
        Component(
            type=ComponentType.DATA,
            name=PurePosixPath(path).name,
            bom_ref=f"migration:{path.removeprefix('migrations/')}",
            hashes=_sha(bundle.members[path].sha256),
            evidence=ComponentEvidence(occurrences=[Occurrence(location=path)]),
            properties=[Property(name=KIND, value="migration")],
            description="goose SQL migration embedded in the binary",
        )
    )


def _member_component(path: str, bundle: Bundle, prov: Mapping[str, Any]) -> Component:
    m = bundle.members[path]
    elf = bundle.elf.get(path)
    origin = prov["origins"].get(path, {})
    if elf is None:
        return _member(path, m.sha256)
    name = elf.soname or PurePosixPath(path).name
    pedigree = None
    if origin.get("kind") == "wheel":
        patches = [
            Patch(
                type=PatchClassification.UNOFFICIAL,
                diff=Diff(
                    text=AttachedText(
                        content=f"strip (the build root's strip-once layer, recipe "
                        f"{prov.get('strip', '')}): symbols removed"
                    )
                ),
            )
        ]
        if origin.get("patchelf"):
            patches.append(
                Patch(
                    type=PatchClassification.UNOFFICIAL,
                    diff=Diff(text=AttachedText(content=f"patchelf {origin['patchelf']}")),
                )
            )
        record_sha = origin.get("record_sha256") or ""
        pedigree = Pedigree(
            ancestors=[
                Component(
                    type=ComponentType.LIBRARY,
                    name=origin["record_path"],
                    bom_ref=f"ancestor:{path}",
                    hashes=_sha(record_sha) if record_sha else [],
                    purl=PackageURL(
                        "pypi",
                        name=_norm(origin["distribution"]),
                        version=_dist_version(prov, origin["distribution"]),
                    ),
                )
            ],
            patches=patches,
            notes="The wheel's file (sha256 as in its RECORD) was stripped once and, where it needed the "
            "wheel's own OpenSSL, pointed at the bundle's single OpenSSL with patchelf --replace-needed.",
        )
    version = elf.version
    if origin.get("kind") in ("cpython", "openssl"):  # built by us from that release's source
        version = prov["runtime"]["python" if origin["kind"] == "cpython" else "openssl"]["upstream_version"]
    # a Debian package's file is shipped as the package has it (its md5sums entry matched): no pedigree
    return _member(path, m.sha256, elf_name=name, version=version, pedigree=pedigree)


def _dist_version(prov: Mapping[str, Any], name: str) -> str:
    return next(str(d["version"]) for d in prov["distributions"] if d["name"] == name)


def _dependencies(
    bom: Bom,
    subject: Component,
    owners: Mapping[str, _Owner],
    members: Mapping[str, str],
    bundle: Bundle,
    prov: Mapping[str, Any],
    app_requires: Iterable[str],
) -> None:
    comps: dict[str, Component] = {ref: o.component for ref, o in owners.items()}
    for o in owners.values():
        for c in o.members:
            comps[str(c.bom_ref.value)] = c
    edges: dict[str, set[str]] = {ref: set() for ref in comps}
    # an owner depends on what it consists of (its nested members): without these edges a consumer walking
    # dependencies stops at pypi:psycopg-binary and never reaches the libpq and OpenSSL it ships
    for ref, o in owners.items():
        edges[ref] |= {str(c.bom_ref.value) for c in o.members}
    # ELF DT_NEEDED between members (by SONAME, else by file name)
    by_soname: dict[str, str] = {}
    for path, elf in bundle.elf.items():
        by_soname.setdefault(elf.soname or PurePosixPath(path).name, path)
        by_soname.setdefault(PurePosixPath(path).name, path)
    for path, elf in bundle.elf.items():
        for need in elf.needed:
            target = by_soname.get(need)
            if target and target != path and path in members and target in members:
                edges[f"member:{path}"].add(f"member:{target}")
                a, b = members[path], members[target]
                if a != b:
                    edges[a].add(b)
    # Python requirements that are in the bundle
    present = {ref for ref in owners if ref.startswith("pypi:")}
    for d in prov.get("distributions", []):
        ref = f"pypi:{_norm(d['name'])}"
        if ref in present:
            edges[ref] |= {f"pypi:{_norm(r['name'])}" for r in d["requires"]} & present
    edges[_APP] |= {f"pypi:{_norm(r.split('[')[0])}" for r in app_requires} & present
    if "cpython" in owners:
        edges[_APP].add("cpython")
        for ref in owners:
            if ref.startswith("pypi:"):
                edges[ref].add("cpython")
    top = {ref for ref in owners if not ref.startswith("migration:")}
    bom.register_dependency(subject, [comps[r] for r in sorted({_APP, "pyinstaller", "cpython", HOST} & top)])
    edges[_APP] |= {ref for ref in owners if ref.startswith("migration:")}
    for ref in sorted(edges):
        bom.register_dependency(comps[ref], [comps[t] for t in sorted(edges[ref] - {ref})])


def make(
    subject: Subject,
    bundle: Bundle,
    prov: Mapping[str, Any],
    app: Mapping[str, str],
    *,
    epoch: int,
    extra: Iterable[Component] = (),
    binary_ref: Component | None = None,
) -> Bom:
    """The Bom of ``subject``. ``extra``: further top-level components (a package's other files);
    ``binary_ref``: the binary as a component of a package (the subject then depends on it)."""
    owners, members, unaccounted = _components(bundle, prov, app)
    if unaccounted:
        more = f" (and {len(unaccounted) - 1} more)" if len(unaccounted) > 1 else ""
        raise SbomError(f"{bundle.path.name}: archive member {unaccounted[0]}: no known origin{more}")
    root = Component(
        type=ComponentType.APPLICATION,
        name=subject.name,
        version=subject.version,
        bom_ref=f"artifact:{subject.filename}",
        hashes=_sha(subject.sha256),
        purl=subject.purl,
        description=subject.description or None,
    )
    bom = Bom(
        serial_number=serial_for(subject.sha256),
        metadata=BomMetaData(component=root, timestamp=dt.datetime.fromtimestamp(epoch, dt.UTC)),
    )
    for ref in sorted(owners):
        o = owners[ref]
        for c in sorted(o.members, key=lambda c: str(c.bom_ref.value)):
            o.component.components.add(c)
        bom.components.add(o.component)
    extras = list(extra)
    for c in extras:
        bom.components.add(c)
    holder = root
    if binary_ref is not None:
        bom.components.add(binary_ref)
        bom.register_dependency(root, [binary_ref, *extras])
        holder = binary_ref
    _dependencies(bom, holder, owners, members, bundle, prov, app.get("requires", "").split())
    for c in extras:
        bom.register_dependency(c, [])
    return bom


def render(bom: Bom) -> str:
    """The JSON text, validated strictly and offline; :class:`SbomError` names the first schema error."""
    _unique_refs(bom)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # e.g. a component without dependencies: never silently
        text = JsonV1Dot6(bom).output_as_string(indent=1) + "\n"
    validate(text, "the generated SBOM")
    return text


def validate(text: str, label: str) -> None:
    err = JsonStrictValidator(SCHEMA).validate_str(text)
    if err is not None:
        detail = getattr(err, "data", None)
        where = "/".join(str(p) for p in getattr(detail, "absolute_path", [])) if detail is not None else ""
        msg = getattr(detail, "message", str(err)).splitlines()[0]
        raise SbomError(f"{label}: not valid CycloneDX 1.6: {where or '(document)'}: {msg[:200]}")


def _unique_refs(bom: Bom) -> None:
    """The library replaces a duplicate bom-ref with a random one on output: refuse instead."""
    seen: set[str] = set()

    def walk(cs: Iterable[Component]) -> None:
        for c in cs:
            ref = str(c.bom_ref.value)
            if ref in seen:
                raise SbomError(f"bom-ref {ref!r} is used twice")
            seen.add(ref)
            walk(c.components)

    walk([*([bom.metadata.component] if bom.metadata.component else []), *bom.components])


def write(text: str, target: Path) -> Path:
    """Write ``text`` atomically (nothing half-written), unless the file already holds exactly it."""
    if target.is_file() and target.read_text(encoding="utf-8") == text:
        return target
    tmp = target.with_name(target.name + ".tmp")
    tmp.write_text(text, encoding="utf-8")
    tmp.replace(target)
    return target


# ------------------------------------------------------------------------------------- the artifacts

BINARY_SBOM = "openwatch.cdx.json"  # next to the frozen binary, in dist/, and shipped in the packages


def app_facts(model: Any, pep440: str, project: Path) -> dict[str, str]:
    """What the SBOM says about openwatch itself: version, licence, and its requirements from pyproject."""
    import tomllib

    deps = tomllib.loads((project / "pyproject.toml").read_text(encoding="utf-8"))["project"]["dependencies"]
    return {
        "version": pep440,
        "licence": model.license,
        "requires": " ".join(re.split(r"[ ;<>=!~(]", d)[0] for d in deps),
    }


def binary_subject(bundle: Bundle, pep440: str) -> Subject:
    return Subject(
        name=_APP,
        version=pep440,
        sha256=bundle.sha256,
        purl=_app_version_purl(pep440),
        filename=_APP,
        description="the frozen one-file executable /usr/bin/openwatch (PyInstaller onefile)",
    )


def binary_sbom(bundle: Bundle, prov: Mapping[str, Any], app: Mapping[str, str], *, epoch: int) -> str:
    """The SBOM text of the frozen binary itself."""
    return render(make(binary_subject(bundle, app["version"]), bundle, prov, app, epoch=epoch))


def package_sbom(
    package: Path,
    fmt: str,
    payload: Mapping[str, str],
    binary_path: str,
    bundle: Bundle,
    prov: Mapping[str, Any],
    app: Mapping[str, str],
    *,
    name: str,
    version: str,
    arch: str,
    epoch: int,
) -> str:
    """The SBOM text of one .rpm/.deb: the package, the binary inside it (with everything in it) and every
    other installed file (``payload``: path -> sha256)."""
    import hashlib

    sha = hashlib.sha256(package.read_bytes()).hexdigest()
    purl = PackageURL(fmt, _APP, name, version, {"arch": arch})
    subject = Subject(name=name, version=version, sha256=sha, purl=purl, filename=package.name,
                      description=f"the {fmt} package {package.name}")  # fmt: skip
    binary = Component(
        type=ComponentType.APPLICATION,
        name=_APP,
        version=app["version"],
        bom_ref=f"binary:{binary_path}",
        hashes=_sha(bundle.sha256),
        purl=_app_version_purl(app["version"]),
        evidence=ComponentEvidence(occurrences=[Occurrence(location=binary_path)]),
        properties=[Property(name=KIND, value="binary")],
    )
    files = [
        Component(
            type=ComponentType.FILE,
            name=path,
            bom_ref=f"payload:{path}",
            hashes=_sha(digest),
            evidence=ComponentEvidence(occurrences=[Occurrence(location=path)]),
            properties=[Property(name=KIND, value="package-file")],
        )
        for path, digest in sorted(payload.items())
        if path != binary_path
    ]
    return render(make(subject, bundle, prov, app, epoch=epoch, extra=files, binary_ref=binary))
