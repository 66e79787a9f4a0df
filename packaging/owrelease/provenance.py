"""Where each byte of a frozen binary came from: the facts the freeze records next to the binary.

The SBOM (:mod:`owrelease.sbom`) is written from two things only: the binary (read back with
:mod:`owrelease.bundle`) and this record, ``build/freeze/<key>/openwatch.provenance.json``, which the freeze
writes while the place that made the binary still exists. It holds:

* ``runtime``: CPython and OpenSSL as built (:func:`runtime_sources`, the ONE place that knows where those
  facts live), plus what was applied to them (configure flags, the glibc228.h force-include);
* ``distributions``: every Python distribution of the build environment, with its RECORD;
* ``stdlib``: the standard library's module names of the interpreter that froze;
* ``origins``: for every ELF member of the archive, the file of the build root with the same sha256, and what
  owns it: our CPython or OpenSSL prefix, a wheel (by its RECORD, with the wheel's own sha256 when ours
  differs, and the patchelf rewrite when the one-OpenSSL layer made one), or a Debian package (found by hash:
  the md5sums of the root's dpkg database, then ``dpkg -S`` and ``dpkg-query`` inside the root);
* ``pyinstaller``: its version, the bootloader we built and the patch applied to it.
"""

from __future__ import annotations

import base64
import csv
import email.parser
import hashlib
import json
import re
from collections.abc import Iterable, Mapping
from pathlib import Path, PurePosixPath
from typing import TYPE_CHECKING, Any

from owrelease import bundle as bundle_mod
from owrelease.model import ROOT
from owrelease.rootshell import layer_record

if TYPE_CHECKING:
    from owrelease.buildroot import BuildRoot

__all__ = ["PROVENANCE_NAME", "collect_root", "load", "runtime_sources", "write"]

PROVENANCE_NAME = "openwatch.provenance.json"
RUNTIME_LOCK = ROOT / "packaging" / "runtime.lock.json"
# lock component name -> (SBOM name, Debian source-package prefix in the build root's manifest)
_RUNTIME = {"python": ("cpython", "python3"), "openssl": ("openssl", "openssl")}


class ProvenanceError(RuntimeError):
    """A fact the SBOM needs could not be established; the message names the file or member."""


def runtime_sources(manifest: Mapping[str, Any], lock: Path = RUNTIME_LOCK) -> dict[str, dict[str, str]]:
    """CPython's and OpenSSL's sources as built: ``{"python": {...}, "openssl": {...}}``.

    Each value has the keys of ``packaging/runtime.lock.json`` (issue 11): ``source_package``,
    ``upstream_version``, ``debian_version``, ``suite``, ``orig_tarball``, ``sha256``. When that lock exists
    its ``components`` are returned as they are (the build root then builds exactly them); until then the
    facts come from the build root's ``manifest.json``: ``sources`` (source package -> Debian version, as
    ``apt-get source`` resolved it), ``orig_sha256`` (orig tarball -> sha256) and ``inputs.source_suite``.
    """
    if lock.is_file():
        comps = json.loads(lock.read_text(encoding="utf-8"))["components"]
        return {name: {k: str(v) for k, v in comps[name].items()} for name in _RUNTIME}
    out: dict[str, dict[str, str]] = {}
    for name, (_sbom, prefix) in _RUNTIME.items():
        pkgs = [p for p in manifest["sources"] if p == prefix or p.startswith(prefix + ".")]
        if len(pkgs) != 1:
            raise ProvenanceError(
                f"manifest.json: sources: no single {prefix}* entry in {manifest['sources']}"
            )
        pkg = pkgs[0]
        tarballs = [t for t in manifest["orig_sha256"] if t.startswith(f"{pkg}_") and ".orig.tar." in t]
        if len(tarballs) != 1:
            raise ProvenanceError(f"manifest.json: orig_sha256: no single orig tarball of {pkg}")
        tarball = tarballs[0]
        out[name] = {
            "source_package": pkg,
            "upstream_version": tarball.removeprefix(f"{pkg}_").split(".orig.tar.")[0],
            "debian_version": manifest["sources"][pkg],
            "suite": str(manifest["inputs"].get("source_suite", "")),
            "orig_tarball": tarball,
            "sha256": manifest["orig_sha256"][tarball],
        }
    return out


def _record_sha(entry: str) -> str | None:
    """A RECORD hash (``sha256=<urlsafe b64>``) as hex."""
    if not entry.startswith("sha256="):
        return None
    raw = entry.removeprefix("sha256=")
    return base64.urlsafe_b64decode(raw + "=" * (-len(raw) % 4)).hex()


def _licence(meta: email.message.Message) -> str:
    if meta.get("License-Expression"):
        return str(meta["License-Expression"]).strip()
    lic = str(meta.get("License") or "").strip()
    if lic and "\n" not in lic and len(lic) < 80:
        return lic
    found = [
        c.split("::")[-1].strip() for c in meta.get_all("Classifier") or [] if c.startswith("License ::")
    ]
    return " AND ".join(found)


def distributions(site: Path) -> list[dict[str, Any]]:
    """Every ``*.dist-info`` under ``site``: name, version, licence, requirements, RECORD (path -> sha256)."""
    out = []
    for info in sorted(site.glob("*.dist-info")):
        meta = email.parser.Parser().parsestr(
            (info / "METADATA").read_text(encoding="utf-8"), headersonly=True
        )
        record: dict[str, str | None] = {}
        with (info / "RECORD").open(newline="", encoding="utf-8") as fp:
            for row in csv.reader(fp):
                if row:
                    record[row[0]] = _record_sha(row[1]) if len(row) > 1 else None
        requires = []
        for req in meta.get_all("Requires-Dist") or []:
            name = re.split(r"[ ;<>=!~\[(]", req.strip(), maxsplit=1)[0]
            extra = re.search(r"extra\s*==\s*['\"]([^'\"]+)['\"]", req)
            requires.append({"name": name, "extra": extra.group(1) if extra else None})
        sboms = {
            p.name: json.loads(p.read_text(encoding="utf-8"))
            for p in sorted((info / "sboms").glob("*.json"))
            if (info / "sboms").is_dir()
        }
        out.append(
            {
                "name": str(meta["Name"]),
                "version": str(meta["Version"]),
                "licence": _licence(meta),
                "summary": str(meta.get("Summary") or ""),
                "requires": requires,
                "record": record,
                "dist_info": info.name,
                "sboms": sboms,
            }
        )
    return out


def _index(root: Path, trees: Iterable[str], sizes: set[int]) -> dict[str, list[str]]:
    """sha256 -> in-root paths of the regular files under ``trees`` whose size is one of ``sizes``."""
    found: dict[str, list[str]] = {}
    for tree in trees:
        base = root / tree.lstrip("/")
        if not base.is_dir():
            continue
        for p in sorted(base.rglob("*")):
            if p.is_symlink() or not p.is_file() or p.stat().st_size not in sizes:
                continue
            digest = hashlib.sha256(p.read_bytes()).hexdigest()
            found.setdefault(digest, []).append("/" + p.relative_to(root).as_posix())
    return found


def _dpkg_md5sums(root: Path) -> dict[str, tuple[str, str]]:
    """md5 -> (package, installed path) over every ``*.md5sums`` of the root's dpkg database."""
    out: dict[str, tuple[str, str]] = {}
    for f in sorted((root / "var/lib/dpkg/info").glob("*.md5sums")):
        pkg = f.name.removesuffix(".md5sums")
        for line in f.read_text(encoding="utf-8", errors="replace").splitlines():
            digest, _, path = line.partition("  ")
            if path:
                out.setdefault(digest, (pkg, "/" + path))
    return out


def _dpkg_facts(br: BuildRoot, owned: Mapping[str, tuple[str, str]]) -> dict[str, dict[str, str]]:
    """member -> Debian facts: ``dpkg -S`` confirms each path's package, ``dpkg-query`` names its versions."""
    if not owned:
        return {}
    paths = sorted({p for _pkg, p in owned.values()})
    pkgs = sorted({pkg for pkg, _p in owned.values()})
    fmt = r"${binary:Package}|${Version}|${source:Package}|${source:Version}|${Architecture}\n"
    script = 'dpkg -S "$@" && echo "=== query" && dpkg-query -W -f "$FMT" ' + " ".join(pkgs)
    res = br.run(["/bin/sh", "-c", script, "sh", *paths], env={"FMT": fmt})
    if res.returncode != 0:
        raise ProvenanceError(f"dpkg -S/dpkg-query in the build root failed: {res.stderr.strip()[-200:]}")
    listing, _, query = res.stdout.partition("=== query\n")
    by_path: dict[str, str] = {}
    for line in listing.splitlines():
        pkg, _, path = line.partition(": ")
        by_path[path.strip()] = pkg.strip()
    versions: dict[str, dict[str, str]] = {}
    for line in query.splitlines():
        name, version, src, src_version, arch = line.split("|")
        versions[name] = {
            "package": name.split(":")[0],
            "version": version,
            "source": src,
            "source_version": src_version,
            "arch": arch,
        }
    out: dict[str, dict[str, str]] = {}
    for member, (pkg, path) in owned.items():
        listed = by_path.get(path, "")
        if pkg not in listed.split(", "):
            raise ProvenanceError(
                f"{member}: md5sums say {pkg} ships {path}, dpkg -S says {listed or 'nobody'}"
            )
        out[member] = {**versions[pkg], "path": path}
    return out


def _prefix_owner(path: str, prefixes: Mapping[str, str]) -> str | None:
    for prefix, owner in prefixes.items():
        if path.startswith(prefix + "/"):
            return owner
    return None


def collect_root(br: BuildRoot, binary: Path) -> dict[str, Any]:
    """The provenance of ``binary``, frozen in the build root ``br`` (see the module docstring)."""
    from owrelease import buildroot

    manifest = json.loads((br.path.parent / "manifest.json").read_text(encoding="utf-8"))
    site = br.path / buildroot.SITE_PACKAGES.lstrip("/")
    dists = distributions(site)
    found = bundle_mod.read(binary, with_elf=False)
    from PyInstaller.archive.readers import CArchiveReader

    reader = CArchiveReader(str(binary))
    binaries = {m.path: reader.extract(m.path) for m in found.members.values() if m.typecode == "b"}
    sizes = {len(b) for b in binaries.values()}
    index = _index(br.path, (buildroot.PREFIX,), sizes)
    md5sums = _dpkg_md5sums(br.path)
    prefixes = {
        f"{buildroot.PREFIX}/python": "cpython",
        f"{buildroot.PREFIX}/openssl": "openssl",
        buildroot.SITE_PACKAGES: "wheel",
    }
    dedupe = layer_record(br, "openssl-dedupe")
    patched = {}
    for action in dedupe.get("actions", []):
        if action.startswith("patched "):
            where, _, args = action.removeprefix("patched ").partition(":")
            patched[where] = args.strip()
    origins: dict[str, dict[str, Any]] = {}
    debian: dict[str, tuple[str, str]] = {}
    for member, blob in binaries.items():
        sha = hashlib.sha256(blob).hexdigest()
        paths = [p for p in index.get(sha, []) if _prefix_owner(p, prefixes)]
        if paths:
            path = paths[0]
            owner = _prefix_owner(path, prefixes)
            origin: dict[str, Any] = {"kind": owner, "root_path": path}
            if owner == "wheel":
                rel = PurePosixPath(path).relative_to(buildroot.SITE_PACKAGES).as_posix()
                dist = next((d for d in dists if rel in d["record"]), None)
                if dist is None:
                    raise ProvenanceError(f"{member}: {path} is in no distribution's RECORD")
                origin.update(distribution=dist["name"], record_path=rel, record_sha256=dist["record"][rel])
                if path in patched:
                    origin["patchelf"] = patched[path]
            origins[member] = origin
            continue
        md5 = hashlib.md5(blob).hexdigest()
        if md5 in md5sums:
            debian[member] = md5sums[md5]
            continue
        raise ProvenanceError(f"{member}: sha256 {sha[:16]} matches no file of the build root")
    for member, facts in _dpkg_facts(br, debian).items():
        origins[member] = {"kind": "debian", **facts}

    stdlib = br.run([br.python, "-c", "import sys; print(*sorted(sys.stdlib_module_names))"], check=True)
    pyi_version = br.run([br.python, "-c", "import PyInstaller; print(PyInstaller.__version__)"], check=True)
    boot = site / "PyInstaller/bootloader/Linux-64bit-intel/run"
    patch = buildroot.HERE / "pyinstaller-bootloader.patch"
    glibc_h = buildroot.HERE / "glibc228.h"
    return {
        "schema": 1,
        "builder": "buildroot",
        "root_key": br.key,
        "distro": f"debian-{_debian_major(br.path)}",
        "runtime": runtime_sources(manifest),
        "applied": {
            "openssl_configure": manifest["inputs"]["openssl_configure"],
            "python_configure": manifest["inputs"]["python_configure"],
            "force_include": {
                "name": glibc_h.name,
                "sha256": hashlib.sha256(glibc_h.read_bytes()).hexdigest(),
            },
            "debian_patches": False,
        },
        "distributions": dists,
        "stdlib": stdlib.stdout.split(),
        "origins": dict(sorted(origins.items())),
        "strip": layer_record(br, "strip").get("recipe", ""),
        "pyinstaller": {
            "version": pyi_version.stdout.strip(),
            "bootloader_sha256": hashlib.sha256(boot.read_bytes()).hexdigest() if boot.is_file() else "",
            "patch_name": patch.name,
            "patch": patch.read_text(encoding="utf-8"),
        },
    }


def _debian_major(root: Path) -> str:
    version = (root / "etc/debian_version").read_text(encoding="utf-8").strip()
    return version.split(".")[0]


def write(record: Mapping[str, Any], target: Path) -> Path:
    tmp = target.with_suffix(".tmp")
    tmp.write_text(json.dumps(record, indent=1, sort_keys=True) + "\n", encoding="utf-8")
    tmp.replace(target)
    return target


def load(binary: Path) -> dict[str, Any]:
    """The provenance recorded next to ``binary`` by the freeze."""
    path = binary.with_name(PROVENANCE_NAME)
    if not path.is_file():
        raise ProvenanceError(f"{path}: missing (freeze the binary again: its provenance was never recorded)")
    return dict(json.load(open(path, encoding="utf-8")))
