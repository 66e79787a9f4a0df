"""Sizes: the frozen binary and the packages, from build/ and dist/.

    python bench/sizes.py [--root PATH]

Reads (nothing is built): ``build/openwatch`` if present, else the newest ``build/freeze/*/openwatch``;
``dist/*.rpm`` and ``dist/*.deb``. For each package: its file size, its installed size (rpm's
``%{SIZE}``; dpkg's ``Installed-Size``, in KiB) and the ratio to the binary. Exits 1 if nothing is found.
"""

from __future__ import annotations

import argparse
import subprocess
from pathlib import Path

HERE = Path(__file__).resolve().parent.parent


def binary(root: Path) -> Path | None:
    direct = root / "build" / "openwatch"
    if direct.is_file():
        return direct
    cached = sorted((root / "build" / "freeze").glob("*/openwatch"), key=lambda p: p.stat().st_mtime)
    return cached[-1] if cached else None


def installed(pkg: Path) -> int | None:
    if pkg.suffix == ".rpm":
        r = subprocess.run(["rpm", "-qp", "--qf", "%{SIZE}", str(pkg)], capture_output=True, text=True)
        return int(r.stdout) if r.returncode == 0 and r.stdout.isdigit() else None
    r = subprocess.run(["dpkg-deb", "-f", str(pkg), "Installed-Size"], capture_output=True, text=True)
    return int(r.stdout.strip()) * 1024 if r.returncode == 0 and r.stdout.strip().isdigit() else None


def mb(n: int) -> str:
    return f"{n / 1e6:.2f}"


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--root", type=Path, default=HERE, help="the tree whose build/ and dist/ to read")
    args = ap.parse_args(argv)
    root = args.root.resolve()
    rows: list[tuple[str, int, int | None]] = []
    exe = binary(root)
    if exe:
        rows.append((str(exe.relative_to(root)), exe.stat().st_size, None))
    for pkg in sorted((root / "dist").glob("*.rpm")) + sorted((root / "dist").glob("*.deb")):
        rows.append((str(pkg.relative_to(root)), pkg.stat().st_size, installed(pkg)))
    if not rows:
        print(f"bench/sizes.py: nothing in {root}/build or {root}/dist: run nox -s build_rpm build_deb")
        return 1
    base = rows[0][1] if exe else None
    print("| file | size MB | installed MB | size / binary |")
    print("|---|---:|---:|---:|")
    for name, size, inst in rows:
        ratio = f"{size / base:.2f}" if base else "-"
        print(f"| {name} | {mb(size)} | {mb(inst) if inst else '-'} | {ratio} |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
