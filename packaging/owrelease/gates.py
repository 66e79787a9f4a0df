"""Quality gates over the built packages: lintian, rpmlint, squawk, systemd-analyze.

Each gate runs the real tool and returns a `GateResult`: ``failures`` (one line each, the build
fails on any) and ``details`` (what the tool said that is allowed: overridden or filtered tags, info).

* lintian (Debian 12's 2.116): ``-EIL +pedantic --show-overrides``; any E: or W: line fails, as do
  ``unused-override`` and ``mismatched-override``. Overrides ship inside the package
  (``/usr/share/lintian/overrides/<name>``, from ``packaging/lintian-overrides``), each under a comment.
* rpmlint, pinned to Debian 12's 2.4.0 (``apt-get install rpmlint python3-rpm``) with the committed
  ``packaging/rpmlint.toml``: any E: or W: line fails; each entry of its ``Filters`` has a comment above it.
* squawk over ``migrations/*.sql`` with the repository's ``.squawk.toml`` when present.
* ``systemd-analyze verify`` in a root holding the unit, the binary and the host's units: any output fails.
* ``systemd-analyze security --offline=true``: the exposure must be 2.0 or lower.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from owrelease.model import Package

__all__ = [
    "RPMLINT_VERSION",
    "SECURITY_MAX",
    "GateResult",
    "lintian",
    "rpmlint",
    "run_all",
    "squawk",
    "systemd_security",
    "systemd_verify",
    "unjustified_lines",
]

RPMLINT_VERSION = "2.4.0"
SECURITY_MAX = 2.0
_LINTIAN_LINE = re.compile(r"^(?P<sev>[EWIPXOCN]): (?P<pkg>\S+?)(?: \S+)?: (?P<tag>\S+)(?P<rest>.*)$")
_LINTIAN_FAIL_TAGS = {"unused-override", "mismatched-override"}
_RPMLINT_LINE = re.compile(r"^(?P<pkg>\S+): (?P<sev>[EWI]): (?P<tag>\S+)(?P<rest>.*)$")
_EXPOSURE = re.compile(r"Overall exposure level for (?P<unit>\S+): (?P<score>[0-9.]+)")


@dataclass
class GateResult:
    name: str
    failures: list[str] = field(default_factory=list)
    details: list[str] = field(default_factory=list)
    note: str = ""

    @property
    def ok(self) -> bool:
        return not self.failures

    def summary(self) -> str:
        state = "ok" if self.ok else f"FAIL ({len(self.failures)})"
        return f"{self.name}: {state}{' - ' + self.note if self.note else ''}"


def _run(
    argv: Sequence[str], extra_env: dict[str, str] | None = None, cwd: Path | None = None
) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "LC_ALL": "C.UTF-8", "SYSTEMD_COLORS": "0", "NO_COLOR": "1", **(extra_env or {})}
    return subprocess.run(list(argv), capture_output=True, text=True, check=False, env=env, cwd=cwd)


def _tool(name: str) -> str | None:
    """A tool on PATH, or next to the running interpreter (a nox venv's bin/)."""
    return shutil.which(name) or shutil.which(name, path=str(Path(sys.executable).parent))


# ------------------------------------------------------------------------ justification of exceptions


def unjustified_lines(text: str, *, entries: Sequence[int]) -> list[int]:
    """Of the 1-based line numbers ``entries``, those with no comment line right above them (a run of
    entries under one comment counts as justified only for the first; each needs its own)."""
    lines = text.splitlines()
    bad = []
    for number in entries:
        above = lines[number - 2].strip() if number >= 2 else ""
        if not above.startswith("#"):
            bad.append(number)
    return bad


def lintian_override_problems(path: Path) -> list[str]:
    text = path.read_text(encoding="utf-8")
    entries = [
        i for i, line in enumerate(text.splitlines(), 1) if line.strip() and not line.lstrip().startswith("#")
    ]
    return [
        f"{path.name}:{n}: override without a justifying comment above it"
        for n in unjustified_lines(text, entries=entries)
    ]


def rpmlint_filter_problems(path: Path) -> list[str]:
    text = path.read_text(encoding="utf-8")
    lines = text.splitlines()
    entries: list[int] = []
    inside = False
    for i, line in enumerate(lines, 1):
        stripped = line.strip()
        if re.match(r"^Filters\s*=\s*\[", stripped):
            inside = True
            rest = stripped.split("[", 1)[1].strip()
            if rest and not rest.startswith("#") and rest != "]":
                entries.append(i)
            if rest.endswith("]"):
                inside = False
            continue
        if inside:
            if stripped.startswith("]"):
                inside = False
            elif stripped and not stripped.startswith("#"):
                entries.append(i)
    return [
        f"{path.name}:{n}: filter without a justifying comment above it"
        for n in unjustified_lines(text, entries=entries)
    ]


# ------------------------------------------------------------------------------------------- gates


def lintian(deb: Path, overrides: Path | None = None) -> GateResult:
    result = GateResult("lintian")
    exe = _tool("lintian")
    if exe is None:
        result.failures.append("lintian: not installed (apt-get install lintian)")
        return result
    if overrides is not None and overrides.is_file():
        result.failures.extend(lintian_override_problems(overrides))
    proc = _run([exe, "-EIL", "+pedantic", "--show-overrides", "--tag-display-limit", "0", str(deb)])
    counts: dict[str, int] = {}
    for line in proc.stdout.splitlines():
        m = _LINTIAN_LINE.match(line)
        if m is None:
            continue
        sev, tag = m["sev"], m["tag"]
        counts[sev] = counts.get(sev, 0) + 1
        if sev in "EW" or tag in _LINTIAN_FAIL_TAGS:
            result.failures.append(f"lintian: {deb.name}: {line}")
        else:
            result.details.append(line)
    for line in proc.stderr.splitlines():
        if line.strip() and "running with root privileges is not recommended" not in line:
            result.failures.append(f"lintian: {deb.name}: stderr: {line}")
    if proc.returncode not in (0, 2) and not result.failures:  # 2: tags of --fail-on severity were emitted
        result.failures.append(f"lintian: {deb.name}: exited {proc.returncode}")
    result.note = ", ".join(f"{k}:{v}" for k, v in sorted(counts.items())) or "no tags"
    return result


def rpmlint(rpm: Path, config: Path) -> GateResult:
    result = GateResult("rpmlint")
    exe = _tool("rpmlint")
    if exe is None:
        result.failures.append("rpmlint: not installed (apt-get install rpmlint python3-rpm)")
        return result
    version = _run([exe, "--version"]).stdout.strip()
    if version != RPMLINT_VERSION:
        result.failures.append(f"rpmlint: version {version!r}, this gate is pinned to {RPMLINT_VERSION}")
        return result
    result.failures.extend(rpmlint_filter_problems(config))
    proc = _run([exe, "-c", str(config), str(rpm)])
    for line in proc.stdout.splitlines():
        m = _RPMLINT_LINE.match(line)
        if m is None:
            if " checked;" in line:
                result.note = line.strip()
            continue
        if m["sev"] in "EW":
            result.failures.append(f"rpmlint: {rpm.name}: {line}")
        else:
            result.details.append(line)
    if proc.returncode != 0 and not result.failures:
        result.failures.append(f"rpmlint: {rpm.name}: exited {proc.returncode}: {proc.stderr.strip()[:300]}")
    return result


def squawk(project: Path) -> GateResult:
    result = GateResult("squawk")
    exe = _tool("squawk")
    if exe is None:
        result.failures.append("squawk: not installed (pip install squawk-cli==2.70.0)")
        return result
    files = sorted(str(p.relative_to(project)) for p in (project / "migrations").glob("*.sql"))
    argv = [exe, "--reporter", "gcc"]
    config = project / ".squawk.toml"
    if config.is_file():
        argv += ["--config", str(config)]
    proc = _run([*argv, *files], cwd=project)
    issues = [line for line in proc.stdout.splitlines() if line.strip() and ":" in line]
    result.failures.extend(f"squawk: {line}" for line in issues)
    if proc.returncode != 0 and not result.failures:
        result.failures.append(
            f"squawk: exited {proc.returncode}: {(proc.stderr or proc.stdout).strip()[:300]}"
        )
    result.note = f"{len(files)} files" + (", .squawk.toml" if config.is_file() else "")
    return result


def _unit_root(tmp: Path, deb: Path) -> Path:
    """A root holding the host's units and the whole payload of the package (unit, binary, man page)."""
    root = tmp / "root"
    units = root / "usr/lib/systemd/system"
    shutil.copytree("/usr/lib/systemd/system", units, symlinks=True)
    proc = _run(["dpkg-deb", "--extract", str(deb), str(root)])
    if proc.returncode != 0:
        raise RuntimeError(f"dpkg-deb --extract {deb.name}: {proc.stderr.strip()}")
    return root


def systemd_verify(root: Path, unit_name: str) -> GateResult:
    result = GateResult("systemd-analyze verify")
    # Documentation=man:... is checked by running man(1) on the host: point it at the root's pages
    proc = _run(
        ["systemd-analyze", "verify", f"--root={root}", unit_name],
        extra_env={"MANPATH": f"{root}/usr/share/man"},
    )
    said = [line for line in (proc.stdout + proc.stderr).splitlines() if line.strip()]
    result.failures.extend(f"systemd-analyze verify: {unit_name}: {line}" for line in said)
    if proc.returncode != 0 and not said:
        result.failures.append(f"systemd-analyze verify: {unit_name}: exited {proc.returncode}")
    result.note = "silent" if not said and proc.returncode == 0 else ""
    return result


def systemd_security(root: Path, unit_name: str, limit: float = SECURITY_MAX) -> GateResult:
    result = GateResult("systemd-analyze security")
    proc = _run(["systemd-analyze", "security", "--offline=true", f"--root={root}", "--no-pager", unit_name])
    m = _EXPOSURE.search(proc.stdout)
    if m is None:
        result.failures.append(
            f"systemd-analyze security: {unit_name}: no score ({proc.stderr.strip()[:300]})"
        )
        return result
    score = float(m["score"])
    result.note = f"exposure {score:.1f} (limit {limit:.1f})"
    if score > limit:
        result.failures.append(f"systemd-analyze security: {unit_name}: exposure {score:.1f} > {limit:.1f}")
        result.details.extend(
            line.strip() for line in proc.stdout.splitlines() if line.lstrip().startswith("✗")
        )
    return result


def run_all(project: Path, rpm: Path, deb: Path, model: Package) -> list[GateResult]:
    """Every gate, in a fixed order."""
    results = [
        lintian(deb, project / "packaging" / "lintian-overrides"),
        rpmlint(rpm, project / "packaging" / "rpmlint.toml"),
        squawk(project),
    ]
    unit_entry = model.by_id["unit"]
    unit_name = Path(unit_entry.path).name
    with tempfile.TemporaryDirectory(prefix="ow-gates-") as tmp:
        root = _unit_root(Path(tmp), deb)
        results.append(systemd_verify(root, unit_name))
        results.append(systemd_security(root, unit_name))
    return results
