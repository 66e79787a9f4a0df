"""Layer: strip the root's binaries once, before patchelf.

Why: bullseye's ``strip`` corrupts the LOAD segments of a file patchelf rewrote (``ELF load command
address/offset not page-aligned``: the bundled libpq fails to load wherever no system libpq5 hides it).  So
PyInstaller in the root runs WITHOUT ``--strip``, and this layer (marker ``<key>/layer-strip.json``, applied
before :mod:`owrelease.layer_dedupe`) strips every ELF executable and shared object of the CPython prefix
(lib-dynload included), our OpenSSL and the venv (wheel libraries, extension modules, the bootloader) with
the same plain ``strip`` PyInstaller would use.  A root patched before this layer existed has psycopg-binary's
wheel reinstalled (checked against its RECORD) and the dedupe layer redone.  Both layers check that every
LOAD segment they leave is page-aligned (:func:`misaligned_loads`).
"""

from __future__ import annotations

import hashlib
import time
from pathlib import Path

from owrelease.recipes import cpython, openssl
from owrelease.rootshell import (
    BuildRoot,
    BuildRootError,
    in_root,
    layer_marker,
    layer_record,
    log,
    pip_env,
    sha,
    write_layer_record,
)

__all__ = ["alignment_problems", "elf_kind", "misaligned_loads", "strip_binaries", "strippable"]

# bump STRIP_RECIPE when this layer's logic changes
STRIP_RECIPE = "1"
# in-root trees whose ELF executables and shared objects are stripped (the venv holds the bootloader too)
STRIP_TREES = (cpython.PREFIX_DIR, openssl.PREFIX_DIR, cpython.VENV)
SITE_PACKAGES = cpython.SITE_PACKAGES


_LOAD_RE = r"^\s*LOAD\s+(0x[0-9a-f]+)\s+(0x[0-9a-f]+)\s+\S+\s+\S+\s+\S+\s+[RWE ]+\s(0x[0-9a-f]+)\s*$"


def misaligned_loads(readelf_lw: str) -> list[str]:
    """The LOAD segments of ``readelf -lW`` output the loader refuses: ``offset % align != vaddr % align``.

    Each is described as ``offset=0x.. vaddr=0x.. align=0x..``; an empty list means every LOAD maps.
    Raises :class:`BuildRootError` when the output holds no LOAD at all (not a program-header listing).
    """
    import re

    loads = re.findall(_LOAD_RE, readelf_lw, flags=re.MULTILINE)
    if not loads:
        raise BuildRootError("no LOAD segment in the readelf -lW output")
    bad = []
    for off, vaddr, align in loads:
        o, v, a = int(off, 16), int(vaddr, 16), int(align, 16)
        if a > 1 and o % a != v % a:
            bad.append(f"offset={off} vaddr={vaddr} align={align}")
    return bad


def elf_kind(path: Path) -> str:
    """``"exec"``/``"dyn"`` for an ELF executable or shared object, ``"rel"``/``"other"`` for other ELFs,
    ``""`` for anything else (symlinks included)."""
    if path.is_symlink() or not path.is_file():
        return ""
    with path.open("rb") as fp:
        head = fp.read(18)
    if len(head) < 18 or head[:4] != b"\x7fELF":
        return ""
    e_type = int.from_bytes(head[16:18], "little" if head[5] == 1 else "big")
    return {1: "rel", 2: "exec", 3: "dyn"}.get(e_type, "other")


def strippable(br: BuildRoot) -> list[str]:
    """In-root paths of every ELF executable and shared object under :data:`STRIP_TREES`, sorted."""
    found = []
    for tree in STRIP_TREES:
        for p in sorted((br.path / tree.lstrip("/")).rglob("*")):
            if elf_kind(p) in ("exec", "dyn"):
                found.append("/" + str(p.relative_to(br.path)))
    return found


def _strip_id() -> str:
    return "strip-" + sha({"recipe": STRIP_RECIPE, "trees": STRIP_TREES})[:12]


def _record_mismatches(site: Path, dist_info: Path) -> list[str]:
    """Files of an installed wheel whose bytes differ from its RECORD (e.g. rewritten by patchelf)."""
    import base64
    import csv

    bad = []
    with (dist_info / "RECORD").open(newline="") as fp:
        for row in csv.reader(fp):
            if len(row) < 2 or not row[1].startswith("sha256="):
                continue
            f = site / row[0]
            if not f.is_file():
                bad.append(row[0])
                continue
            digest = base64.urlsafe_b64encode(hashlib.sha256(f.read_bytes()).digest()).rstrip(b"=").decode()
            if digest != row[1].removeprefix("sha256="):
                bad.append(row[0])
    return bad


def _pristine_psycopg_binary(br: BuildRoot, log_file: Path) -> list[str]:
    """Make psycopg-binary's files exactly its wheel's again (a root patched by an earlier layer had them
    rewritten by patchelf); returns what was done.  The reinstalled wheel must carry the same RECORD."""
    site = br.path / SITE_PACKAGES.lstrip("/")
    infos = sorted(site.glob("psycopg_binary-*.dist-info"))
    if len(infos) != 1:
        raise BuildRootError(f"expected one psycopg_binary dist-info in {site}, found {len(infos)}")
    changed = _record_mismatches(site, infos[0])
    if not changed:
        return []
    version = infos[0].name.removeprefix("psycopg_binary-").removesuffix(".dist-info")
    record = (infos[0] / "RECORD").read_text()
    log(f"psycopg-binary {version}: {len(changed)} file(s) differ from the wheel: reinstalling it")
    in_root(br.path, f"{br.python} -m pip install -q --no-cache-dir --no-deps --force-reinstall "
             f"--only-binary :all: psycopg-binary=={version}", log_file, pip_env(br.path))  # fmt: skip
    # the one-OpenSSL layer must run again on the pristine files
    layer_marker(br, "openssl-dedupe").unlink(missing_ok=True)
    again = _record_mismatches(site, infos[0])
    if again or (infos[0] / "RECORD").read_text() != record:
        raise BuildRootError(
            f"psycopg-binary {version} reinstalled from PyPI differs from the installed wheel"
        )
    return [f"reinstalled psycopg-binary=={version} ({len(changed)} file(s) were rewritten)"]


def alignment_problems(br: BuildRoot, paths: list[str]) -> dict[str, list[str]]:
    """In-root ELF paths -> misaligned LOAD segments (bullseye's readelf, in the root)."""
    problems: dict[str, list[str]] = {}
    for i in range(0, len(paths), 200):
        chunk = paths[i : i + 200]
        script = 'for f in "$@"; do echo "=== $f"; readelf -lW "$f"; done'
        out = br.run(["/bin/sh", "-c", script, "sh", *chunk], check=True).stdout
        for part in out.split("=== ")[1:]:
            name, _, text = part.partition("\n")
            if bad := misaligned_loads(text):
                problems[name] = bad
    return problems


def strip_binaries(br: BuildRoot) -> str:
    """Strip every ELF executable and shared object of the root's CPython, OpenSSL and venv (wheel libraries,
    extension modules, the PyInstaller bootloader) ONCE, before any patchelf; returns the layer id.

    Why: PyInstaller's ``--strip`` runs bullseye's ``strip`` on what it collects, and that ``strip`` breaks
    the LOAD segments of a file ``patchelf --replace-needed`` rewrote (``ELF load command address/offset not
    page-aligned``: the bundled libpq would not load).  So the build root strips here, with the same tool and
    flags as PyInstaller (plain ``strip``), then :func:`dedupe_openssl` patches, and the RootBuilder runs
    PyInstaller without ``--strip``.  A root patched before this layer existed gets psycopg-binary's wheel
    reinstalled first (its files checked against the wheel's RECORD) and the dedupe layer redone.
    Idempotent (``strip`` on a stripped file changes nothing), cached by ``<key>/layer-strip.json``.
    """
    layer = _strip_id()
    if layer_record(br, "strip").get("layer") == layer:
        return layer
    t0 = time.monotonic()
    log_file = br.path.parent / "layer-strip.log"
    log(f"layer {layer}: strip the root's binaries once, before patchelf (log: {log_file})")
    try:
        actions = _pristine_psycopg_binary(br, log_file)
        paths = strippable(br)
        before = sum((br.path / p.lstrip("/")).stat().st_size for p in paths)
        for i in range(0, len(paths), 200):
            chunk = paths[i : i + 200]
            res = br.run(["strip", *chunk], check=False)
            with log_file.open("a") as out:
                out.write(f"$ strip ({len(chunk)} files)\n{res.stdout}{res.stderr}\n")
            if res.returncode != 0:
                tail = (res.stderr.strip() or "(no output)").splitlines()[-1]
                raise BuildRootError(f"strip exit status {res.returncode}: {tail} (log: {log_file})")
        after = sum((br.path / p.lstrip("/")).stat().st_size for p in paths)
        if bad := alignment_problems(br, paths):
            first = next(iter(bad))
            raise BuildRootError(f"{first}: LOAD segment not page-aligned after strip: {bad[first][0]}")
    except BuildRootError as exc:
        raise BuildRootError(f"layer '{layer}' failed: {exc}") from None
    record = {
        "layer": layer,
        "recipe": STRIP_RECIPE,
        "actions": actions,
        "files": len(paths),
        "bytes_before": before,
        "bytes_after": after,
        "seconds": round(time.monotonic() - t0, 1),
    }
    write_layer_record(br, "strip", record)
    mb = f"{before / 1e6:.1f} -> {after / 1e6:.1f} MB"
    log(f"layer {layer}: {len(paths)} files, {mb} in {record['seconds']} s")
    return layer
