"""The operator's procedures (shared/spec/database-migration-guide.txt and the package's own notes),
run as written against a target (chroot or container)."""

from __future__ import annotations

import re
from pathlib import Path
from urllib.parse import quote, unquote, urlsplit

from owrelease import model as owmodel

from .checks import Target, host_psql
from .roots import run

GUIDE_VERSION_QUERY = "SELECT version_id, is_applied, tstamp FROM goose_db_version ORDER BY id DESC LIMIT 5;"
GUIDE_MAX_QUERY = "SELECT max(version_id) FROM goose_db_version WHERE is_applied;"
OPERATOR_MARK = "# edited by the operator (lifecycle test)"


def envfile_line(key: str, value: str) -> str:
    """``KEY="value"`` in systemd EnvironmentFile quoting: backslash before ``"``, ``\\`` and ``$``."""
    escaped = value.replace("\\", "\\\\").replace('"', '\\"').replace("$", "\\$")
    return f'{key}="{escaped}"'


def fill_secrets(t: Target, m: owmodel.Package, dsn: str) -> str:
    """Put the DSN into secrets.env the way an operator edits it: uncomment the template's line and
    fill it in, keeping the file (its inode, owner and mode) and every comment."""
    key = m.defaults["database"]["dsn_env"]
    path = t.file(m.by_id["secrets"].path)
    text = path.read_text()
    line = envfile_line(key, dsn)
    new, n = re.subn(rf"(?m)^#?\s*{key}=.*$", line, text, count=1)
    if n == 0 or new.count(line) != 1:
        new = text.rstrip("\n") + "\n" + line + "\n"
    if OPERATOR_MARK not in new:
        new += OPERATOR_MARK + "\n"
    with open(path, "r+") as fh:  # same inode: mode and owner stay what the package made them
        fh.write(new)
        fh.truncate()
    return new


def edit_config(t: Target, m: owmodel.Package) -> str:
    """The operator's edit of openwatch.toml: debug logging, with a comment saying so."""
    path = t.file(m.by_id["config"].path)
    text = path.read_text()
    new, n = re.subn(r'(?m)^level = "[a-z]+"$', 'level = "debug"  ' + OPERATOR_MARK, text, count=1)
    assert n == 1, f"no logging level line in {path}:\n{text}"
    with open(path, "r+") as fh:
        fh.write(new)
        fh.truncate()
    return new


STATE_TEXT = "written by the service\n"


def leave_state(t: Target, m: owmodel.Package) -> str:
    """A file in the state directory, written as the service user, as a running service would."""
    inner = m.by_id["state"].path + "/lifecycle-state"
    t.exec("/bin/sh", "-c", f"printf 'written by the service\\n' > {inner}", user=m.account.user)
    assert t.file(inner).read_text() == STATE_TEXT
    return inner


def masked(dsn: str) -> str:
    parts = urlsplit(dsn)
    user = parts.username or ""
    return dsn.replace(parts.netloc, f"{user}:***@{parts.hostname}:{parts.port}", 1)


def password_forms(dsn: str) -> list[str]:
    raw = urlsplit(dsn).password or ""
    return [p for p in {raw, unquote(raw), quote(unquote(raw), safe="")} if p]


def migrate(t: Target, m: owmodel.Package, dsn: str, head: int, *, binary_files: int | None = None) -> str:
    """``sudo -u openwatch openwatch migrate`` (the binary reads secrets.env itself) and the guide's
    output: the masked DSN, ``current version: N``, ``migration files: N``, one ``- NNNN_name.sql`` line
    per file, ``migrations applied``. No form of the password appears anywhere."""
    proc = t.exec("sudo", "-u", m.account.user, "openwatch", "migrate", check=False)
    assert proc.returncode == 0, f"migrate failed rc={proc.returncode}\n{proc.stdout}\n{proc.stderr}"
    lines = proc.stdout.splitlines()
    if lines and lines[0].startswith("backed up to "):
        # an upgrade (something pending on an existing schema): the backup, into the package's directory
        backups = m.by_id["backups"].path
        found = re.fullmatch(
            rf"backed up to ({re.escape(backups)}/openwatch_\S+\.dump) \(.+, [\d.]+ s\)", lines[0]
        )
        assert found, lines[0]
        owner = t.exec("stat", "-c", "%U:%G %a", found.group(1)).stdout.split()
        assert owner == [f"{m.account.user}:{m.account.group}", "600"], owner
        lines = lines[1:]
    assert lines[0] == f"applying migrations against {masked(dsn)} ...", lines[0]
    assert f"current version: {head}" in lines, proc.stdout
    files = binary_files if binary_files is not None else head
    assert f"migration files: {files}" in lines, proc.stdout
    listed = [x for x in lines if x.startswith("- ")]
    assert len(listed) == files and listed[0].startswith("- 0001_"), listed
    assert re.fullmatch(rf"- {head:04d}_\S+\.sql", listed[-1]), listed[-1]
    assert lines[-1] == "migrations applied", lines[-1]
    for secret in password_forms(dsn):
        assert secret not in proc.stdout + proc.stderr, "the password leaked into migrate's output"
    return proc.stdout


def check_config(t: Target, m: owmodel.Package, dsn: str) -> str:
    """``sudo -u openwatch openwatch check-config``: valid, the DSN shown masked, no form of the password."""
    proc = t.exec("sudo", "-u", m.account.user, "openwatch", "check-config", check=False)
    assert proc.returncode == 0 and "config is valid" in proc.stdout, proc
    assert masked(dsn) in proc.stdout, proc.stdout
    for secret in password_forms(dsn):
        assert secret not in proc.stdout + proc.stderr, "the password leaked into check-config's output"
    return proc.stdout


def schema_version(dsn: str) -> int | None:
    """The guide's check: the highest applied version_id (None: goose_db_version does not exist)."""
    exists = run(
        ["psql", dsn, "-Atc", "SELECT to_regclass('goose_db_version') IS NOT NULL"],
        env={"PATH": "/usr/bin:/bin"},
    ).stdout.strip()
    if exists != "t":
        return None
    table = host_psql(dsn, GUIDE_VERSION_QUERY)
    # " version_id | is_applied | tstamp" then a rule, then rows: the first row is the newest.
    row = table.splitlines()[2].split("|")
    assert row[1].strip() == "t", table
    top = int(row[0])
    maximum = host_psql(dsn, GUIDE_MAX_QUERY).splitlines()[2].strip()
    assert int(maximum) == top, (maximum, table)
    return top


def install_file(t: Target, fmt: str, inner: str, *extra: str) -> str:
    """Install one package file as an operator does: ``apt install ./x.deb`` or ``rpm -i``."""
    if fmt == "deb":
        d, name = inner.rsplit("/", 1)
        script = f"cd {d} && apt install -y --no-install-recommends {' '.join(extra)} ./{name}"
        return t.exec("/bin/sh", "-ec", script).stdout
    # --nodeps: the rpmdb of a Debian root is empty: it does not know the /bin/sh, useradd (shadow-utils),
    # glibc and openssl that dpkg installed, so every dependency looks missing although all are present
    # (the dnf scenario resolves them for real, with the fakesys package declaring them).
    return t.exec("rpm", "-i", "--nodeps", *extra, inner).stdout


def put_package(root_dir: Path, pkg: Path) -> str:
    inner = f"/root/pkgs/{pkg.name}"
    target = root_dir / inner.lstrip("/")
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_bytes(pkg.read_bytes())
    return inner
