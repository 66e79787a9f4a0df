"""``python -m owrelease JOB``: what the nox sessions run inside their virtualenv."""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

from owrelease import buildenv, freeze, lock
from owrelease.model import ROOT, ModelError, app_version, check_changelog, load

# build-<format> jobs; their modules (and jinja2) are imported only when such a job runs
FORMATS = ("rpm", "deb")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="owrelease")
    sub = parser.add_subparsers(dest="job", required=True)
    p_freeze = sub.add_parser("freeze", help="the binary alone, into build/")
    p_freeze.add_argument("--out", type=Path, default=ROOT / "build")
    p_render = sub.add_parser("render", help="the rendered files alone, into build/render/")
    p_render.add_argument("--out", type=Path, default=ROOT / "build" / "render")
    for fmt in FORMATS:
        p = sub.add_parser(f"build-{fmt}", help=f"dist/*.{fmt} and dist/SHA256SUMS")
        p.add_argument("--dist", type=Path, default=ROOT / "dist")
    args = parser.parse_args(argv)
    start = time.monotonic()
    try:
        if args.job == "freeze":
            check_changelog(load(), app_version())
            lock.check(ROOT)
            frozen = freeze.freeze(freeze.HostBuilder(), src=ROOT, cache=ROOT / "build" / "freeze")
            target = freeze.export(frozen, args.out)
            print(f"freeze: {target} sha256 {frozen.sha256[:16]}... glibc >= {frozen.glibc_floor}")
        elif args.job == "render":
            from owrelease import build

            written = build.do_render(args.out)
            print(f"render: {len(written)} files under {args.out}")
        else:
            from owrelease import build

            build.build_package(args.job.removeprefix("build-"), args.dist)
    except lock.LockError as exc:
        for line in exc.lines:
            print(f"owrelease {args.job}: migrations.lock: {line}", file=sys.stderr)
        print(f"owrelease {args.job}: {len(exc.lines)} lock problem(s): nothing was built", file=sys.stderr)
        return 1
    except (buildenv.ToolMissing, freeze.FreezeError, ModelError, RuntimeError) as exc:
        print(f"owrelease {args.job}: {exc}", file=sys.stderr)
        return 1
    print(f"owrelease {args.job}: done in {time.monotonic() - start:.1f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
