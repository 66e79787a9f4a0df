"""Benchmark: a clean `nox -s build_rpm build_deb` against a second one with nothing changed.

    python bench/build.py [--rounds 3] [--reuse-venv] [--source PATH] [--keep]

What is measured, side by side in one run, in one fresh clone (``git clone`` of PATH's HEAD into a
temporary directory, so only committed files take part):

* ``clean``: the first ``nox -s build_rpm build_deb`` in the clone: nox's venvs are created and filled,
  the freeze cache (``build/freeze``: PyInstaller venv and frozen binary) is cold;
* ``no change``: the same command again, ``--rounds`` times, with nothing changed: nox re-creates
  its venvs (its default), the freeze cache is warm;
* ``no change, nox -R`` (``--reuse-venv``): nox reuses its venvs and skips installs.

The build-root cache (the debootstrapped bullseye root: minutes to make, keyed by its inputs) is NOT cold:
it lives in a machine-level cache (``owrelease.buildroot.DEFAULT_CACHE``) that every clone shares. That is
stated in the output.

Prints each run's wall time, the medians and the ratio warm/clean; exits non-zero if a build fails.
"""

from __future__ import annotations

import argparse
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent.parent
COMMAND = ["nox", "-s", "build_rpm", "build_deb"]


def run(cmd: list[str], cwd: Path, log: Path) -> float:
    started = time.monotonic()
    with log.open("a") as fh:
        fh.write(f"\n$ {' '.join(cmd)}\n")
        fh.flush()
        r = subprocess.run(cmd, cwd=cwd, stdout=fh, stderr=subprocess.STDOUT, check=False)
    elapsed = time.monotonic() - started
    if r.returncode != 0:
        sys.exit(f"bench/build.py: {' '.join(cmd)} failed ({r.returncode}) after {elapsed:.1f}s; see {log}")
    return elapsed


def artifacts(clone: Path) -> list[str]:
    dist = clone / "dist"
    return sorted(p.name for p in dist.iterdir()) if dist.is_dir() else []


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rounds", type=int, default=3, help="no-change builds to take the median of")
    ap.add_argument("--reuse-venv", action="store_true", help="also measure `nox -R` (venvs reused)")
    ap.add_argument("--source", type=Path, default=HERE, help="repository to clone (its HEAD)")
    ap.add_argument("--keep", action="store_true", help="keep the temporary clone")
    args = ap.parse_args(argv)

    tmp = Path(tempfile.mkdtemp(prefix="ow-bench-build-"))
    clone = tmp / "openwatch"
    log = tmp / "build.log"
    try:
        head = subprocess.run(
            ["git", "-C", str(args.source), "rev-parse", "--short", "HEAD"],
            capture_output=True,
            text=True,
            check=True,
        ).stdout.strip()
        subprocess.run(["git", "clone", "-q", str(args.source), str(clone)], check=True)
        # The bullseye build root lives in a machine-level cache (buildroot.DEFAULT_CACHE), shared by
        # every clone: a clean build here is a clean *freeze and package*, not a new build root.
        sys.path.insert(0, str(args.source.resolve() / "packaging"))
        from owrelease import buildroot

        reused = buildroot.DEFAULT_CACHE.is_dir()
        print(f"clone of {args.source} at {head} in {clone}")
        print(
            "freeze cache: cold (empty build/freeze); build-root cache: "
            + (f"reused ({buildroot.DEFAULT_CACHE})" if reused else "none to reuse (cold)")
        )

        clean = run(COMMAND, clone, log)
        print(f"clean      {clean:8.1f} s   {' '.join(COMMAND)}   -> {', '.join(artifacts(clone))}")
        warm = []
        for i in range(args.rounds):
            warm.append(run(COMMAND, clone, log))
            print(f"no change  {warm[-1]:8.1f} s   (round {i + 1})")
        reuse = []
        if args.reuse_venv:
            for i in range(args.rounds):
                reuse.append(run(["nox", "-R", "-s", "build_rpm", "build_deb"], clone, log))
                print(f"nox -R     {reuse[-1]:8.1f} s   (round {i + 1})")

        print()
        print("| build | median s | ratio to clean |")
        print("|---|---:|---:|")
        print(f"| clean (cold freeze cache, fresh nox venvs) | {clean:.1f} | 1.00 |")
        mw = statistics.median(warm)
        print(f"| nothing changed ({args.rounds} rounds) | {mw:.1f} | {mw / clean:.2f} |")
        if reuse:
            mr = statistics.median(reuse)
            print(f"| nothing changed, `nox -R` ({args.rounds} rounds) | {mr:.1f} | {mr / clean:.2f} |")
        print(f"\nlog: {log}" if args.keep else "")
        return 0
    finally:
        if not args.keep:
            shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    raise SystemExit(main())
