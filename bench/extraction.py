"""What the onefile's extraction costs, and what three ways of doing it differently would save.

    python bench/extraction.py --binary PATH [--rounds 15] [--dir DIR ...]

The bootloader writes every archive member to a new private directory at each start and removes the tree
at exit (bench/startup.py: "extraction" and "cleanup"). This replays that work in one process, on the
real binary's archive (PyInstaller's own reader gives each member's offset and size), so the strategies
can be compared side by side, interleaved, on each candidate directory:

* ``bootloader``: what PyInstaller 6's ``pyi_archive_extract2fs`` does per member: open the target, open
  the executable, seek, copy in 8 KiB read/write pairs, fchmod, close both.
* ``copy_file_range``: the executable opened once, each member created with its final mode and copied
  by the kernel (``copy_file_range``, or ``sendfile`` to another file system, which Linux 5.19 and
  later refuse to copy_file_range across): fewer system calls, no user-space copy.
* ``--version's members``: the bootloader's way, but only the members the child of ``PATH --version``
  opens (read from an strace of the real binary): what extracting on demand would write for it.

Each strategy's copy is checked against the archive (sha256 of every member) once before timing. The
directories default to ``$TMPDIR`` (or /tmp) and /dev/shm: on ext4, creating many files just after
deleting many (every start does both) makes the inode allocator scan (``recently_deleted``), so the
file count matters more than the bytes there; tmpfs shows the bytes alone.
"""

from __future__ import annotations

import argparse
import errno
import hashlib
import os
import re
import shutil
import statistics
import subprocess
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from PyInstaller.archive.readers import CArchiveReader

Member = tuple[str, int, int, bool]  # name, absolute offset in the executable, length, executable bit
EXTRACTED = {"b", "x", "d", "Z", "e"}  # binary, data, dependency, zipfile, executable ('n' symlinks aside)
CHUNK = 8192


def members(binary: Path) -> list[Member]:
    reader = CArchiveReader(str(binary))
    start = reader._start_offset  # where the archive begins in the executable
    out = []
    for name, (offset, length, ulength, compressed, typecode) in reader.toc.items():
        if typecode not in EXTRACTED:
            continue
        if compressed or length != ulength:
            raise SystemExit(f"extraction: {name} is stored compressed; this replays stored members only")
        out.append((name, start + offset, length, typecode == "b"))
    return out


def version_members(binary: Path, every: list[Member]) -> list[Member]:
    """The members the child of ``binary --version`` opens for reading."""
    with tempfile.TemporaryDirectory(prefix="ow-extraction-") as tmp:
        trace = Path(tmp) / "trace"
        argv = ["strace", "-f", "-qq", "-e", "trace=openat", "-o", str(trace), str(binary), "--version"]
        subprocess.run(argv, check=True, stdout=subprocess.DEVNULL)
        opened = set()
        for line in trace.read_text().splitlines():
            m = re.search(r'"[^"]*/_MEI[^/"]+/([^"]+)"', line)
            if m and "O_WRONLY" not in line and "= -1" not in line:
                opened.add(m.group(1))
    return [m for m in every if m[0] in opened]


def _dirs(dest: Path, chosen: list[Member]) -> None:
    for d in sorted({str(Path(n).parent) for n, *_ in chosen if "/" in n}):
        (dest / d).mkdir(mode=0o700, parents=True, exist_ok=True)


def like_bootloader(binary: Path, dest: Path, chosen: list[Member]) -> None:
    _dirs(dest, chosen)
    for name, offset, length, exe in chosen:
        out = os.open(dest / name, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o666)
        src = os.open(binary, os.O_RDONLY)
        os.lseek(src, offset, os.SEEK_SET)
        left = length
        while left:
            buf = os.read(src, min(CHUNK, left))
            os.write(out, buf)
            left -= len(buf)
        os.fchmod(out, 0o700 if exe else 0o600)
        os.close(src)
        os.close(out)


def with_copy_file_range(binary: Path, dest: Path, chosen: list[Member]) -> None:
    _dirs(dest, chosen)
    src = os.open(binary, os.O_RDONLY)
    try:
        for name, offset, length, exe in chosen:
            out = os.open(dest / name, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o700 if exe else 0o600)
            left, pos = length, offset
            while left:
                try:
                    n = os.copy_file_range(src, out, left, pos)
                except OSError as exc:  # EXDEV: another file system (Linux >= 5.19 copies within one)
                    if exc.errno not in (errno.EXDEV, errno.EINVAL, errno.ENOSYS):
                        raise
                    n = os.sendfile(out, src, pos, left)  # still in the kernel, no user-space copy
                pos, left = pos + n, left - n
            os.close(out)
    finally:
        os.close(src)


def check(
    binary: Path, way: Callable[[Path, Path, list[Member]], None], chosen: list[Member], base: Path
) -> None:
    reader = CArchiveReader(str(binary))
    dest = Path(tempfile.mkdtemp(prefix="_MEIcheck", dir=base))
    try:
        way(binary, dest, chosen)
        for name, *_ in chosen:
            want = hashlib.sha256(reader.extract(name)).hexdigest()
            if hashlib.sha256((dest / name).read_bytes()).hexdigest() != want:
                raise SystemExit(f"extraction: {way.__name__} wrote {name} wrong")
    finally:
        shutil.rmtree(dest)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--binary", type=Path, required=True)
    ap.add_argument("--rounds", type=int, default=15)
    ap.add_argument("--dir", type=Path, action="append", help="where to extract (repeatable)")
    args = ap.parse_args()
    binary = args.binary.resolve()
    every = members(binary)
    needed = version_members(binary, every)
    bases = args.dir or [Path(os.environ.get("TMPDIR", "/tmp")), Path("/dev/shm")]
    ways: dict[str, tuple[Callable[[Path, Path, list[Member]], None], list[Member]]] = {
        "bootloader": (like_bootloader, every),
        "copy_file_range": (with_copy_file_range, every),
        "--version's members": (like_bootloader, needed),
    }
    for base in bases:
        for way, chosen in ways.values():
            check(binary, way, chosen, base)
    times: dict[tuple[str, str, str], list[float]] = {}
    for r in range(args.rounds):
        order = list(ways.items())
        order = order[r % len(order) :] + order[: r % len(order)]  # rotate: shared load hits all alike
        for base in bases:
            for label, (way, chosen) in order:
                dest = Path(tempfile.mkdtemp(prefix="_MEIbench", dir=base))
                t0 = time.perf_counter()
                way(binary, dest, chosen)
                t1 = time.perf_counter()
                shutil.rmtree(dest)
                t2 = time.perf_counter()
                times.setdefault((str(base), label, "write"), []).append((t1 - t0) * 1000)
                times.setdefault((str(base), label, "remove"), []).append((t2 - t1) * 1000)
    print(f"{binary}: {len(every)} members, {sum(m[2] for m in every):,} bytes; "
          f"--version's child opens {len(needed)} of them, {sum(m[2] for m in needed):,} bytes; "
          f"{args.rounds} rounds, medians")  # fmt: skip
    print("| directory | strategy | files | write ms | remove ms | total ms | vs bootloader |")
    print("|---|---|---:|---:|---:|---:|---:|")
    for base in bases:
        ref = statistics.median(times[(str(base), "bootloader", "write")]) + statistics.median(
            times[(str(base), "bootloader", "remove")]
        )
        for label, (_, chosen) in ways.items():
            w = statistics.median(times[(str(base), label, "write")])
            d = statistics.median(times[(str(base), label, "remove")])
            cells = [
                str(base),
                label,
                str(len(chosen)),
                f"{w:.1f}",
                f"{d:.1f}",
                f"{w + d:.1f}",
                f"{(w + d) / ref:.2f}x",
            ]
            print("| " + " | ".join(cells) + " |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
