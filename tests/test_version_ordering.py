"""The release lineage sorts the same under rpm's and dpkg's own comparators.

The strings are the ones `owrelease.version` generates from the PEP 440 inputs; the comparison is
done by rpm (python3-rpm's ``rpm.labelCompare``, run by the system Python that carries the bindings)
and by ``dpkg --compare-versions``, never by our own code.
"""

from __future__ import annotations

import itertools
import json
import subprocess

import pytest
from owrelease.version import package_version

LINEAGE = ["0.1.0", "0.2.0rc1", "0.2.0rc2", "0.2.0", "0.2.1"]
SYSTEM_PYTHON = "/usr/bin/python3"  # Debian's python3 with python3-rpm


def _rpm_compare(pairs: list[tuple[tuple[str, str, str], tuple[str, str, str]]]) -> list[int]:
    """rpm.labelCompare over (epoch, version, release) pairs, in one process."""
    script = (
        "import json, sys, rpm\n"
        "pairs = json.load(sys.stdin)\n"
        "print(json.dumps([rpm.labelCompare(tuple(a), tuple(b)) for a, b in pairs]))\n"
    )
    out = subprocess.run(
        [SYSTEM_PYTHON, "-c", script], input=json.dumps(pairs), capture_output=True, text=True, check=True
    )
    return [int(x) for x in json.loads(out.stdout)]


def _dpkg_less(a: str, b: str) -> bool:
    return subprocess.run(["dpkg", "--compare-versions", a, "lt", b], check=False).returncode == 0


def _dpkg_equal(a: str, b: str) -> bool:
    return subprocess.run(["dpkg", "--compare-versions", a, "eq", b], check=False).returncode == 0


def _lineage(release: int) -> list[tuple[str, tuple[str, str, str], str]]:
    out = []
    for pep in LINEAGE:
        v = package_version(pep, release)
        out.append((pep, (str(v.epoch), v.rpm_version, v.rpm_release), v.deb))
    return out


def test_generated_strings_are_tilde_encoded() -> None:
    v = package_version("0.2.0rc1", 1)
    assert (v.rpm_version, v.rpm_release, v.deb) == ("0.2.0~rc1", "1", "0.2.0~rc1-1")


@pytest.mark.parametrize("release", [1, 2])
def test_lineage_sorts_the_same_in_rpm_and_dpkg(release: int) -> None:
    items = _lineage(release)
    pairs = list(itertools.combinations(range(len(items)), 2))  # i < j in lineage order
    rpm_results = _rpm_compare([(items[i][1], items[j][1]) for i, j in pairs])
    for (i, j), rpm_cmp in zip(pairs, rpm_results, strict=True):
        a, b = items[i], items[j]
        assert rpm_cmp == -1, f"rpm: {a[1]} is not below {b[1]}"
        assert _dpkg_less(a[2], b[2]), f"dpkg: {a[2]} is not below {b[2]}"
        assert not _dpkg_less(b[2], a[2]), f"dpkg: {b[2]} sorts below {a[2]}"
    assert _rpm_compare([(items[0][1], items[0][1])]) == [0]
    assert _dpkg_equal(items[0][2], items[0][2])


def test_release_number_bumps_sort_above_in_both() -> None:
    one, two = package_version("0.2.0rc2", 1), package_version("0.2.0rc2", 2)
    nxt = package_version("0.2.0", 1)
    a, b, c = ((str(v.epoch), v.rpm_version, v.rpm_release) for v in (one, two, nxt))
    assert _rpm_compare([(a, b), (b, c)]) == [-1, -1]
    assert _dpkg_less(one.deb, two.deb) and _dpkg_less(two.deb, nxt.deb)


def test_the_comparators_can_say_no() -> None:
    # the untilded spelling a naive mapping produces sorts ABOVE the release in both: the harness sees it
    assert _rpm_compare([(("0", "0.2.0rc1", "1"), ("0", "0.2.0", "1"))]) == [1]
    assert not _dpkg_less("0.2.0rc1-1", "0.2.0-1")
