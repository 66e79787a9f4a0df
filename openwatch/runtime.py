"""Process settings the frozen binary needs before it touches TLS or PostgreSQL.

From source these are no-ops: the interpreter, OpenSSL and psycopg are the host's own.
"""

from __future__ import annotations

import os
import sys

TYPE_CHECKING = False  # typing.TYPE_CHECKING without importing typing: every command imports this module
if TYPE_CHECKING:
    from collections.abc import MutableMapping

# The distributions' CA bundles and hashed directories, most common first.
CA_FILES = (
    "/etc/ssl/certs/ca-certificates.crt",  # Debian, Ubuntu
    "/etc/pki/tls/certs/ca-bundle.crt",  # RHEL, Rocky, Alma, Fedora
    "/etc/ssl/ca-bundle.pem",  # SUSE
    "/etc/ssl/cert.pem",  # Alpine, and a common symlink elsewhere
)
CA_DIRS = ("/etc/ssl/certs", "/etc/pki/tls/certs")


def is_frozen() -> bool:
    return bool(getattr(sys, "frozen", False))


def prepare(environ: MutableMapping[str, str] | None = None, *, frozen: bool | None = None) -> None:
    env = os.environ if environ is None else environ
    if not (is_frozen() if frozen is None else frozen):
        return
    ca_paths(env)
    # The bundle carries psycopg's compiled implementation and its libpq. Unpinned, psycopg would fall back
    # to a host libpq through ctypes when the bundled one cannot load: a broken bundle would pass on exactly
    # the hosts that have libpq installed, and fail on the others.
    env.setdefault("PSYCOPG_IMPL", "binary")


def ca_paths(env: MutableMapping[str, str]) -> None:
    """Point the bundled OpenSSL at the host's CA certificates.

    The release binary carries the OpenSSL it was built with in the bullseye build root; its compiled-in
    certificate locations (under that build prefix) exist on no target host, so anything that asks OpenSSL
    for its default verify paths (Python's default SSL context, for one) would trust no CA at all. OpenSSL
    reads ``SSL_CERT_FILE`` and ``SSL_CERT_DIR`` whenever it loads its default paths, so the first existing
    distribution location is put there, unless the operator already set them.
    """
    for name, candidates, exists in (
        ("SSL_CERT_FILE", CA_FILES, os.path.isfile),
        ("SSL_CERT_DIR", CA_DIRS, os.path.isdir),
    ):
        if name not in env:
            found = next((c for c in candidates if exists(c)), None)
            if found:
                env[name] = found
