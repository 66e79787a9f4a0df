"""owrelease.version: PEP 440 -> RPM/DEB strings (pure). The ordering proof with rpm's and dpkg's own
comparators lives in test_version_ordering.py."""

from __future__ import annotations

import pytest
from owrelease.version import VersionError, package_version, upstream


@pytest.mark.parametrize(
    ("pep440", "expected"),
    [
        ("0.2.0rc1", "0.2.0~rc1"),
        ("0.2.0", "0.2.0"),
        ("1.0a1", "1.0~a1"),
        ("1.0b2", "1.0~b2"),
        ("1.0c3", "1.0~rc3"),
        ("1.0-RC.4", "1.0~rc4"),
        ("1.0.0alpha", "1.0.0~a0"),
        ("1.0.post2", "1.0+post2"),
        ("1.0-3", "1.0+post3"),
        ("1.0.dev4", "1.0~~dev4"),
        ("1.0rc1.dev2", "1.0~rc1~dev2"),
        ("1.0.post1.dev2", "1.0+post1~dev2"),
        ("1.0+Ubuntu-1_a", "1.0+local.ubuntu.1.a"),
        ("v01.002.0", "1.2.0"),
    ],
)
def test_upstream_mapping(pep440: str, expected: str) -> None:
    assert upstream(pep440) == (0, expected)


def test_epoch_goes_to_rpm_epoch_and_deb_prefix() -> None:
    pv = package_version("2!1.0rc1", release=3)
    assert (pv.epoch, pv.rpm_version, pv.rpm_release) == (2, "1.0~rc1", "3")
    assert pv.deb == "2:1.0~rc1-3"
    assert pv.rpm_evr == "2:1.0~rc1-3"
    # the epoch never appears in file names
    assert pv.deb_filename("openwatch", "amd64") == "openwatch_1.0~rc1-3_amd64.deb"
    assert pv.rpm_filename("openwatch", "x86_64") == "openwatch-1.0~rc1-3.x86_64.rpm"


def test_current_release_candidate_names() -> None:
    pv = package_version("0.2.0rc1")
    assert pv.rpm_filename("openwatch", "x86_64") == "openwatch-0.2.0~rc1-1.x86_64.rpm"
    assert pv.deb_filename("openwatch", "amd64") == "openwatch_0.2.0~rc1-1_amd64.deb"
    assert pv.deb == "0.2.0~rc1-1"


@pytest.mark.parametrize("bad", ["", "1.0-rc1-x", "one", "1..0", "1.0+", "1.0 beta"])
def test_not_pep440_is_refused(bad: str) -> None:
    with pytest.raises(VersionError, match="not a PEP 440 version"):
        upstream(bad)


def test_release_must_be_positive() -> None:
    with pytest.raises(VersionError):
        package_version("1.0", release=0)
