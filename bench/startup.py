"""Start-up cost of the frozen binary, side by side with the same CLI from source and a bare interpreter.

The three commands run interleaved (round i runs each once, in a rotating order) so that the load of
a shared machine hits them alike; medians and ratios are printed, plus the bundle's biggest members.

    python bench/startup.py [--binary build/openwatch] [--rounds 15] [--goal 4]

Exit status 1 when the frozen binary is slower than ``goal`` x the bare interpreter (``python3 -S``).
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def time_once(argv: list[str], env: dict[str, str]) -> float:
    t0 = time.perf_counter()
    res = subprocess.run(argv, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, env=env, cwd=ROOT)
    elapsed = time.perf_counter() - t0
    if res.returncode != 0:
        raise SystemExit(f"startup: {' '.join(argv)} failed ({res.returncode}): {res.stderr.decode()[-300:]}")
    return elapsed


def biggest_members(binary: Path, n: int = 12) -> list[tuple[int, str]]:
    try:
        from PyInstaller.archive.readers import CArchiveReader
    except ImportError:
        return []
    reader = CArchiveReader(str(binary))
    files = ((entry[2], name) for name, entry in reader.toc.items() if entry[4] != "n")  # n: symlink
    return sorted(files, reverse=True)[:n]


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--binary", type=Path, default=ROOT / "build" / "openwatch", help="the frozen openwatch")
    ap.add_argument("--rounds", type=int, default=15)
    ap.add_argument("--goal", type=float, default=4.0, help="max frozen / bare-interpreter ratio")
    ap.add_argument("--python", default=sys.executable, help="interpreter for the source and bare runs")
    args = ap.parse_args(argv)
    if not args.binary.is_file():
        raise SystemExit(f"startup: no frozen binary at {args.binary}: run 'nox -s freeze' or pass --binary")

    env = {k: v for k, v in os.environ.items() if not k.startswith(("OPENWATCH_", "PYTHON"))}
    src_env = {**env, "PYTHONPATH": str(ROOT)}
    cases = {
        "frozen  openwatch --version": ([str(args.binary), "--version"], env),
        "source  python -m openwatch --version": ([args.python, "-m", "openwatch", "--version"], src_env),
        "bare    python3 -S -c pass": ([args.python, "-S", "-c", "pass"], env),
    }
    names = list(cases)
    for name in names:  # warm the page cache once
        time_once(*cases[name])
    samples: dict[str, list[float]] = {name: [] for name in names}
    for i in range(args.rounds):
        order = names[i % len(names) :] + names[: i % len(names)]
        for name in order:
            samples[name].append(time_once(*cases[name]))

    med = {name: statistics.median(s) for name, s in samples.items()}
    bare = med[names[2]]
    print(f"startup, {args.rounds} interleaved rounds, median (min..max) and ratio to the bare interpreter")
    for name in names:
        s = samples[name]
        print(f"  {name:<40} {med[name] * 1000:7.1f} ms  ({min(s) * 1000:.0f}..{max(s) * 1000:.0f})"
              f"  {med[name] / bare:5.2f}x")  # fmt: skip
    ratio = med[names[0]] / bare
    vs_source = med[names[0]] / med[names[1]]
    print(f"frozen / source: {vs_source:.2f}x; frozen / bare: {ratio:.2f}x (goal <= {args.goal}x)")
    print(f"binary: {args.binary} {args.binary.stat().st_size:,} bytes")
    members = biggest_members(args.binary)
    if members:
        print("biggest bundle members (uncompressed bytes):")
        for size, name in members:
            print(f"  {size:>11,}  {name}")
        ssl_libs = [name for _size, name in biggest_members(args.binary, 10_000) if _is_openssl(name)]
        print(
            f"OpenSSL libraries in the bundle ({len(ssl_libs)}; 2 = one copy): {', '.join(sorted(ssl_libs))}"
        )
    return 0 if ratio <= args.goal else 1


def _is_openssl(member: str) -> bool:
    base = member.rsplit("/", 1)[-1]
    return base.startswith(("libssl", "libcrypto")) and ".so" in base


if __name__ == "__main__":
    sys.exit(main())
