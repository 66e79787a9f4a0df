"""The release signing key, taken from the environment only, and every gpg/rpmsign invocation made with it.

    GNUPGHOME                           the keyring holding the secret key (gpg's own variable)
    OWRELEASE_SIGNING_KEY               the key's fingerprint (what ``gpg -u`` and rpm's ``%_gpg_name`` get)
    OWRELEASE_SIGNING_PASSPHRASE_FILE   only for a key with a passphrase

The passphrase is read from its file into memory and handed to each gpg on a pipe (``--passphrase-fd``
with ``--pinentry-mode loopback``): it never reaches argv, a log or a file of ours. rpmsign runs gpg itself;
the pipe's read end is inherited through it and named in ``%_gpg_sign_cmd_extra_args``. gpg-agent caches
a passphrase after one good use, so the agent of GNUPGHOME is stopped before signing (a stale cache must
not make a wrong passphrase work) and after it (``Signer`` is a context manager).

Signatures carry their creation time. For the same key and commit to give the same bytes, gpg runs with
``--faked-system-time T!`` where T is SOURCE_DATE_EPOCH, raised to the key's creation time when the key is
younger than the commit (gpg refuses to sign "before" its key exists: ``Unusable secret key``).
"""

from __future__ import annotations

import contextlib
import os
import re
import shutil
import stat
import subprocess
import tempfile
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType

__all__ = [
    "HOME_VAR",
    "KEY_ARMORED",
    "KEY_BINARY",
    "KEY_VAR",
    "PASSPHRASE_VAR",
    "Signer",
    "SigningError",
    "SigningKey",
    "gpgv_problem",
    "key_from_env",
    "rpm_signature_problem",
]

HOME_VAR = "GNUPGHOME"
KEY_VAR = "OWRELEASE_SIGNING_KEY"
PASSPHRASE_VAR = "OWRELEASE_SIGNING_PASSPHRASE_FILE"
KEY_ARMORED = "RPM-GPG-KEY-openwatch"  # rpm --import, dnf gpgkey=
KEY_BINARY = "openwatch-archive-keyring.gpg"  # apt Signed-By, gpgv --keyring (gpgv 2.2 rejects armor)
_FPR = re.compile(r"^(?:[0-9A-F]{40}|[0-9A-F]{64})$")
_ENV = {"LC_ALL": "C", "TZ": "UTC", "PATH": "/usr/local/bin:/usr/bin:/bin:/usr/sbin:/sbin"}


class SigningError(RuntimeError):
    """One line naming what is missing or what refused: the variable, the key, the file."""


@dataclass(frozen=True)
class SigningKey:
    home: Path
    fingerprint: str
    passphrase_file: Path | None


def key_from_env(env: Mapping[str, str] | None = None) -> SigningKey:
    """The key the environment names; SigningError (one line, naming the variable) when it does not."""
    env = os.environ if env is None else env
    missing = [v for v in (HOME_VAR, KEY_VAR) if not env.get(v)]
    if missing:
        raise SigningError(
            f"{' and '.join(missing)} not set: the signing key comes from the environment only "
            f"({HOME_VAR}=keyring directory, {KEY_VAR}=fingerprint, {PASSPHRASE_VAR}=passphrase file if any)"
        )
    home = Path(env[HOME_VAR])
    if not home.is_dir():
        raise SigningError(f"{HOME_VAR}={home}: not a directory")
    fpr = env[KEY_VAR].replace(" ", "").upper()
    if not _FPR.match(fpr):
        raise SigningError(f"{KEY_VAR}={env[KEY_VAR]!r}: not a full fingerprint (40 or 64 hex digits)")
    pass_file: Path | None = None
    if env.get(PASSPHRASE_VAR):
        pass_file = Path(env[PASSPHRASE_VAR])
        try:
            mode = pass_file.stat().st_mode
        except OSError as exc:
            raise SigningError(f"{PASSPHRASE_VAR}={pass_file}: {exc.strerror}") from None
        if not stat.S_ISREG(mode):
            raise SigningError(f"{PASSPHRASE_VAR}={pass_file}: not a regular file")
        if mode & 0o007:
            raise SigningError(
                f"{PASSPHRASE_VAR}={pass_file}: mode {stat.S_IMODE(mode):04o} "
                "lets everyone read it: chmod o= it"
            )
    return SigningKey(home=home, fingerprint=fpr, passphrase_file=pass_file)


def _last_gpg_line(stderr: str) -> str:
    lines = [ln.strip() for ln in stderr.splitlines() if ln.strip().startswith(("gpg:", "error:"))]
    useful = [ln for ln in lines if "WARNING: running with faked system time" not in ln]
    # gpg's own reason beats rpm's "error: gpg exec failed (2)"
    useful = [ln for ln in useful if ln.startswith("gpg:")] or useful
    return useful[-1] if useful else (stderr.strip().splitlines() or ["no output"])[-1]


class Signer:
    """gpg and rpmsign runs with one key; ``with Signer(key, epoch) as s:`` stops gpg-agent on both ends."""

    def __init__(self, key: SigningKey, epoch: int | None) -> None:
        self.key = key
        self._passphrase: bytes | None = None
        if key.passphrase_file is not None:
            try:
                self._passphrase = key.passphrase_file.read_bytes().splitlines()[0]
            except (OSError, IndexError):
                raise SigningError(f"{PASSPHRASE_VAR}={key.passphrase_file}: empty or unreadable") from None
        self.created = self._key_created()
        # None: the real clock (repository metadata says when it was published)
        self.sig_time = None if epoch is None else max(epoch, self.created)

    # -- lifetime -------------------------------------------------------------------------------------

    def __enter__(self) -> Signer:
        self.stop_agent()
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop_agent()

    def stop_agent(self) -> None:
        subprocess.run(
            ["gpgconf", "--homedir", str(self.key.home), "--kill", "gpg-agent"],
            env=self._env(),
            capture_output=True,
            check=False,
        )

    # -- plumbing -------------------------------------------------------------------------------------

    def _env(self) -> dict[str, str]:
        return {**_ENV, HOME_VAR: str(self.key.home)}

    def _gpg(self, *args: str, sign: bool = False, what: str = "") -> subprocess.CompletedProcess[bytes]:
        argv = ["gpg", "--batch", "--no-tty", "--quiet", "--homedir", str(self.key.home)]
        if sign:
            argv += ["--yes", "--pinentry-mode", "loopback", "--local-user", self.key.fingerprint]
            argv += ["--digest-algo", "SHA512"]
            if self.sig_time is not None:
                argv += ["--faked-system-time", f"{self.sig_time}!"]
        what = what or " ".join(args[-1:])
        with self._passphrase_pipe(sign) as fd:
            pass_arg = ["--passphrase-fd", str(fd)] if fd is not None else []
            proc = self._run([*argv, *pass_arg, *args], fd)
        if proc.returncode != 0:
            raise SigningError(
                f"gpg could not {what} with {self.key.fingerprint} in {HOME_VAR}={self.key.home}: "
                f"{_last_gpg_line(proc.stderr.decode(errors='replace'))}"
            )
        return proc

    @contextlib.contextmanager
    def _passphrase_pipe(self, wanted: bool) -> Iterator[int | None]:
        """The passphrase on the read end of a pipe, for ``--passphrase-fd`` (never argv, the
        environment or a file); None when not signing or the key has no passphrase."""
        if not wanted or self._passphrase is None:
            yield None
            return
        rfd, wfd = os.pipe()
        try:
            # a passphrase is far below the pipe's buffer: written whole before gpg starts, then closed
            os.write(wfd, self._passphrase + b"\n")
        finally:
            os.close(wfd)
        try:
            yield rfd
        finally:
            os.close(rfd)

    def _run(self, argv: list[str], fd: int | None) -> subprocess.CompletedProcess[bytes]:
        return subprocess.run(
            argv, env=self._env(), capture_output=True, stdin=subprocess.DEVNULL,
            pass_fds=() if fd is None else (fd,), check=False,
        )  # fmt: skip

    def _key_created(self) -> int:
        """Creation time of the newest part (primary or subkey) of the secret key; checks it exists."""
        proc = subprocess.run(
            ["gpg", "--batch", "--homedir", str(self.key.home), "--with-colons", "--list-secret-keys",
             "--", self.key.fingerprint],
            env=self._env(), capture_output=True, text=True, check=False,
        )  # fmt: skip
        times = [
            int(f[5]) for f in (ln.split(":") for ln in proc.stdout.splitlines()) if f[0] in ("sec", "ssb")
        ]
        if proc.returncode != 0 or not times:
            raise SigningError(
                f"{KEY_VAR}={self.key.fingerprint}: no such secret key in {HOME_VAR}={self.key.home}"
            )
        return max(times)

    # -- what releases need ---------------------------------------------------------------------------

    def export(self, armored: bool) -> bytes:
        args = ["--export-options", "export-minimal", "--export", self.key.fingerprint]
        return self._gpg(*(["--armor", *args] if armored else args), what="export the public key").stdout

    def detach_sign(self, path: Path, out: Path) -> None:
        """An armored detached signature (SHA256SUMS.asc, repomd.xml.asc, Release.gpg)."""
        self._gpg(
            "--armor", "--output", str(out), "--detach-sign", str(path), sign=True, what=f"sign {path.name}"
        )

    def clearsign(self, path: Path, out: Path) -> None:
        self._gpg("--output", str(out), "--clearsign", str(path), sign=True, what=f"clearsign {path.name}")

    def rpmsign(self, rpm: Path) -> None:
        """rpmsign --addsign in place: a header signature made by gpg (Debian's rpm names a gpg2 that
        does not exist, hence ``__gpg``). rpm runs gpg; extra arguments reach it through a macro."""
        extra = "--batch --no-tty --pinentry-mode loopback --digest-algo SHA512"
        if self.sig_time is not None:
            extra += f" --faked-system-time {self.sig_time}!"
        argv = [
            "rpmsign", "--addsign",
            "--define", f"__gpg {shutil.which('gpg') or '/usr/bin/gpg'}",
            "--define", f"_gpg_path {self.key.home}",
            "--define", f"_gpg_name {self.key.fingerprint}",
            "--define", "_gpg_digest_algo sha512",
        ]  # fmt: skip
        with self._passphrase_pipe(True) as fd:
            if fd is not None:
                extra += f" --passphrase-fd {fd}"
            proc = self._run([*argv, "--define", f"_gpg_sign_cmd_extra_args {extra}", str(rpm)], fd)
        if proc.returncode != 0:
            raise SigningError(
                f"rpmsign could not sign {rpm.name} with {self.key.fingerprint}: "
                f"{_last_gpg_line(proc.stderr.decode(errors='replace'))}"
            )


# ----------------------------------------------------------------------------------- checks (verify)


def rpm_signature_problem(rpms: Sequence[Path], armored_key: Path) -> dict[Path, str | None]:
    """Per rpm: None when its signature checks against ``armored_key`` alone, else rpm's own line.

    A private rpmdb holding only that key, and ``_pkgverify_level signature``: plain ``rpm -K`` passes
    an unsigned package.
    """
    out: dict[Path, str | None] = {}
    with tempfile.TemporaryDirectory(prefix="ow-rpmdb-") as db:
        imp = subprocess.run(
            ["rpm", "--dbpath", db, "--import", str(armored_key)], capture_output=True, text=True, check=False
        )
        if imp.returncode != 0:
            msg = (imp.stderr.strip().splitlines() or ["rpm --import failed"])[-1]
            return dict.fromkeys(rpms, f"{armored_key.name}: {msg}")
        for rpm in rpms:
            proc = subprocess.run(
                ["rpm", "--dbpath", db, "--define", "_pkgverify_level signature", "-K", str(rpm)],
                capture_output=True, text=True, env=_ENV, check=False,
            )  # fmt: skip
            text = (proc.stdout + proc.stderr).strip().replace("\n", " ")
            out[rpm] = None if proc.returncode == 0 else f"rpm -K: {text} (exit {proc.returncode})"
    return out


def rpm_is_signed(rpm: Path) -> bool:
    """Whether the rpm carries any OpenPGP signature at all (whoever made it)."""
    proc = subprocess.run(
        ["rpm", "-qp", "--nosignature", "--nodigest",
         "--qf", "%{RSAHEADER:pgpsig}|%{DSAHEADER:pgpsig}", str(rpm)],
        capture_output=True, text=True, check=False,
    )  # fmt: skip
    return any(p.strip() not in ("", "(none)") for p in proc.stdout.split("|"))


def gpgv_problem(keyring: Path, signature: Path, data: Path | None = None) -> tuple[str | None, str]:
    """(None, fingerprint) when gpgv finds a good signature by a key of ``keyring``; else (gpgv's line, "").

    ``data`` None: ``signature`` is clearsigned (InRelease). The fingerprint comes from ``VALIDSIG`` on the
    status fd, never from the human text.
    """
    argv = ["gpgv", "--status-fd", "1", "--keyring", str(keyring.resolve()), str(signature)]
    if data is not None:
        argv.append(str(data))
    with tempfile.TemporaryDirectory(prefix="ow-gpgv-") as home:
        proc = subprocess.run(argv, capture_output=True, text=True, env={**_ENV, HOME_VAR: home}, check=False)
    valid = [ln.split()[2] for ln in proc.stdout.splitlines() if ln.startswith("[GNUPG:] VALIDSIG ")]
    if proc.returncode == 0 and valid:
        return None, valid[0]
    lines = [ln for ln in proc.stderr.splitlines() if ln.strip()]
    last = lines[-1] if lines else "gpgv: no output"
    return f"{last} (exit {proc.returncode})", ""
