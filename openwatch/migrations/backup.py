"""The backup ``openwatch migrate`` takes before it changes a schema: pg_dump, custom format, verified.

What the migration guide tells operators to do by hand (``pg_dump --format=custom`` before migrating,
``pg_restore`` to go back), done for them, without the guide's pitfalls:

* the password never reaches pg_dump's argv or environment (``pg_dump "$OPENWATCH_DATABASE_DSN"``
  shows it in the process list): pg_dump gets the DSN's parameters *without* the password as a conninfo
  on its command line, and the password the migration's connection used (from the DSN, PGPASSWORD or
  .pgpass alike) through ``PGPASSFILE``, pointing at a 0600 memfd inherited by pg_dump alone. That
  passfile never exists on any disk, and vanishes with the processes, even if they are killed.
  ``PGPASSWORD`` and every ``OPENWATCH_*`` variable are removed from pg_dump's environment; the
  other ``PG*`` variables stay, as they shaped the migration's connection, so the dump is of the
  database being migrated;
* the pg_dump used is the newest one installed (Debian's ``/usr/lib/postgresql/N/bin``, PGDG's
  ``/usr/pgsql-N/bin``, then ``$PATH``), and one older than the server is refused before anything runs:
  pg_dump cannot dump a newer server;
* the dump is written under a temporary name in the backup directory, fsynced, checked with
  ``pg_restore --list``, and only then renamed to its final name (directory fsynced): a partial or
  unreadable dump never carries the final name. The file is 0600, the directory 0700, owned by the user
  running migrate;
* only the newest ``keep`` dumps are kept, never counting out the one just written.

Every failure is a BackupError whose ``str()`` is one line.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import glob
import os
import re
import shutil
import stat
import subprocess
import tempfile
import time
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path

# What an operator runs to go back, with the DSN as a variable: a restore command must never carry it.
DSN_VARIABLE = "OPENWATCH_DATABASE_DSN"
NAME = re.compile(r"^openwatch_(?P<from>\d+)-(?P<to>\d+)_(?P<ts>\d{8}T\d{6}Z)(?:-(?P<n>\d+))?\.dump\Z")
# where distributions put each major's client binaries (Debian/Ubuntu, then PGDG's RPMs)
BINDIR_GLOBS = ("/usr/lib/postgresql/*/bin", "/usr/pgsql-*/bin")
_VERSION = re.compile(r"\(PostgreSQL\)\s+(?P<major>\d+)(?:\.(?P<minor>\d+))?")


class BackupError(Exception):
    """The backup cannot be taken; ``str()`` is the one line to print (the CLI adds the prefix)."""


@dataclass(frozen=True)
class Settings:
    """What the configuration and the flags ask for."""

    directory: Path | None  # None: no [backup] dir and no --backup-dir
    keep: int
    pg_bindir: str | None
    disabled: bool  # --no-backup


@dataclass(frozen=True)
class Tools:
    pg_dump: Path
    pg_restore: Path
    version: str  # "15.18"
    major: int


@dataclass(frozen=True)
class Result:
    path: Path
    size: int
    seconds: float
    removed: tuple[Path, ...]

    def line(self) -> str:
        return f"backed up to {self.path} ({human_size(self.size)}, {self.seconds:.1f} s)"


def human_size(n: int) -> str:
    value = float(n)
    for unit in ("B", "KiB", "MiB", "GiB"):
        if value < 1024 or unit == "GiB":
            return f"{n} B" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1024
    raise AssertionError("unreachable")


def install_hint(major: int) -> str:
    return (
        f"install postgresql-client-{major} (Debian, Ubuntu) or postgresql{major} (RHEL and PGDG RPMs), "
        "or pass --no-backup to migrate without a backup"
    )


def restore_command(path: Path) -> str:
    """The command that puts the database back as the dump has it; the DSN stays a variable."""
    return f'pg_restore --clean --if-exists --single-transaction -d "${DSN_VARIABLE}" {path}'


def clean_restore_command(path: Path) -> str:
    """Empty the database of the DSN role's objects, then restore: exact whatever the run left.

    The database is the role's (it ran every migration), so DROP OWNED removes precisely the schema
    the migrations made. The restore runs only if that succeeded, and is one transaction itself.
    """
    return (
        f'psql -X -q -v ON_ERROR_STOP=1 -d "${DSN_VARIABLE}" -c "DROP OWNED BY CURRENT_USER" && '
        f'pg_restore --exit-on-error --single-transaction -d "${DSN_VARIABLE}" {path}'
    )


# --------------------------------------------------------------------------------------------------
# the client programs


def _tool_version(pg_dump: Path) -> tuple[int, int, str] | None:
    try:
        out = subprocess.run(
            [str(pg_dump), "--version"],
            capture_output=True,
            text=True,
            timeout=30,
            check=False,
            env=_child_env(None),
        )
    except OSError:
        return None
    m = _VERSION.search(out.stdout)
    if out.returncode != 0 or not m:
        return None
    major, minor = int(m.group("major")), int(m.group("minor") or 0)
    return major, minor, f"{major}.{minor}"


def candidates(bindir: str | None) -> list[Path]:
    """The pg_dump programs to consider: only ``bindir``'s when one is configured."""
    if bindir:
        return [Path(bindir) / "pg_dump"]
    found = [Path(d) / "pg_dump" for pattern in BINDIR_GLOBS for d in sorted(glob.glob(pattern))]
    on_path = shutil.which("pg_dump")
    if on_path:
        found.append(Path(on_path))
    return [p for p in found if p.is_file() and os.access(p, os.X_OK)]


def find_tools(server_major: int, server_version: str, bindir: str | None) -> Tools:
    """The newest usable pg_dump (and the pg_restore beside it); refuses a missing or too old one."""
    best: tuple[int, int, str, Path] | None = None
    for pg_dump in candidates(bindir):
        v = _tool_version(pg_dump)
        if v is not None and (best is None or v[:2] > best[:2]):
            best = (*v, pg_dump)
    where = f" in {bindir} ([backup] pg_bindir)" if bindir else ""
    if best is None:
        raise BackupError(
            f"cannot back up before migrating: no pg_dump found{where}; {install_hint(server_major)}"
        )
    major, _, version, pg_dump = best
    if major < server_major:
        raise BackupError(
            f"cannot back up before migrating: pg_dump {version} ({pg_dump}) is older than the server "
            f"(PostgreSQL {server_version}) and cannot dump it; {install_hint(server_major)}"
        )
    pg_restore = pg_dump.with_name("pg_restore")
    if not (pg_restore.is_file() and os.access(pg_restore, os.X_OK)):
        raise BackupError(
            f"cannot back up before migrating: {pg_restore} (to verify the dump) is missing beside "
            f"{pg_dump}; {install_hint(server_major)}"
        )
    return Tools(pg_dump=pg_dump, pg_restore=pg_restore, version=version, major=major)


# --------------------------------------------------------------------------------------------------
# the directory and the retention


def prepare_dir(directory: Path) -> None:
    """Create the directory 0700 (parents too); refuse an existing one others can enter or read."""
    try:
        directory.mkdir(mode=0o700, parents=True, exist_ok=True)
        st = directory.stat()
    except OSError as exc:
        raise BackupError(f"backup directory {directory}: {exc.strerror or exc}") from None
    if not stat.S_ISDIR(st.st_mode):
        raise BackupError(f"backup directory {directory} is not a directory")
    if st.st_mode & 0o077:
        raise BackupError(
            f"backup directory {directory} is open to other users (mode {stat.S_IMODE(st.st_mode):04o}): "
            f"a dump holds every secret in the database; chmod 0700 {directory}"
        )
    if not os.access(directory, os.W_OK | os.X_OK):
        raise BackupError(f"backup directory {directory} is not writable by this user (uid {os.getuid()})")


def dumps_in(directory: Path) -> list[Path]:
    """Our dumps in ``directory``, newest first (by the UTC time in the name, then the counter)."""

    def key(p: Path) -> tuple[str, int]:
        m = NAME.match(p.name)
        assert m is not None
        return m.group("ts"), int(m.group("n") or 1)

    return sorted(
        (p for p in directory.iterdir() if NAME.match(p.name) and p.is_file()), key=key, reverse=True
    )


def prune(directory: Path, keep: int, just_written: Path) -> tuple[Path, ...]:
    """Remove all but the newest ``keep`` dumps; the one just written always stays."""
    kept = [just_written]
    removed = []
    for p in dumps_in(directory):
        if p == just_written:
            continue
        if len(kept) < keep:
            kept.append(p)
            continue
        with contextlib.suppress(FileNotFoundError):
            p.unlink()
            removed.append(p)
    return tuple(removed)


# --------------------------------------------------------------------------------------------------
# the dump


def _conninfo(params: Mapping[str, str]) -> str:
    """libpq key=value conninfo (quoted as libpq parses it); never given a password."""

    def quote(v: str) -> str:
        return "'" + v.replace("\\", "\\\\").replace("'", "\\'") + "'"

    return " ".join(f"{k}={quote(v)}" for k, v in params.items() if k not in ("password", "passfile"))


def _passfile_line(password: str) -> str:
    """One .pgpass entry matching any host, port, database and user (only pg_dump reads it)."""
    return "*:*:*:*:" + password.replace("\\", "\\\\").replace(":", "\\:") + "\n"


# libpq's password sources: only our passfile may supply it
_PASSWORD_VARS = ("PGPASSWORD", "PGPASSFILE")


def _child_env(passfile: str | None) -> dict[str, str]:
    # OPENWATCH_DATABASE_DSN (and any other OPENWATCH_* setting) may carry the password too
    env = {k: v for k, v in os.environ.items() if k not in _PASSWORD_VARS and not k.startswith("OPENWATCH_")}
    if passfile:
        env["PGPASSFILE"] = passfile
    return env


@contextlib.contextmanager
def _memfd_passfile(password: str | None) -> Iterator[tuple[str | None, tuple[int, ...]]]:
    """(PGPASSFILE value, fds to pass): an anonymous 0600 file holding the password, for the child."""
    if not password:
        yield None, ()
        return
    fd = os.memfd_create("openwatch-pgpass", 0)  # no MFD_CLOEXEC: pass_fds keeps it for pg_dump only
    try:
        os.fchmod(fd, 0o600)
        os.write(fd, _passfile_line(password).encode())
        yield f"/proc/self/fd/{fd}", (fd,)
    finally:
        os.close(fd)


def _fsync_dir(directory: Path) -> None:
    fd = os.open(directory, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _final_name(directory: Path, from_version: int, to_version: int, when: dt.datetime) -> Path:
    base = f"openwatch_{from_version:04d}-{to_version:04d}_{when.strftime('%Y%m%dT%H%M%SZ')}"
    path = directory / f"{base}.dump"
    n = 2
    while path.exists():
        path = directory / f"{base}-{n}.dump"
        n += 1
    return path


def _one_line(text: str) -> str:
    return "; ".join(line.strip() for line in text.strip().splitlines() if line.strip())


def _verify(tools: Tools, dump: Path, timeout: float) -> None:
    r = subprocess.run(
        [str(tools.pg_restore), "--list", str(dump)],
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
        env=_child_env(None),
    )
    entries = [line for line in r.stdout.splitlines() if line and not line.startswith(";")]
    if r.returncode != 0 or not any(" TABLE DATA " in e and "goose_db_version" in e for e in entries):
        reason = (
            _one_line(r.stderr)
            or f"its table of contents lists no goose_db_version data ({len(entries)} entries)"
        )
        raise BackupError(f"the dump failed verification (pg_restore --list): {reason}; nothing was migrated")


def take(
    *,
    tools: Tools,
    params: Mapping[str, str],
    password: str | None,
    directory: Path,
    from_version: int,
    to_version: int,
    keep: int,
    lock_timeout: float,
) -> Result:
    """Dump, verify, publish under the final name, prune; BackupError (one line) on any failure."""
    started = time.monotonic()
    prepare_dir(directory)
    when = dt.datetime.now(dt.UTC)
    stem = f".openwatch_{from_version:04d}-{to_version:04d}_{when.strftime('%Y%m%dT%H%M%SZ')}."
    try:
        fd, tmp_name = tempfile.mkstemp(prefix=stem, suffix=".partial", dir=directory)  # 0600
    except OSError as exc:
        raise BackupError(f"backup directory {directory}: {exc.strerror or exc}") from None
    os.close(fd)
    tmp = Path(tmp_name)
    try:
        with _memfd_passfile(password) as (passfile, fds):
            cmd = [
                str(tools.pg_dump),
                "--format=custom",
                "--no-password",
                f"--lock-wait-timeout={max(1, int(lock_timeout * 1000))}",
                f"--file={tmp}",
                f"--dbname={_conninfo(params)}",
            ]
            r = subprocess.run(
                cmd, capture_output=True, text=True, check=False, env=_child_env(passfile), pass_fds=fds
            )
        if r.returncode != 0:
            raise BackupError(
                f"pg_dump {tools.version} failed ({r.returncode}): {_one_line(r.stderr) or 'no message'}; "
                "nothing was migrated"
            )
        with open(tmp, "rb") as fh:
            os.fsync(fh.fileno())
        _verify(tools, tmp, timeout=max(60.0, lock_timeout))
        final = _final_name(directory, from_version, to_version, when)
        os.rename(tmp, final)
        _fsync_dir(directory)
    except BaseException:
        with contextlib.suppress(OSError):
            tmp.unlink()
        raise
    size = final.stat().st_size
    removed = prune(directory, keep, final)
    return Result(path=final, size=size, seconds=time.monotonic() - started, removed=removed)
