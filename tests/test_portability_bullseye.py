"""The frozen binary on an older system: a pristine Debian 11 bullseye root (glibc 2.31, no Python).

The root is debootstrap's minbase as it came, plus /etc/hosts (a minbase root has none, and a real
system does); it is cached by ``owrelease.buildroot.ensure_pristine``. The chroot shares the host's
network namespace, so the binary reaches the host's PostgreSQL on 127.0.0.1.
"""

from __future__ import annotations

import subprocess
from pathlib import Path

import psycopg
import pytest
from conftest import Database
from owrelease import buildroot, runtimelock
from test_portability_buildroot import CACHE, frozen_openwatch_path

import openwatch

pytestmark = [pytest.mark.chroot, pytest.mark.slow, pytest.mark.pg]

ROOT = Path(__file__).resolve().parent.parent
IN_BIN = "/opt/owtest/bin"
IN_ETC = "/opt/owtest/etc"


@pytest.fixture(scope="module")
def bullseye() -> buildroot.BuildRoot:
    return buildroot.ensure_pristine(CACHE)


@pytest.fixture(scope="module")
def etc_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    d = tmp_path_factory.mktemp("owetc")
    (d / "openwatch.toml").write_text("")
    (d / "secrets.env").write_text("")
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes",
         "-days", "2", "-subj", "/CN=owtest", "-keyout", str(d / "key.pem"), "-out", str(d / "cert.pem")],
        check=True, capture_output=True,
    )  # fmt: skip
    return d


def run_in_bullseye(
    root: buildroot.BuildRoot, etc_dir: Path, *args: str, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    binary = frozen_openwatch_path()
    full_env = {
        "HOME": "/root",
        "LANG": "C.UTF-8",
        "OPENWATCH_SERVER_TLS_CERT": f"{IN_ETC}/cert.pem",
        "OPENWATCH_SERVER_TLS_KEY": f"{IN_ETC}/key.pem",
        **(env or {}),
    }
    return root.run(
        [f"{IN_BIN}/openwatch", *args],
        binds={binary.parent: f"{IN_BIN}:ro", etc_dir: f"{IN_ETC}:ro"},
        env=full_env,
        timeout=120,
    )


def iso() -> list[str]:
    return ["--config", f"{IN_ETC}/openwatch.toml", "--secrets", f"{IN_ETC}/secrets.env"]


def test_root_really_is_old_glibc_without_python(bullseye: buildroot.BuildRoot) -> None:
    res = bullseye.run(["/usr/bin/getconf", "GNU_LIBC_VERSION"], binds={}, env={})
    assert res.stdout.strip() == "glibc 2.31"
    assert not list((bullseye.path / "usr" / "bin").glob("python3*"))
    assert "localhost" in (bullseye.path / "etc" / "hosts").read_text()


def test_version(bullseye: buildroot.BuildRoot, etc_dir: Path) -> None:
    res = run_in_bullseye(bullseye, etc_dir, "--version")
    assert res.returncode == 0, res.stderr
    lines = res.stdout.splitlines()
    assert lines[0] == f"openwatch {openwatch.__version__}"
    n = len(list((ROOT / "migrations").glob("*.sql")))
    assert any(ln.split() == ["schema:", str(n), f"({n}", "migrations)"] for ln in lines), lines
    lock = runtimelock.load()
    # what the bundle runs on, recorded at freeze time: the lock's CPython and OpenSSL, psycopg's libpq
    assert any(ln.split() == ["python:", lock["python"].upstream_version] for ln in lines), lines
    assert any(ln.split() == ["openssl:", lock["openssl"].upstream_version] for ln in lines), lines
    assert any(ln.split()[:2] == ["psycopg:", psycopg.__version__] for ln in lines), lines
    libpq = psycopg.pq.version()
    assert any(ln.split() == ["libpq:", f"{libpq // 10000}.{libpq % 10000}"] for ln in lines), lines
    assert not list((bullseye.path / "tmp").glob("_MEI*"))  # unpacked and removed again


def test_check_config(bullseye: buildroot.BuildRoot, etc_dir: Path) -> None:
    dsn = "postgres://ow:secret-pw@127.0.0.1:5432/openwatch?sslmode=disable"
    res = run_in_bullseye(bullseye, etc_dir, "check-config", *iso(), env={"OPENWATCH_DATABASE_DSN": dsn})
    assert res.returncode == 0, res.stderr
    assert res.stdout.rstrip().endswith("config is valid")
    assert "secret-pw" not in res.stdout  # masked
    bad = run_in_bullseye(
        bullseye, etc_dir, "check-config", *iso(), env={"OPENWATCH_SERVER_TLS_KEY": "/nope"}
    )
    assert bad.returncode == 1
    assert all(ln.startswith("openwatch check-config: ") for ln in bad.stderr.splitlines()), bad.stderr


def test_migrate_list(bullseye: buildroot.BuildRoot, etc_dir: Path) -> None:
    res = run_in_bullseye(bullseye, etc_dir, "migrate", "list")
    assert res.returncode == 0, res.stderr
    files = sorted(p.name for p in (ROOT / "migrations").glob("*.sql"))
    rows = res.stdout.splitlines()
    assert [r.split()[1] for r in rows[:-1]] == files
    assert rows[-1] == f"{len(files)} migrations, schema version {int(files[-1].split('_')[0])}"


def test_root_has_no_system_libpq(bullseye: buildroot.BuildRoot) -> None:
    """So the migrate test below can only pass with the libpq bundled in the binary."""
    found = bullseye.run(
        ["/bin/sh", "-c", "find / -xdev -name 'libpq.so*' -o -name 'libpq-*.so*'"], check=True
    )
    assert found.stdout.split() == []
    assert not (bullseye.path / "var/lib/dpkg/info/libpq5:amd64.list").exists()


def test_migrate_against_host_postgres(
    bullseye: buildroot.BuildRoot, etc_dir: Path, fresh_db: Database
) -> None:
    db = fresh_db
    # PSYCOPG_IMPL=binary: psycopg must load the bundled psycopg_binary (and its libpq) or fail; it cannot
    # fall back to its ctypes implementation with a system libpq (there is none in this root anyway)
    env = {"OPENWATCH_DATABASE_DSN": db.dsn, "PSYCOPG_IMPL": "binary"}
    res = run_in_bullseye(bullseye, etc_dir, "migrate", *iso(), env=env)
    assert res.returncode == 0, res.stderr
    head = int(sorted(p.name for p in (ROOT / "migrations").glob("*.sql"))[-1].split("_")[0])
    with psycopg.connect(db.admin_dsn) as conn:
        applied = conn.execute("SELECT max(version_id) FROM goose_db_version WHERE is_applied").fetchone()
    assert applied == (head,)
    again = run_in_bullseye(bullseye, etc_dir, "migrate", *iso(), env=env)
    assert again.returncode == 0, again.stderr
    # by name through /etc/hosts, the way operators write DSNs
    by_name = run_in_bullseye(
        bullseye,
        etc_dir,
        "migrate",
        "status",
        *iso(),
        env={**env, "OPENWATCH_DATABASE_DSN": db.dsn.replace("127.0.0.1", "localhost")},
    )
    assert by_name.returncode == 0, by_name.stderr
