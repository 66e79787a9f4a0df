"""The Debian mirror comes from the host's apt configuration (or the override), never from the code."""

from __future__ import annotations

from pathlib import Path

import pytest
from owrelease.debmirror import MirrorNotFound, host_mirror


def _etc(tmp_path: Path, files: dict[str, str]) -> Path:
    for name, text in files.items():
        f = tmp_path / name
        f.parent.mkdir(parents=True, exist_ok=True)
        f.write_text(text)
    return tmp_path


def test_deb822_skips_security_and_disabled(tmp_path: Path) -> None:
    etc = _etc(
        tmp_path,
        {
            "sources.list.d/a-security.sources": (
                "Types: deb\nURIs: http://sec.invalid/debian-security\nSuites: bookworm-security\n"
            ),
            "sources.list.d/b-off.sources": (
                "Enabled: no\nTypes: deb\nURIs: http://off.invalid/d\nSuites: bookworm\n"
            ),
            "sources.list.d/c.sources": (
                "# internal\nTypes: deb deb-src\nURIs: http://mirror.internal/debian/\n"
                "Suites: bookworm bookworm-updates\nComponents: main\n\n"
                "Types: deb\nURIs: http://other.invalid/debian\nSuites: bookworm\n"
            ),
        },
    )
    assert host_mirror(etc, environ={}) == "http://mirror.internal/debian"


def test_one_line_sources_list_with_options(tmp_path: Path) -> None:
    etc = _etc(
        tmp_path,
        {
            "sources.list": "deb-src http://src.invalid/d bookworm main\n"
            "deb [arch=amd64 signed-by=/k.gpg] http://one.internal/debian bookworm main # comment\n"
        },
    )
    assert host_mirror(etc, environ={}) == "http://one.internal/debian"


def test_override_wins_and_missing_is_one_line(tmp_path: Path) -> None:
    assert (
        host_mirror(tmp_path, environ={"OPENWATCH_DEBIAN_MIRROR": "http://x.internal/d/"})
        == "http://x.internal/d"
    )
    with pytest.raises(MirrorNotFound) as exc:
        host_mirror(tmp_path, environ={})
    assert "OPENWATCH_DEBIAN_MIRROR" in str(exc.value) and "\n" not in str(exc.value)


def test_this_host_has_one() -> None:
    assert host_mirror().startswith(("http://", "https://", "file:"))
