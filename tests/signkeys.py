"""Throwaway OpenPGP keys for the signing tests: each in its own private GNUPGHOME, made by real gpg.

RSA 3072 with %no-protection is what the release key looks like to every client (RHEL 8's rpm reads no
EdDSA); it takes about 2 s. The passphrase key is ed25519: instant, and rpm 4.18 and gpgv read it.
"""

from __future__ import annotations

import os
import subprocess
from dataclasses import dataclass
from pathlib import Path

PASSPHRASE = "correct horse battery staple"


@dataclass(frozen=True)
class ThrowawayKey:
    home: Path
    fingerprint: str
    passphrase_file: Path | None

    def env(self, **extra: str) -> dict[str, str]:
        base = {k: v for k, v in os.environ.items() if not k.startswith(("OWRELEASE_", "GNUPGHOME"))}
        base.update({"GNUPGHOME": str(self.home), "OWRELEASE_SIGNING_KEY": self.fingerprint})
        if self.passphrase_file is not None:
            base["OWRELEASE_SIGNING_PASSPHRASE_FILE"] = str(self.passphrase_file)
        base.update(extra)
        return base

    def stop_agent(self) -> None:
        subprocess.run(["gpgconf", "--homedir", str(self.home), "--kill", "gpg-agent"], check=False)


def make_key(where: Path, name: str, *, passphrase: bool = False) -> ThrowawayKey:
    home = where / f"gnupg-{name}"
    home.mkdir(mode=0o700, parents=True)
    if passphrase:
        algo = "Key-Type: eddsa\nKey-Curve: ed25519\n"
        protect = f"Passphrase: {PASSPHRASE}\n"
    else:
        algo = "Key-Type: RSA\nKey-Length: 3072\n"
        protect = ""
        algo = "%no-protection\n" + algo
    batch = (
        f"{algo}{protect}Key-Usage: sign\nName-Real: OpenWatch Release Signing (TEST {name})\n"
        f"Name-Email: release-test-{name}@example.invalid\nExpire-Date: 1y\n%commit\n"
    )
    env = {**os.environ, "GNUPGHOME": str(home)}
    subprocess.run(
        ["gpg", "--batch", "--gen-key"], input=batch, text=True, env=env, check=True, capture_output=True
    )
    out = subprocess.run(
        ["gpg", "--batch", "--with-colons", "--list-secret-keys"],
        env=env,
        text=True,
        check=True,
        capture_output=True,
    ).stdout
    fpr = next(ln.split(":")[9] for ln in out.splitlines() if ln.startswith("fpr"))
    pass_file = None
    if passphrase:
        pass_file = where / f"pass-{name}"
        pass_file.write_text(PASSPHRASE + "\n")
        pass_file.chmod(0o600)
    key = ThrowawayKey(home, fpr, pass_file)
    key.stop_agent()
    return key
