"""How OpenSSL is built: the lock's 3.5 LTS orig tarball, shared, into /opt/ow/openssl.

* ``-include glibc228.h`` keeps every object at or below GLIBC_2.28 (see packaging/buildroot/glibc228.h);
* ``--openssldir`` under our prefix exists on no target host: openwatch.runtime points OpenSSL at the host's
  CA bundle through ``SSL_CERT_FILE``/``SSL_CERT_DIR``;
* ``no-tests``: the test programs are not built (minutes on 2 cores, and nothing ships them);
* the defaults otherwise (QUIC, the post-quantum algorithms), so every ``symbol@OPENSSL_3.x`` psycopg-binary's
  own OpenSSL 3.5 exports is defined by ours and the dedupe layer can point libpq at it.
"""

from __future__ import annotations

import shlex

from owrelease.rootshell import MAKE_JOBS, PREFIX

PREFIX_DIR = f"{PREFIX}/openssl"
LIB = f"{PREFIX_DIR}/lib"
CONFIGURE = [
    "linux-x86_64",
    f"--prefix={PREFIX_DIR}",
    f"--openssldir={PREFIX_DIR}/ssl",
    "--libdir=lib",
    "shared",
    "no-tests",
    "-O2",
    "-include",
    f"{PREFIX}/glibc228.h",
]


def script(tarball: str) -> str:
    """Unpack ``tarball`` (in /opt/ow/src), configure, build, install the libraries and headers only."""
    return (
        f"cd {PREFIX}/src && rm -rf openssl && mkdir openssl && tar -xf {shlex.quote(tarball)} -C openssl "
        f"--strip-components=1 && cd openssl && ./Configure {' '.join(shlex.quote(a) for a in CONFIGURE)} "
        f"&& nice -n 10 make -j{MAKE_JOBS} >/dev/null && make install_sw >/dev/null"
    )
