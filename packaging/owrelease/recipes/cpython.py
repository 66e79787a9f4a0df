"""How CPython is built: the lock's orig tarball, a shared libpython (PyInstaller needs it) linked against our
OpenSSL, into /opt/ow/python.

* ``-include glibc228.h``: binds exp/log/pow/exp2/log2 to GLIBC_2.2.5 (2.29 otherwise);
* ``ac_cv_func_sem_clockwait=no``: ``sem_clockwait`` is GLIBC_2.30 (threading and, since 3.13, the
  parking lot fall back to ``sem_timedwait``).  No other GLIBC_2.29+ function of bullseye's glibc (2.31) is
  probed by CPython 3.13's configure (checked against ``readelf --dyn-syms`` of libc/libm/libpthread);
  elfgate proves the result;
* ``--without-system-libmpdec``: the bundled libmpdec, so no bullseye library joins the bundle for _decimal;
* ``--with-openssl-rpath=auto`` and the RPATH: libpython and _ssl find themselves and our OpenSSL;
* ``--without-ensurepip``: the venv gets pip from ensurepip's bundled wheel, nothing is installed here.
"""

from __future__ import annotations

import shlex

from owrelease import runtimelock
from owrelease.recipes import openssl
from owrelease.rootshell import MAKE_JOBS, PREFIX

PREFIX_DIR = f"{PREFIX}/python"
CONFIGURE = [
    f"--prefix={PREFIX_DIR}",
    "--enable-shared",
    f"--with-openssl={openssl.PREFIX_DIR}",
    "--with-openssl-rpath=auto",
    "--without-ensurepip",
    "--without-system-libmpdec",
    "ac_cv_func_sem_clockwait=no",
    f"CFLAGS=-O2 -include {PREFIX}/glibc228.h",
    f"LDFLAGS=-Wl,-rpath,{PREFIX_DIR}/lib",
]
# stdlib parts nothing frozen imports (and that PyInstaller would otherwise scan)
UNUSED = ("test", "idlelib", "tkinter", "turtledemo")
# the modules whose absence would mean a missing -dev package in the root
MUST_IMPORT = "ssl, zlib, bz2, lzma, ctypes, uuid, _decimal"


def script(tarball: str, branch: str) -> str:
    """Unpack, configure, build, install; drop what is never frozen; prove the optional modules built."""
    py = f"{PREFIX_DIR}/bin/python{branch}"
    return (
        f"cd {PREFIX}/src && rm -rf python && mkdir python && tar -xf {shlex.quote(tarball)} -C python "
        f"--strip-components=1 && cd python && ./configure {' '.join(shlex.quote(a) for a in CONFIGURE)} "
        f">/dev/null && nice -n 10 make -j{MAKE_JOBS} >/dev/null && make install >/dev/null "
        f"&& cd {PREFIX_DIR}/lib/python{branch} && rm -rf {' '.join(UNUSED)} "
        f"&& {py} -c 'import {MUST_IMPORT}'"
    )


def _branch() -> str:
    try:
        return runtimelock.load()["python"].branch
    except runtimelock.LockError:
        return "3"  # the build itself reports the broken lock, in one line


BRANCH = _branch()  # e.g. "3.13": the lib/pythonX.Y directories
VENV = f"{PREFIX}/venv"
SITE_PACKAGES = f"{VENV}/lib/python{BRANCH}/site-packages"
