"""Point the frozen binary's own OpenSSL at the host's CA certificates.

The release binary carries the OpenSSL it was built with in the bullseye build root; its compiled-in
certificate locations (under that build prefix) exist on no target host, so anything that asks OpenSSL
for its default verify paths (Python's default SSL context, for one) would trust no CA at all. OpenSSL
reads ``SSL_CERT_FILE`` and ``SSL_CERT_DIR`` whenever it loads its default paths, so the first existing
distribution location is put there, unless the operator already set them.
"""

from __future__ import annotations

import os
import sys
from collections.abc import MutableMapping

# The distributions' CA bundles and hashed directories, most common first.
CA_FILES = (
    "/etc/ssl/certs/ca-certificates.crt",  # Debian, Ubuntu
    "/etc/pki/tls/certs/ca-bundle.crt",  # RHEL, Rocky, Alma, Fedora
    "/etc/ssl/ca-bundle.pem",  # SUSE
    "/etc/ssl/cert.pem",  # Alpine, and a common symlink elsewhere
)
CA_DIRS = ("/etc/ssl/certs", "/etc/pki/tls/certs")


def apply(environ: MutableMapping[str, str] | None = None, *, frozen: bool | None = None) -> None:
    """Set SSL_CERT_FILE / SSL_CERT_DIR for the bundled OpenSSL; a no-op from source (system OpenSSL)."""
    env = os.environ if environ is None else environ
    if not (getattr(sys, "frozen", False) if frozen is None else frozen):
        return
    for name, candidates, exists in (
        ("SSL_CERT_FILE", CA_FILES, os.path.isfile),
        ("SSL_CERT_DIR", CA_DIRS, os.path.isdir),
    ):
        if name not in env:
            found = next((c for c in candidates if exists(c)), None)
            if found:
                env[name] = found
