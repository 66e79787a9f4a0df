"""Start-up cost of the frozen binary, phase by phase, beside the same CLI from source and a bare interpreter.

    python bench/startup.py [--binary build/openwatch] [--rounds 15] [--goal 4] [--bare /usr/bin/python3]

Two measurements, both interleaved (round i runs every command once, in a rotating order, so that the
load of a shared machine hits them alike), both reported as medians:

* **Wall time**, untraced: frozen ``openwatch --version``, ``python -m openwatch --version`` from source,
  and the bare interpreter ``/usr/bin/python3 -S -c pass`` (Debian's real binary, not a pyenv shim). The
  goals are ratios of these.
* **Phases**, from ``strace -f -ttt --seccomp-bpf`` timestamps of a few well-chosen system calls (only
  those stop the process: execve, clone, mkdir, openat, exit_group; not read/write/unlink), so one start
  is split where the bootloader and the interpreter leave marks:

  ==================  ===========================================================================
  bootloader          the parent's execve until it creates its ``_MEI`` directory (mkdir)
  extraction          that mkdir until the parent forks the child (clone): every member written
  child start         the clone until the child's interpreter opens ``base_library.zip``: the
                      child's exec, loading libpython, initialising Python ("until Python runs")
  imports             from there to the child's last open of something importable (the bundle
                      itself, which holds the PYZ, ``base_library.zip``, an extension module)
  command             from there to the child's exit_group: the command and interpreter shutdown
  cleanup             the child's exit until the parent's exit_group: removing the ``_MEI`` tree
  ==================  ===========================================================================

  From source the same split has three phases: interpreter start (execve until the first open under
  ``openwatch/``), imports, command. Tracing adds a few microseconds per traced call (about 300 opens
  in a frozen start), so the traced total is printed beside the untraced one.

Exit status 1 when the frozen binary is slower than ``goal`` x the bare interpreter.
"""

from __future__ import annotations

import argparse
import itertools
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
TRACED = "execve,clone,clone3,fork,vfork,mkdir,openat,exit_group"
FROZEN_PHASES = ("bootloader", "extraction", "child start", "imports", "command", "cleanup")
SOURCE_PHASES = ("interpreter start", "imports", "command")
_LINE = re.compile(r"^(?P<pid>\d+) +(?P<t>\d+\.\d+) (?P<call>\w+)\((?P<args>.*)$")
_IMPORTABLE = re.compile(r'"[^"]*(\.so[.\d]*|\.zip|\.pyc|\.py|/PYZ\.pyz)"')


def time_once(argv: list[str], env: dict[str, str]) -> float:
    t0 = time.perf_counter()
    res = subprocess.run(argv, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, env=env, cwd=ROOT)
    elapsed = time.perf_counter() - t0
    if res.returncode != 0:
        raise SystemExit(f"startup: {' '.join(argv)} failed ({res.returncode}): {res.stderr.decode()[-300:]}")
    return elapsed


def trace_once(argv: list[str], env: dict[str, str]) -> list[tuple[int, float, str, str]]:
    """(pid, time, syscall, arguments) of one traced run."""
    with tempfile.TemporaryDirectory(prefix="ow-startup-") as tmp:
        out = Path(tmp) / "trace"
        cmd = ["strace", "-f", "-ttt", "-qq", "--seccomp-bpf", "-e", f"trace={TRACED}", "-o", str(out), *argv]
        res = subprocess.run(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, env=env, cwd=ROOT)
        if res.returncode != 0:
            raise SystemExit(
                f"startup: strace {' '.join(argv)} failed ({res.returncode}): {res.stderr.decode()[-300:]}"
            )
        events = []
        for line in out.read_text(encoding="utf-8", errors="replace").splitlines():
            m = _LINE.match(line)
            if m and "= -1 " not in line:  # failed calls (ENOENT probes) mark nothing
                events.append((int(m["pid"]), float(m["t"]), m["call"], m["args"]))
        return events


class PhaseError(RuntimeError):
    """The trace lacks a marker: the bootloader or interpreter no longer behaves as this script expects."""


def _first(events: Sequence[tuple[int, float, str, str]], pred: object, what: str) -> int:
    for i, ev in enumerate(events):
        if pred(ev):  # type: ignore[operator]
            return i
    raise PhaseError(f"no {what} in the trace")


def frozen_phases(events: Sequence[tuple[int, float, str, str]], binary: str) -> dict[str, float]:
    """``binary``: the executable's real path (Python reads its PYZ from there)."""
    parent = events[0][0]
    i_mkdir = _first(events, lambda e: e[0] == parent and e[2] == "mkdir" and "_MEI" in e[3], "mkdir _MEI")
    i_clone = _first(
        events, lambda e: e[0] == parent and e[2] in ("clone", "clone3", "fork", "vfork"), "fork"
    )
    child = next(e[0] for e in events if e[0] != parent)
    i_py = _first(events, lambda e: e[0] == child and "base_library.zip" in e[3], "base_library.zip open")
    child_exit = _first(events, lambda e: e[0] == child and e[2] == "exit_group", "child exit_group")
    last_import = max(
        (i for i in range(i_py, child_exit) if events[i][0] == child and events[i][2] == "openat"
         and (_IMPORTABLE.search(events[i][3]) or f'"{binary}"' in events[i][3])),
        default=i_py,
    )  # fmt: skip
    parent_exit = _first(events, lambda e: e[0] == parent and e[2] == "exit_group", "parent exit_group")
    marks = [0, i_mkdir, i_clone, i_py, last_import, child_exit, parent_exit]
    pairs = itertools.pairwise(marks)
    return {name: events[b][1] - events[a][1] for name, (a, b) in zip(FROZEN_PHASES, pairs, strict=True)}


def source_phases(events: Sequence[tuple[int, float, str, str]]) -> dict[str, float]:
    pkg = str(ROOT / "openwatch")
    i_pkg = _first(events, lambda e: e[2] == "openat" and pkg in e[3], f"open under {pkg}")
    pid = events[i_pkg][0]  # the interpreter (a launcher before it, if any, counts as start)
    i_exit = _first(events, lambda e: e[0] == pid and e[2] == "exit_group", "exit_group")
    last_import = max(
        (i for i in range(i_pkg, i_exit) if events[i][0] == pid and events[i][2] == "openat"
         and _IMPORTABLE.search(events[i][3])),
        default=i_pkg,
    )  # fmt: skip
    marks = [0, i_pkg, last_import, i_exit]
    pairs = itertools.pairwise(marks)
    return {name: events[b][1] - events[a][1] for name, (a, b) in zip(SOURCE_PHASES, pairs, strict=True)}


ONDEMAND_OPTION = "pyi-openwatch-ondemand "  # owrelease.ondemandplan.OPTION_PREFIX


def biggest_members(
    binary: Path, n: int = 12
) -> tuple[list[tuple[int, int, str]], list[tuple[int, int, str]]]:
    """(uncompressed bytes, stored bytes, name) of the members every start writes, biggest first, and of
    those left in the archive for openwatch.ondemand (the bootloader skips them)."""
    try:
        from PyInstaller.archive.readers import CArchiveReader
    except ImportError:
        return [], []
    reader = CArchiveReader(str(binary))
    later = {o.removeprefix(ONDEMAND_OPTION) for o in reader.options if o.startswith(ONDEMAND_OPTION)}
    files = [(e[2], e[1], name) for name, e in reader.toc.items() if e[4] in ("b", "x", "Z")]
    start = sorted((f for f in files if f[2] not in later), reverse=True)
    return start[:n], sorted((f for f in files if f[2] in later), reverse=True)


def _ms(seconds: float) -> str:
    return f"{seconds * 1000:7.1f} ms"


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--binary", type=Path, default=ROOT / "build" / "openwatch", help="the frozen openwatch")
    ap.add_argument("--rounds", type=int, default=15)
    ap.add_argument("--goal", type=float, default=4.0, help="max frozen / bare-interpreter ratio")
    ap.add_argument("--python", default=sys.executable, help="interpreter for the source run (a venv's)")
    ap.add_argument("--bare", default="/usr/bin/python3", help="the bare interpreter (a real binary)")
    ap.add_argument("--args", default="--version", help="the openwatch arguments to time")
    args = ap.parse_args(argv)
    if not args.binary.is_file():
        raise SystemExit(f"startup: no frozen binary at {args.binary}: run 'nox -s freeze' or pass --binary")
    bare = os.path.realpath(args.bare)
    if not os.path.isfile(bare) or "shims" in bare:
        raise SystemExit(f"startup: {args.bare} is not a real interpreter binary ({bare})")
    if shutil.which("strace") is None:
        raise SystemExit("startup: strace is needed for the phase split (apt-get install strace)")

    env = {k: v for k, v in os.environ.items() if not k.startswith(("OPENWATCH_", "PYTHON"))}
    src_env = {**env, "PYTHONPATH": str(ROOT)}
    ow_args = args.args.split()
    cases = {
        "frozen": ([str(args.binary), *ow_args], env),
        "source": ([args.python, "-m", "openwatch", *ow_args], src_env),
        "bare": ([bare, "-S", "-c", "pass"], env),
    }
    labels = {
        "frozen": f"frozen  openwatch {args.args}",
        "source": f"source  python -m openwatch {args.args}",
        "bare": f"bare    {args.bare} -S -c pass",
    }
    names = list(cases)
    real = os.path.realpath(args.binary)
    for name in names:  # warm the page cache once
        time_once(*cases[name])
    wall: dict[str, list[float]] = {name: [] for name in names}
    phases: dict[str, dict[str, list[float]]] = {"frozen": {}, "source": {}}
    traced_total: dict[str, list[float]] = {"frozen": [], "source": []}
    for i in range(args.rounds):
        order = names[i % len(names) :] + names[: i % len(names)]
        for name in order:
            wall[name].append(time_once(*cases[name]))
            if name in phases:
                events = trace_once(*cases[name])
                split = frozen_phases(events, real) if name == "frozen" else source_phases(events)
                for phase, seconds in split.items():
                    phases[name].setdefault(phase, []).append(seconds)
                traced_total[name].append(sum(split.values()))

    med = {name: statistics.median(s) for name, s in wall.items()}
    floor = med["bare"]
    print(f"startup, {args.rounds} interleaved rounds; medians, (min..max), ratio to the bare interpreter")
    for name in names:
        s = wall[name]
        print(f"  {labels[name]:<44} {_ms(med[name])}  ({min(s) * 1000:.0f}..{max(s) * 1000:.0f})"
              f"  {med[name] / floor:6.2f}x")  # fmt: skip
    for name, title in (("frozen", "frozen phases (strace)"), ("source", "source phases (strace)")):
        total = statistics.median(traced_total[name])
        print(f"{title}: traced median, share of the traced total, that share of the untraced median"
              f" and its ratio to the bare interpreter")  # fmt: skip
        for phase, s in phases[name].items():
            share = statistics.median(s) / total
            print(f"  {phase:<20} {_ms(statistics.median(s))}  {share * 100:5.1f} %  {_ms(share * med[name])}"
                  f"  {share * med[name] / floor:6.2f}x")  # fmt: skip
        print(f"  {'total':<20} {_ms(total)}  100.0 %  {_ms(med[name])}  {med[name] / floor:6.2f}x")
    ratio = med["frozen"] / floor
    print(f"frozen / bare: {ratio:.2f}x (goal <= {args.goal}x); source / bare: {med['source'] / floor:.2f}x"
          f" (goal <= 3x); frozen / source: {med['frozen'] / med['source']:.2f}x")  # fmt: skip
    print(f"binary: {args.binary} {args.binary.stat().st_size:,} bytes")
    members, later = biggest_members(args.binary, 10_000)
    if members:
        print(f"bundle: {len(members)} members, {sum(m[0] for m in members):,} bytes extracted per start,"
              f" {sum(m[1] for m in members):,} stored; {len(later)} more"
              f" ({sum(m[0] for m in later):,} bytes) unpacked on demand; biggest at start (extracted /"
              " stored bytes):")  # fmt: skip
        for size, stored, name in members[:12]:
            print(f"  {size:>11,} {stored:>11,}  {name}")
        ssl_libs = [name for _s, _c, name in members + later if _is_openssl(name)]
        print(
            f"OpenSSL libraries in the bundle ({len(ssl_libs)}; 2 = one copy): {', '.join(sorted(ssl_libs))}"
        )
    return 0 if ratio <= args.goal else 1


def _is_openssl(member: str) -> bool:
    base = member.rsplit("/", 1)[-1]
    return base.startswith(("libssl", "libcrypto")) and ".so" in base


if __name__ == "__main__":
    sys.exit(main())
