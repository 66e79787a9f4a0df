"""How PyInstaller's bootloader is built: from the PyPI sdist of the PyInstaller the venv holds (pinned by
sha256 here), with our patch (packaging/buildroot/pyinstaller-bootloader.patch), replacing the prebuilt one
in the venv. The patch does two things:

* noexec: a onefile unpacks its libraries to ``$TMPDIR/_MEIxxxxxx`` and maps them executable, which the
  loader refuses on a ``noexec`` mount. The patched bootloader skips noexec candidates (TMPDIR/TEMP/TMP,
  /tmp, /var/tmp, /usr/tmp), then tries ``$XDG_RUNTIME_DIR`` and ``$HOME``, and otherwise prints ONE line
  naming the noexec directories and what to set, and exits 1.
* on demand: members named by an OPTION entry ``pyi-openwatch-ondemand NAME`` (owrelease.ondemandplan) are
  not written at start; ``openwatch.ondemand`` unpacks them into the same directory when first needed.
"""

from __future__ import annotations

from owrelease.rootshell import PREFIX

# PyInstaller sdists whose bootloader we rebuild with our patch: version -> sha256 of the PyPI sdist.
PYINSTALLER_SDIST_SHA256 = {
    "6.22.3": "05eb2f5615503e72939a7224d68b4aff572c6b0438ee4a17d0a4b481f399362d",
}
PATCH = f"{PREFIX}/pyinstaller-bootloader.patch"


def script() -> str:
    """Fetch the sdist of the installed PyInstaller, verify, patch, build and install its bootloader."""
    vpy = f"{PREFIX}/venv/bin/python"
    table = " ".join(f"{v}={h}" for v, h in PYINSTALLER_SDIST_SHA256.items())
    return (
        f"cd {PREFIX}/src && ver=$({vpy} -c 'import PyInstaller; print(PyInstaller.__version__)') "
        f'&& want=\'\'; for e in {table}; do [ "${{e%%=*}}" = "$ver" ] && want=${{e#*=}}; done; '
        f'[ -n "$want" ] || {{ echo "no pinned sdist sha256 for PyInstaller $ver: add it to '
        f'PYINSTALLER_SDIST_SHA256" >&2; exit 1; }}; '
        f"{vpy} -m pip download -q --no-cache-dir --no-deps --no-binary :all: "
        f"-d sdist pyinstaller==$ver "
        f'&& echo "$want  sdist/pyinstaller-$ver.tar.gz" | sha256sum -c - '
        f"&& rm -rf pyi && mkdir pyi && tar -xzf sdist/pyinstaller-$ver.tar.gz -C pyi --strip-components=1 "
        f"&& cd pyi && patch -p1 < {PATCH} "
        f"&& cd bootloader && {vpy} ./waf all >/dev/null "
        f"&& dest=$({vpy} -c 'import PyInstaller, os; print(os.path.dirname(PyInstaller.__file__))')"
        f"/bootloader/Linux-64bit-intel "
        f"&& cp ../PyInstaller/bootloader/Linux-64bit-intel/run* $dest/ && cd {PREFIX}/src && rm -rf pyi"
    )
