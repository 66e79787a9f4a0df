"""The frozen binary carries ONE OpenSSL, and TLS works through it: to PostgreSQL (libpq) and for HTTPS.

psycopg-binary's libpq/libldap were pointed at our OpenSSL 3.0 in the build root
(``owrelease.buildroot.dedupe_openssl``); here the shipped binary (the ``release_build`` fixture) proves it:

* the bundle holds one ``libssl``/``libcrypto`` and every ``symbol@OPENSSL_x`` any bundled ELF imports
  is defined by them; the glibc gate still holds at 2.28;
* a throwaway cluster with ``ssl=on`` (a certificate from a test CA) and ``hostssl`` as its only
  ``pg_hba`` rule: ``openwatch migrate`` succeeds with ``sslmode=require`` and ``verify-full``, the server
  logs that the session was encrypted, a plain connection is refused, and ``verify-full`` against
  another CA fails with one line holding the masked DSN;
* ``openwatch serve`` (Python's ``ssl``) answers HTTPS health on that database over ``verify-full``.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import quote

import psycopg
import pytest
from conftest import ReleaseBuild
from owrelease import elfgate
from pgcluster import Cluster, throwaway_cluster
from test_serve_harness import ServeProcess, free_port, isolation_files, make_cert, serve_env

pytestmark = [pytest.mark.pg, pytest.mark.packages]

ROLE = "ow_tls"
PASSWORD = "Zq9 p&ss#'w0rd"
DB = "ow_tls_db"


@pytest.fixture(scope="module")
def frozen(release_build: ReleaseBuild) -> Path:
    path = Path(release_build.frozen.path)  # type: ignore[attr-defined]
    assert path.is_file() and os.access(path, os.X_OK)
    return path


def _bundle(binary: Path) -> dict[str, tuple[int, str]]:
    from PyInstaller.archive.readers import CArchiveReader

    reader = CArchiveReader(str(binary))
    return {name: (entry[2], entry[4]) for name, entry in reader.toc.items()}


def _openssl_members(binary: Path) -> list[str]:
    return sorted(
        name
        for name, (_size, kind) in _bundle(binary).items()
        if kind != "n" and re.match(r"lib(ssl|crypto)\b", name.rsplit("/", 1)[-1])
    )


# ------------------------------------------------------------------ the bundle


def test_one_openssl_in_the_bundle(frozen: Path) -> None:
    members = _openssl_members(frozen)
    assert members == ["libcrypto.so.3", "libssl.so.3"], members
    names = _bundle(frozen)
    assert [n for n in names if n.startswith("psycopg_binary.libs/libpq-")], sorted(names)
    assert not [n for n in names if re.search(r"lib(ssl|crypto)-[0-9a-f]+\.so", n)]
    print(f"{frozen}: {frozen.stat().st_size:,} bytes; OpenSSL members {members}")


def _dyn_syms(path: Path) -> tuple[set[str], set[str]]:
    """(defined, imported) ``name@OPENSSL_x`` of one ELF, from readelf."""
    out = subprocess.run(["readelf", "-W", "--dyn-syms", str(path)], capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    defined: set[str] = set()
    imported: set[str] = set()
    for line in out.stdout.splitlines():
        m = re.match(r"\s*\d+:\s+\S+\s+\d+\s+\w+\s+\w+\s+\w+\s+(\w+)\s+([^@\s]+)@@?(OPENSSL_[0-9.]+)", line)
        if m:
            (imported if m.group(1) == "UND" else defined).add(f"{m.group(2)}@{m.group(3)}")
    return defined, imported


def test_every_openssl_import_is_defined_by_the_bundled_openssl(frozen: Path, tmp_path: Path) -> None:
    from PyInstaller.archive.readers import CArchiveReader

    reader = CArchiveReader(str(frozen))
    files: dict[str, Path] = {}
    for name, entry in reader.toc.items():
        if entry[4] not in ("b", "x") and ".so" not in name:
            continue
        data = reader.extract(name)
        if data is None or data[:4] != b"\x7fELF":
            continue
        dest = tmp_path / name.replace("/", "__")
        dest.write_bytes(data)
        files[name] = dest
    defined: set[str] = set()
    for name in ("libssl.so.3", "libcrypto.so.3"):
        defined |= _dyn_syms(files[name])[0]
    assert "SSL_read@OPENSSL_3.0.0" in defined
    # ours is the 3.5 LTS (the lock's), the branch psycopg-binary's own copy came from
    assert [s for s in defined if s.endswith("@OPENSSL_3.5.0")]
    users = {}
    for name, path in files.items():
        if name in ("libssl.so.3", "libcrypto.so.3"):
            continue
        imported = _dyn_syms(path)[1]
        if imported:
            users[name] = imported
            assert imported <= defined, (name, sorted(imported - defined)[:10])
    assert any(n.startswith("psycopg_binary.libs/libpq-") for n in users), sorted(users)
    assert any("_ssl.cpython" in n for n in users), sorted(users)
    print("OpenSSL users:", *(f"{n} ({len(s)} symbols)" for n, s in sorted(users.items())), sep="\n  ")


def test_glibc_gate_still_holds(frozen: Path) -> None:
    elfgate.check(frozen, "2.28")
    assert elfgate.parse_version(elfgate.measure_floor(frozen)) <= (2, 28)


# ------------------------------------------------------------------ a TLS-only PostgreSQL


@dataclass(frozen=True)
class TlsPg:
    cluster: Cluster
    ca: Path
    wrong_ca: Path
    home: Path  # an empty HOME: no ~/.postgresql/root.crt changes what sslmode=require does

    def dsn(self, sslmode: str, rootcert: Path | None = None, db: str = DB) -> str:
        userinfo = f"{ROLE}:{quote(PASSWORD, safe='')}"
        dsn = f"postgres://{userinfo}@127.0.0.1:{self.cluster.port}/{db}?sslmode={sslmode}"
        return dsn + (f"&sslrootcert={rootcert}" if rootcert else "")

    def admin(self, db: str = "postgres") -> psycopg.Connection:
        return psycopg.connect(
            self.cluster.admin_dsn(db) + "?sslmode=require", autocommit=True, connect_timeout=5
        )


def _openssl(*args: str) -> None:
    res = subprocess.run(["openssl", *args], capture_output=True, text=True)
    assert res.returncode == 0, res.stderr


def _make_ca(d: Path, name: str) -> tuple[Path, Path]:
    cert, key = d / f"{name}.crt", d / f"{name}.key"
    _openssl("req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes",
             "-days", "2", "-subj", f"/CN={name}", "-addext", "basicConstraints=critical,CA:TRUE",
             "-addext", "keyUsage=critical,keyCertSign,cRLSign",
             "-keyout", str(key), "-out", str(cert))  # fmt: skip
    return cert, key


def _make_server_cert(d: Path, ca: Path, ca_key: Path) -> tuple[Path, Path]:
    cert, key, csr, ext = d / "server.crt", d / "server.key", d / "server.csr", d / "server.ext"
    _openssl("req", "-new", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes",
             "-subj", "/CN=localhost", "-keyout", str(key), "-out", str(csr))  # fmt: skip
    ext.write_text("subjectAltName=IP:127.0.0.1,DNS:localhost\nextendedKeyUsage=serverAuth\n")
    _openssl("x509", "-req", "-in", str(csr), "-CA", str(ca), "-CAkey", str(ca_key), "-CAcreateserial",
             "-days", "2", "-extfile", str(ext), "-out", str(cert))  # fmt: skip
    return cert, key


@pytest.fixture(scope="module")
def tls_pg() -> Iterator[TlsPg]:
    certs = Path(tempfile.mkdtemp(prefix="ow-tls-certs-"))
    try:
        ca, ca_key = _make_ca(certs, "openwatch-test-ca")
        wrong_ca, _ = _make_ca(certs, "another-ca")
        with throwaway_cluster() as cluster:
            cert, key = _make_server_cert(certs, ca, ca_key)
            for src in (cert, key):
                dst = cluster.datadir / src.name
                shutil.copy(src, dst)
                shutil.chown(dst, "postgres", "postgres")
                dst.chmod(0o600)
            with (cluster.datadir / "postgresql.conf").open("a") as conf:
                conf.write(
                    "ssl = on\nssl_cert_file = 'server.crt'\nssl_key_file = 'server.key'\n"
                    "log_connections = on\n"
                )
            (cluster.datadir / "pg_hba.conf").write_text("hostssl all all 127.0.0.1/32 scram-sha-256\n")
            cluster.stop()
            cluster.start()
            home = certs / "home"
            home.mkdir()
            pg = TlsPg(cluster=cluster, ca=ca, wrong_ca=wrong_ca, home=home)
            with pg.admin() as conn:
                conn.execute(f"CREATE ROLE {ROLE} LOGIN PASSWORD '{PASSWORD.replace(chr(39), chr(39) * 2)}'")
                conn.execute(f"CREATE DATABASE {DB} OWNER {ROLE}")
            yield pg
    finally:
        shutil.rmtree(certs, ignore_errors=True)


def _env(pg: TlsPg, dsn: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("OPENWATCH_", "PG"))}
    env.update({"HOME": str(pg.home), "OPENWATCH_DATABASE_DSN": dsn})
    return env


def _migrate(frozen: Path, pg: TlsPg, dsn: str, tmp: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(frozen), "migrate", *isolation_files(tmp)],
        env=_env(pg, dsn),
        capture_output=True,
        text=True,
        timeout=120,
    )


def _head(release_build: ReleaseBuild) -> int:
    return max(int(p.name.split("_", 1)[0]) for p in (release_build.src / "migrations").glob("*.sql"))


def _applied(pg: TlsPg, db: str) -> int:
    with pg.admin(db) as conn:
        row = conn.execute("SELECT max(version_id) FROM goose_db_version").fetchone()
    assert row is not None
    return int(row[0])


def _new_db(pg: TlsPg, name: str) -> str:
    with pg.admin() as conn:
        conn.execute(f"CREATE DATABASE {name} OWNER {ROLE}")
    return name


def test_the_cluster_refuses_plain_connections(tls_pg: TlsPg, frozen: Path, tmp_path: Path) -> None:
    res = _migrate(frozen, tls_pg, tls_pg.dsn("disable"), tmp_path)
    assert res.returncode == 1, res.stdout + res.stderr
    assert "no encryption" in res.stderr, res.stderr
    assert PASSWORD not in res.stderr and quote(PASSWORD, safe="") not in res.stderr


@pytest.mark.parametrize("mode", ["require", "verify-full"])
def test_migrate_over_tls(
    tls_pg: TlsPg, frozen: Path, release_build: ReleaseBuild, tmp_path: Path, mode: str
) -> None:
    db = _new_db(tls_pg, f"ow_tls_{mode.replace('-', '_')}")
    dsn = tls_pg.dsn(mode, tls_pg.ca if mode == "verify-full" else None, db=db)
    log_before = tls_pg.cluster.logfile.read_text()
    res = _migrate(frozen, tls_pg, dsn, tmp_path)
    assert res.returncode == 0, res.stdout + res.stderr
    assert _applied(tls_pg, db) == _head(release_build)
    again = _migrate(frozen, tls_pg, dsn, tmp_path)
    assert again.returncode == 0, again.stderr
    # the server saw our user's sessions encrypted (log_connections), with TLS 1.3
    new = tls_pg.cluster.logfile.read_text()[len(log_before) :]
    authorized = [ln for ln in new.splitlines() if f"user={ROLE} database={db}" in ln and "authorized" in ln]
    assert authorized, new[-2000:]
    assert all("SSL enabled (protocol=TLSv1.3" in ln for ln in authorized), authorized


def test_verify_full_against_another_ca_fails_in_one_line(
    tls_pg: TlsPg, frozen: Path, tmp_path: Path
) -> None:
    dsn = tls_pg.dsn("verify-full", tls_pg.wrong_ca)
    res = _migrate(frozen, tls_pg, dsn, tmp_path)
    assert res.returncode == 1, res.stdout + res.stderr
    lines = res.stderr.splitlines()
    assert len(lines) == 1, res.stderr
    line = lines[0]
    print(line)
    assert line.startswith("openwatch migrate: "), line
    assert "certificate verify failed" in line, line
    assert f"{ROLE}:***@127.0.0.1:{tls_pg.cluster.port}/{DB}" in line, line
    assert PASSWORD not in res.stderr + res.stdout and quote(PASSWORD, safe="") not in res.stderr


def test_serve_https_on_a_tls_database(tls_pg: TlsPg, frozen: Path, tmp_path: Path) -> None:
    """Python's ssl (HTTPS) and libpq's TLS (verify-full) in one process, both on the one OpenSSL."""
    db = _new_db(tls_pg, "ow_tls_serve")
    dsn = tls_pg.dsn("verify-full", tls_pg.ca, db=db)
    assert _migrate(frozen, tls_pg, dsn, tmp_path).returncode == 0
    iso = isolation_files(tmp_path / "iso")
    cert, key = make_cert(tmp_path / "https")
    port = free_port()
    env = serve_env(dsn, port, cert, key, HOME=str(tls_pg.home))
    check = subprocess.run(
        [str(frozen), "check-config", *iso],
        env={k: v for k, v in _env(tls_pg, dsn).items() if not k.startswith("OPENWATCH_")} | env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert check.returncode == 0, check.stdout + check.stderr
    server = ServeProcess([str(frozen), "serve", *iso], env, port, cert)
    try:
        server.start(ready_timeout=60)
        health = server.request("GET", "/api/v1/health")
        assert health.status == 200, health.raw
        body = health.json()
        assert body["db_connected"] is True and body["status"] == "healthy", body
        assert body["schema"]["current"] == body["schema"]["expected"], body
        conn = server.connection()
        conn.connect()
        assert conn.sock is not None
        print("HTTPS:", conn.sock.version(), conn.sock.cipher())  # type: ignore[attr-defined]
        conn.close()
    finally:
        server.kill()


def _migrate_with_system_cas(
    frozen: Path, pg: TlsPg, dsn: str, tmp: Path, bundle: Path | None
) -> subprocess.CompletedProcess[str]:
    """migrate in a private mount namespace where ``bundle`` stands in for the distribution's CA bundle."""
    script = 'if [ -n "$1" ]; then mount --bind "$1" "$2"; fi; shift 2; exec "$@"'
    argv = ["unshare", "-m", "--propagation", "private", "sh", "-c", script, "sh", str(bundle or ""),
            "/etc/ssl/certs/ca-certificates.crt", str(frozen), "migrate", *isolation_files(tmp)]  # fmt: skip
    return subprocess.run(argv, env=_env(pg, dsn), capture_output=True, text=True, timeout=120)


def test_sslrootcert_system_trusts_the_hosts_ca_bundle(tls_pg: TlsPg, frozen: Path, tmp_path: Path) -> None:
    """The bundled OpenSSL's compiled-in CA paths exist on no host; openwatch.runtime points it at the
    distribution's bundle, so libpq's ``sslrootcert=system`` trusts what the host trusts, and only that."""
    assert Path("/etc/ssl/certs/ca-certificates.crt").is_file()
    db = _new_db(tls_pg, "ow_tls_system")
    dsn = tls_pg.dsn("verify-full", db=db) + "&sslrootcert=system"
    # the host's real bundle does not hold the test CA: refused in one line, the password masked
    refused = _migrate_with_system_cas(frozen, tls_pg, dsn, tmp_path, None)
    assert refused.returncode == 1, refused.stdout + refused.stderr
    assert "certificate verify failed" in refused.stderr, refused.stderr
    assert len(refused.stderr.strip().splitlines()) == 1, refused.stderr
    assert PASSWORD not in refused.stderr and quote(PASSWORD, safe="") not in refused.stderr
    # a host whose bundle holds the test CA: trusted
    trusted = _migrate_with_system_cas(frozen, tls_pg, dsn, tmp_path, tls_pg.ca)
    assert trusted.returncode == 0, trusted.stdout + trusted.stderr
    assert _applied(tls_pg, db) > 0
