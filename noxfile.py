"""Nox sessions: each wires arguments into the release toolkit (packaging/owrelease) and does nothing else.

    nox -s build_rpm build_deb    dist/*.rpm, dist/*.deb, their SBOMs dist/*.cdx.json, dist/SHA256SUMS
    nox -s freeze | render        build/openwatch | build/render/
    nox -s verify                 check dist/ (model, rpm vs deb, embedded migrations, lintian, rpmlint,
                                  squawk, systemd-analyze) and write dist/openwatch-<version>.manifest.json
    nox -s sign                   sign dist/ with the key the environment names (GNUPGHOME,
                                  OWRELEASE_SIGNING_KEY, OWRELEASE_SIGNING_PASSPHRASE_FILE)
    nox -s repo [-- --base-url U] publish the signed dist/ into dist/repo/ (signed dnf and apt trees)
    nox -s lock [-- --check]      append new migrations to migrations/migrations.lock (or only check)
    nox -s runtime [-- --update]  is packaging/runtime.lock.json (CPython, OpenSSL) current? (or rewrite it)
    nox -s repro                  build the committed tree twice from fresh clones and compare
    nox -s tests -- -m packages   pytest with every test dependency
    nox -s lint                   ruff check + ruff format --check + mypy

Every session uses the venv backend on the interpreter running nox (3.11, built with --enable-shared)
and installs its own pinned dependencies from packaging/requirements/.
"""

from __future__ import annotations

import hashlib
import sys
from pathlib import Path

import nox

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE / "packaging"))  # never a package itself: PyPA's `packaging` stays importable

from owrelease import buildenv  # noqa: E402  (stdlib only: safe in nox's own environment)

REQ = HERE / "packaging" / "requirements"
TOOLKIT_ENV = {"PYTHONPATH": str(HERE / "packaging"), "OPENWATCH_PROJECT": str(HERE)}
SQUAWK = "squawk-cli==2.70.0"

nox.options.default_venv_backend = "venv"
nox.options.reuse_venv = "yes"
nox.options.sessions = ["lint", "tests"]
nox.options.error_on_missing_interpreters = True


def _install(session: nox.Session, *names: str) -> None:
    """Install pinned requirement files, unless this (reused) venv already holds exactly these pins.

    Venvs are reused (below): re-creating them was most of a no-change rebuild's time.
    """
    files = [REQ / f"{name}.txt" for name in names]
    digest = hashlib.sha256(b"\0".join(f.read_bytes() for f in files)).hexdigest()
    stamp = Path(session.virtualenv.location) / ".owrelease-pins"
    if stamp.is_file() and stamp.read_text() == digest:
        session.log(f"requirements unchanged ({', '.join(names)}): venv reused")
        return
    for f in files:
        session.install("-r", str(f))
    stamp.write_text(digest)


def _require(session: nox.Session, tool: str) -> None:
    try:
        buildenv.require(tool, install=True)
    except buildenv.ToolMissing as exc:
        session.error(str(exc))


def _system(session: nox.Session, which: str) -> None:
    """The system packages of ``which`` (buildenv.SYSTEM_PACKAGES): installed as root on Debian."""
    try:
        buildenv.ensure_packages(which, log=session.log)
    except buildenv.ToolMissing as exc:
        session.error(str(exc))


def _toolkit(session: nox.Session, *args: str) -> None:
    session.run("python", "-m", "owrelease", *args, env=TOOLKIT_ENV)


@nox.session
def freeze(session: nox.Session) -> None:
    """The frozen binary alone, into build/openwatch (+ openwatch.json).

    PyInstaller runs from owrelease's private venv holding exactly freeze.txt (build/freeze/venv-*),
    shared by every session and rebuilt only when the pins change; the session itself needs the same
    pins to read the bundle back (elfgate's glibc floor uses PyInstaller's archive reader).
    """
    _install(session, "freeze")
    _toolkit(session, "freeze", *session.posargs)


@nox.session
def render(session: nox.Session) -> None:
    """Every rendered file alone, into build/render/."""
    _install(session, "freeze", "release")
    _toolkit(session, "render", *session.posargs)


@nox.session
def build_rpm(session: nox.Session) -> None:
    """dist/openwatch-<version>-<release>.<arch>.rpm and dist/SHA256SUMS."""
    _system(session, "build")
    _require(session, "rpmbuild")
    _install(session, "freeze", "release", "inspect", "sbom")
    _toolkit(session, "build-rpm", *session.posargs)


@nox.session
def build_deb(session: nox.Session) -> None:
    """dist/openwatch_<version>-<release>_<arch>.deb and dist/SHA256SUMS."""
    _system(session, "build")
    _require(session, "dpkg-deb")
    _install(session, "freeze", "release", "inspect", "sbom")
    _toolkit(session, "build-deb", *session.posargs)


@nox.session
def verify(session: nox.Session) -> None:
    """What dist/ holds against package.toml, each other, migrations/ and the lock; then the gates."""
    _system(session, "verify")
    for tool in ("dpkg-deb", "systemd-analyze", "lintian", "rpmlint"):
        _require(session, tool)
    _install(session, "freeze", "inspect", "sbom")
    session.install(SQUAWK)
    session.run("python", "-m", "owrelease.verify", "--manifest", *session.posargs, env=TOOLKIT_ENV)


@nox.session
def sign(session: nox.Session) -> None:
    """Sign dist/ (stdlib only: no dependencies to install); the key comes from the environment."""
    for tool in ("rpmsign", "gpg", "gpgv"):
        _require(session, tool)
    session.run("python", "-m", "owrelease.sign", *session.posargs, env=TOOLKIT_ENV)


@nox.session
def repo(session: nox.Session) -> None:
    """dist/repo/: signed dnf (createrepo_c) and apt (apt-ftparchive) trees from the signed dist/."""
    for tool in ("createrepo_c", "apt-ftparchive", "gpg", "gpgv"):
        _require(session, tool)
    session.run("python", "-m", "owrelease.repo", *session.posargs, env=TOOLKIT_ENV)


@nox.session
def lock(session: nox.Session) -> None:
    """migrations/migrations.lock: append the new migrations (``-- --check`` only checks)."""
    session.run("python", "-m", "owrelease.lock", *session.posargs, env=TOOLKIT_ENV)


@nox.session
def runtime(session: nox.Session) -> None:
    """Is packaging/runtime.lock.json the newest CPython/OpenSSL served? (``-- --update``: rewrite)"""
    _install(session, "inspect")
    session.run("python", "-m", "owrelease.runtimecheck", *session.posargs, env=TOOLKIT_ENV)


@nox.session
def repro(session: nox.Session) -> None:
    """Two clean builds of the committed tree, from fresh clones, must be byte-identical."""
    for tool in ("rpmbuild", "dpkg-deb"):
        _require(session, tool)
    _install(session, "freeze", "release", "inspect", "sbom")
    session.run("python", "-m", "owrelease.repro", *session.posargs, env=TOOLKIT_ENV)


@nox.session
def tests(session: nox.Session) -> None:
    """pytest with every Python test dependency; arguments after -- go to pytest.

    The suite starts its own throwaway PostgreSQL (tests/suitepg.py) and removes it at the end.
    """
    _system(session, "tests")
    for tool in ("rpmbuild", "dpkg-deb", "rpm2cpio", "cpio", "systemd-analyze"):
        _require(session, tool)
    _install(session, "tests")
    session.run("pytest", *session.posargs)


@nox.session
def lint(session: nox.Session) -> None:
    """ruff check + ruff format --check + mypy (configured in pyproject.toml).

    mypy reads the pinned runtime dependencies (psycopg, jinja2, python-debian, ...), so the session
    installs them too: the types checked are those of the versions that ship.
    """
    _install(session, "lint", "freeze", "release", "inspect", "sbom")
    session.run("ruff", "check", ".")
    session.run("ruff", "format", "--check", ".")
    session.run("mypy", "openwatch", "packaging/owrelease")
