"""The glibc gate on real ELF files: host binaries, C programs compiled here, a real PyInstaller onefile.

Every expectation is cross-checked against binutils' ``readelf -V --wide``, an independent parser.
"""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from owrelease import elfgate

ROOT = Path(__file__).resolve().parent.parent
GLIBC228_H = ROOT / "packaging" / "buildroot" / "glibc228.h"
HOST_ELFS = [
    Path("/usr/bin/ls"),
    Path("/usr/lib/x86_64-linux-gnu/libcrypto.so.3"),
    Path("/usr/lib/x86_64-linux-gnu/libm.so.6"),
    Path(sys.executable).resolve(),
]

C_PROGRAM = r"""
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
int main(int argc, char **argv) {
    double x = atof(argc > 1 ? argv[1] : "2");
    printf("%.3f\n", exp(x) + log(x) + pow(x, x) + exp2(x) + log2(x));
    return 0;
}
"""


def readelf_glibc_versions(path: Path) -> set[str]:
    """GLIBC_x.y names in the file's version-needs section, per readelf."""
    out = subprocess.run(["readelf", "-V", "--wide", str(path)], capture_output=True, text=True, check=True)
    needs = out.stdout.split("Version needs section", 1)
    if len(needs) < 2:
        return set()
    return set(re.findall(r"Name: (GLIBC_\d+(?:\.\d+)*|GLIBC_ABI_DT_RELR)\s", needs[1]))


def vkey(name: str) -> tuple[int, ...]:
    # ld adds GLIBC_ABI_DT_RELR for packed relative relocations, supported from glibc 2.36 on.
    return (2, 36) if name == "GLIBC_ABI_DT_RELR" else elfgate.parse_version(name)


def fmt(name: str) -> str:
    return ".".join(map(str, vkey(name)))


@pytest.mark.parametrize("path", HOST_ELFS, ids=lambda p: p.name)
def test_needs_match_readelf(path: Path) -> None:
    assert path.is_file(), f"{path} missing on this host"
    [result] = elfgate.scan(path)
    ours = {n.name for n in result.needs}
    theirs = readelf_glibc_versions(path)
    assert ours == theirs
    if theirs:
        assert elfgate.measure_floor(path) == fmt(max(theirs, key=vkey))


def test_host_ls_fails_gate_and_names_symbol() -> None:
    ls = Path("/usr/bin/ls")
    assert vkey(elfgate.measure_floor(ls)) >= (2, 34)  # bookworm: __libc_start_main@GLIBC_2.34
    with pytest.raises(elfgate.GlibcGateError) as err:
        elfgate.check(ls, "2.28")
    lines = str(err.value).splitlines()
    assert "/usr/bin/ls: __libc_start_main@GLIBC_2.34 (from libc.so.6)" in lines
    assert lines[1:] == err.value.offenders
    elfgate.check(ls, elfgate.measure_floor(ls))  # at its own floor it passes


def _compile(tmp: Path, name: str, *extra: str) -> Path:
    src = tmp / "m.c"
    src.write_text(C_PROGRAM)
    out = tmp / name
    subprocess.run(["gcc", "-O2", *extra, str(src), "-o", str(out), "-lm"], check=True)
    return out


def test_symver_header_pins_libm_and_gate_names_every_symbol(tmp_path: Path) -> None:
    plain = _compile(tmp_path, "plain")
    pinned = _compile(tmp_path, "pinned", "-include", str(GLIBC228_H))
    # Both run here.
    assert subprocess.run([str(plain)], capture_output=True, text=True).stdout == "17.082\n"
    assert subprocess.run([str(pinned)], capture_output=True, text=True).stdout == "17.082\n"

    with pytest.raises(elfgate.GlibcGateError) as err:
        elfgate.check(plain, "2.28")
    msg = str(err.value)
    for sym in ("exp", "log", "pow", "exp2", "log2"):
        assert f"{plain}: {sym}@GLIBC_2.29 (from libm.so.6)" in msg.splitlines()

    # With the header the libm symbols bind to the base version; only the host's libc start remains.
    with pytest.raises(elfgate.GlibcGateError) as err2:
        elfgate.check(pinned, "2.28")
    assert "@GLIBC_2.29" not in str(err2.value)
    assert f"{pinned}: __libc_start_main@GLIBC_2.34 (from libc.so.6)" in str(err2.value).splitlines()
    assert "GLIBC_2.29" not in readelf_glibc_versions(pinned)


def test_directory_scan_takes_the_max_and_ignores_non_elf(tmp_path: Path) -> None:
    d = tmp_path / "bundle"
    (d / "sub").mkdir(parents=True)
    shutil.copy(_compile(tmp_path, "pinned", "-include", str(GLIBC228_H)), d / "a")
    shutil.copy("/usr/lib/x86_64-linux-gnu/libm.so.6", d / "sub" / "libm.so.6")
    (d / "README").write_text("not an ELF\n")
    expected = max(
        readelf_glibc_versions(d / "a") | readelf_glibc_versions(d / "sub" / "libm.so.6"), key=vkey
    )
    assert elfgate.measure_floor(d) == fmt(expected)
    labels = {r.label for r in elfgate.scan(d)}
    assert labels == {str(d / "a"), str(d / "sub" / "libm.so.6")}


def test_not_elf_is_an_error(tmp_path: Path) -> None:
    f = tmp_path / "x.txt"
    f.write_text("hello\n")
    with pytest.raises(elfgate.ElfError):
        elfgate.measure_floor(f)
    with pytest.raises(FileNotFoundError):
        elfgate.measure_floor(tmp_path / "missing")


@pytest.mark.slow
def test_real_onefile_built_on_this_host(tmp_path: Path) -> None:
    """A PyInstaller onefile frozen with this host's interpreter needs more than 2.28: the gate says where."""
    script = tmp_path / "hello.py"
    script.write_text("import ssl, math\nprint('ok', math.hypot(3, 4))\n")
    subprocess.run(
        [sys.executable, "-m", "PyInstaller", "--onefile", "--noconfirm", "--log-level", "WARN",
         "--distpath", str(tmp_path / "dist"), "--workpath", str(tmp_path / "work"),
         "--specpath", str(tmp_path), str(script)],
        check=True, capture_output=True, text=True,
    )  # fmt: skip
    exe = tmp_path / "dist" / "hello"
    assert subprocess.run([str(exe)], capture_output=True, text=True).stdout == "ok 5.0\n"

    results = elfgate.scan(exe)
    labels = [r.label for r in results]
    assert labels[0] == str(exe)  # the bootloader itself
    members = {lbl.split("!", 1)[1] for lbl in labels[1:]}
    assert any("libpython3.11.so" in m for m in members)
    assert any("lib-dynload/_ssl." in m for m in members)
    # The bootloader is old-glibc clean, per readelf too; the interpreter is not.
    assert vkey(max(readelf_glibc_versions(exe), key=vkey)) <= (2, 28)
    floor = elfgate.measure_floor(exe)
    assert vkey(floor) >= (2, 34)

    with pytest.raises(elfgate.GlibcGateError) as err:
        elfgate.check(exe, "2.28")
    lines = str(err.value).splitlines()
    assert lines[0].startswith(f"{exe} needs GLIBC_{floor}, above the allowed GLIBC_2.28")
    assert all(
        re.fullmatch(rf"{re.escape(str(exe))}!\S+: \S+@GLIBC_[\d.]+ \(from \S+\)", ln) for ln in lines[1:]
    )
    assert any(f"{exe}!libpython3.11.so.1.0: " in ln for ln in lines)
    elfgate.check(exe, floor)

    # The command line: floor on stdout, rc 1 and the offenders when over the limit.
    cli = [sys.executable, "-m", "owrelease.elfgate", str(exe)]
    env_path = str(ROOT / "packaging")
    ok = subprocess.run(cli, capture_output=True, text=True, env={"PYTHONPATH": env_path})
    assert (ok.returncode, ok.stdout) == (0, floor + "\n")
    bad = subprocess.run(
        [*cli, "--max", "2.28"], capture_output=True, text=True, env={"PYTHONPATH": env_path}
    )
    assert bad.returncode == 1 and bad.stderr.splitlines() == lines
