"""Fixtures of the lifecycle suite: cached base roots, the tree's packages and a newer build of them.

Every test here is marked ``chroot`` and ``slow``. Nothing is skipped: a missing tool or a base that cannot
be built fails the test with the command's output.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest

from . import roots
from .packages import ROOT, BackgroundBuild, Build, app_version, migration_head


@pytest.fixture(scope="session")
def _newer_build() -> Iterator[BackgroundBuild]:
    """Started before the tree's own build so that the two overlap."""
    started = BackgroundBuild()
    try:
        yield started
    finally:
        started.cancel()


@pytest.fixture(scope="session")
def current(_newer_build: BackgroundBuild, release_build: Any) -> Build:
    """The packages of the tree as it is (tests/conftest.py builds them once per session)."""
    return Build(
        version=app_version(ROOT),
        deb=release_build.deb,
        rpm=release_build.rpm,
        head=migration_head(ROOT),
        seconds=0.0,
    )


@pytest.fixture(scope="session")
def newer(_newer_build: BackgroundBuild, current: Build) -> Build:
    """The next release candidate: one more migration and a changed default in openwatch.toml."""
    b = _newer_build.result()
    assert b.head == current.head + 1 and b.version != current.version
    return b


@pytest.fixture(scope="session")
def _bases() -> Iterator[dict[str, Future[Path]]]:
    """All three cached roots, built in parallel on first use (debootstrap is mostly waiting on I/O)."""
    specs = {"chroot": roots.CHROOT_BASE, "rpm": roots.RPM_BASE, "systemd": roots.SYSTEMD_BASE}
    with ThreadPoolExecutor(max_workers=3) as pool:
        yield {name: pool.submit(roots.base_for, spec) for name, spec in specs.items()}


@pytest.fixture(scope="session")
def chroot_base(_bases: dict[str, Future[Path]]) -> Path:
    return _bases["chroot"].result()


@pytest.fixture(scope="session")
def rpm_base(_bases: dict[str, Future[Path]]) -> Path:
    return _bases["rpm"].result()


@pytest.fixture(scope="session")
def systemd_base(_bases: dict[str, Future[Path]]) -> Path:
    return _bases["systemd"].result()


@pytest.fixture
def timed(request: pytest.FixtureRequest) -> Iterator[None]:
    """Prints each scenario's wall time (pytest -s, or in the captured output of a failure)."""
    t = time.monotonic()
    yield
    print(f"\n[lifecycle] {request.node.name}: {time.monotonic() - t:.1f} s")
