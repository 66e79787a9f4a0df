"""The frozen binary's members that are unpacked when first needed, instead of at every start.

PyInstaller's onefile writes every library and data file it carries into a fresh private directory
(``sys._MEIPASS``) at every start and removes it at exit; for ``--version`` that was most of the run
(bench/startup.py). Our bootloader patch (packaging/buildroot/pyinstaller-bootloader.patch) leaves in the
archive the members the freeze named on demand (owrelease.ondemandplan); this module unpacks them from
the executable into that same directory at the moment they are needed:

* an extension module, with the bundled libraries it links: by a finder first on ``sys.meta_path``,
  before the import system looks for the file;
* data (the migrations, the UI): by :func:`ensure`, which their readers call, and :func:`names`, which
  lists them without unpacking (``--version`` counts the migrations from the names alone);
* the distributions' ``*.dist-info`` metadata: when importlib.metadata asks the finder for them.

What is kept of the bootloader's guarantees: the directory is the one it created (0700, checked by the
child at start) and removes at exit and on signals. A member is unpacked only when the archive's own TOC
names it, its path stays inside the directory, and it is written to a private temporary name and renamed
into place, so no reader ever sees half a file. A member that cannot be unpacked is one line on stderr and
exit 1.

From a source tree (no ``openwatch._ondemand``, which the freeze writes) all of this is inert. Importing it
costs nothing: ``sys`` and ``os`` only, the archive is read the first time a member is needed.
"""

from __future__ import annotations

import _thread
import os
import sys

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Callable, Sequence
    from importlib.machinery import ModuleSpec
    from typing import Any

_COOKIE_MAGIC = b"MEI\014\013\012\013\016"
_COOKIE_LEN = 88  # '!8sIIII64s'
_lock = _thread.allocate_lock()
_modules: dict[str, list[str]] = {}
_data: tuple[str, ...] = ()
# name -> (offset, length, size, compressed, mode): what the bootloader would have written, and how
_toc: dict[str, tuple[int, int, int, bool, int]] | None = None
_done: set[str] = set()


class ExtractError(OSError):
    """A member could not be unpacked; the message names it and the directory."""


def _home() -> str:
    return str(getattr(sys, "_MEIPASS", ""))


def _executable() -> str:
    # The running executable's own inode, even if an upgrade replaced /usr/bin/openwatch meanwhile.
    return "/proc/self/exe" if os.path.exists("/proc/self/exe") else sys.executable


def _u32(b: bytes, at: int) -> int:
    return int.from_bytes(b[at : at + 4], "big")


def _read_toc(exe: str) -> dict[str, tuple[int, int, int, bool, int]]:
    """The CArchive's TOC: the cookie is found from the end, as the bootloader does."""
    with open(exe, "rb") as fh:
        size = fh.seek(0, os.SEEK_END)
        window = min(size, 1 << 16)
        fh.seek(size - window)
        tail = fh.read(window)
        at = tail.rfind(_COOKIE_MAGIC)
        if at < 0 or at + _COOKIE_LEN > len(tail):
            raise ExtractError(f"{exe}: no PyInstaller archive found")
        cookie_pos = size - window + at
        pkg_len, toc_off, toc_len = _u32(tail, at + 8), _u32(tail, at + 12), _u32(tail, at + 16)
        pkg_start = cookie_pos + _COOKIE_LEN - pkg_len
        fh.seek(pkg_start + toc_off)
        raw = fh.read(toc_len)
    toc: dict[str, tuple[int, int, int, bool, int]] = {}
    pos = 0
    while pos + 18 <= len(raw):
        entry_len = _u32(raw, pos)
        if entry_len < 18:
            raise ExtractError(f"{exe}: corrupt archive TOC at {pos}")
        offset, length, ulen = _u32(raw, pos + 4), _u32(raw, pos + 8), _u32(raw, pos + 12)
        compressed, typecode = raw[pos + 16], raw[pos + 17 : pos + 18]
        name = raw[pos + 18 : pos + entry_len].rstrip(b"\0").decode("utf-8")
        if typecode in (b"b", b"x"):  # binaries executable, data not: the bootloader's modes
            toc[name] = (
                pkg_start + offset,
                length,
                ulen,
                bool(compressed),
                0o700 if typecode == b"b" else 0o600,
            )
        pos += entry_len
    return toc


def _safe_path(home: str, name: str) -> str:
    """``home/name``, refusing a name that is absolute, empty, or could climb out of the directory."""
    parts = name.split("/")
    if not name or name.startswith("/") or "\0" in name or any(p in ("", ".", "..") for p in parts):
        raise ExtractError(f"refusing to unpack {name!r}: not a plain relative path")
    return os.path.join(home, *parts)


def _unpack(name: str) -> None:
    """Write one member into the directory, once; the caller holds the lock."""
    global _toc
    home = _home()
    target = _safe_path(home, name)
    if name in _done or os.path.lexists(target):
        _done.add(name)
        return
    exe = _executable()
    try:
        if _toc is None:
            _toc = _read_toc(exe)
        if name not in _toc:
            raise ExtractError(f"{name}: not in the archive of {sys.executable}")
        offset, length, ulen, compressed, mode = _toc[name]
        with open(exe, "rb") as fh:
            fh.seek(offset)
            blob = fh.read(length)
        if compressed:
            import zlib

            blob = zlib.decompress(blob)
        if len(blob) != ulen:
            raise ExtractError(
                f"{name}: {len(blob)} bytes in the archive of {sys.executable}, {ulen} expected"
            )
        os.makedirs(os.path.dirname(target), mode=0o700, exist_ok=True)
        tmp = f"{target}.{os.getpid()}.{_thread.get_ident()}.part"
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC, mode)
        try:
            try:
                os.fchmod(fd, mode)  # exactly the bootloader's modes, whatever the umask
                view = memoryview(blob)
                while view:
                    view = view[os.write(fd, view) :]
            finally:
                os.close(fd)
            os.rename(tmp, target)
        except OSError:
            os.unlink(tmp)  # nothing half-written stays, even until the bootloader's cleanup
            raise
    except ExtractError:
        raise
    except OSError as exc:
        raise ExtractError(f"cannot unpack {name} into {home}: {exc.strerror or exc}") from None
    _done.add(name)


def _unpack_all(names: Sequence[str]) -> None:
    """Unpack ``names`` in order under the lock; a failure is one line on stderr and exit 1."""
    with _lock:
        try:
            for name in names:
                _unpack(name)
        except ExtractError as exc:
            sys.stderr.write(f"openwatch: {exc}\n")
            sys.stderr.flush()
            raise SystemExit(1) from None


def ensure(prefix: str, accept: Callable[[str], bool] | None = None) -> None:
    """Unpack every on-demand data member under ``prefix`` (``"migrations/"``) that ``accept`` takes;
    a no-op from source."""
    wanted = [n for n in _data if n.startswith(prefix) and n not in _done and (accept is None or accept(n))]
    if wanted:
        _unpack_all(wanted)


def ensure_dist_info() -> None:
    """Unpack every ``*.dist-info`` member (metadata: a handful of small files nothing needs to start)."""
    ensure("", lambda n: n.split("/", 1)[0].endswith(".dist-info"))


def names(prefix: str) -> list[str]:
    """The on-demand data members' names under ``prefix``, relative to it, unpacked or not."""
    return [n[len(prefix) :] for n in _data if n.startswith(prefix)]


class OnDemandFinder:
    """First on ``sys.meta_path``: unpacks an on-demand extension module and its libraries, then loads it.

    It answers with a spec for the file it just wrote rather than letting the path finder look: that one
    caches directory listings by mtime, which may not have moved within the same clock tick.
    """

    @classmethod
    def find_distributions(cls, *args: object, **kwargs: object) -> list[object]:
        """importlib.metadata asks every finder on sys.meta_path, this one first: unpack every
        distribution's metadata, and let the path finder after it find them on disk."""
        ensure_dist_info()
        return []

    @classmethod
    def find_spec(
        cls, fullname: str, path: Sequence[str] | None = None, target: object = None
    ) -> ModuleSpec | None:
        if fullname == "ctypes" and _ctypes_hooks_pending:
            return _ctypes_then_hooks(path, target)
        todo = _modules.get(fullname)
        if todo is None:
            return None
        _unpack_all(todo)
        from importlib.machinery import ExtensionFileLoader, ModuleSpec

        location = _safe_path(_home(), todo[-1])
        spec = ModuleSpec(fullname, ExtensionFileLoader(fullname, location), origin=location)
        spec.has_location = True
        return spec


# PyInstaller's bootstrap imports ctypes at every start, to wrap ctypes.CDLL so that a library named by
# its file name is looked up in sys._MEIPASS first (pyimod03_ctypes). With _ctypes on demand that import
# fails quietly (this finder is not installed yet) and ctypes costs nothing until something imports it;
# the wrapping is then done as the bootstrap would have done it, right after ctypes is executed.
_ctypes_hooks_pending = False


def _ctypes_then_hooks(path: Sequence[str] | None, target: object) -> ModuleSpec | None:
    """The spec the finders after this one give ``ctypes``, its loader made to wrap CDLL once done."""
    global _ctypes_hooks_pending
    for finder in sys.meta_path:
        find = getattr(finder, "find_spec", None)
        spec = None if finder is OnDemandFinder or find is None else find("ctypes", path, target)
        if spec is not None:
            if spec.loader is not None and hasattr(spec.loader, "exec_module"):
                _wrap_exec(spec.loader)
                _ctypes_hooks_pending = False
            return spec
    return None


def _wrap_exec(loader: Any) -> None:
    run = loader.exec_module

    def exec_then_hook(module: object) -> None:
        run(module)
        import pyimod03_ctypes  # type: ignore[import-not-found]  # PyInstaller bootstrap, frozen only

        pyimod03_ctypes.install()

    loader.exec_module = exec_then_hook  # this spec's loader only


def install() -> None:
    """Called by the freeze's runtime hook, before any other: read the manifest, put the finder first."""
    global _modules, _data
    if not getattr(sys, "frozen", False) or not _home():
        return
    import importlib

    try:
        manifest = importlib.import_module("openwatch._ondemand")  # written by the freeze
    except ImportError:
        return
    _modules = dict(manifest.MODULES)
    _data = tuple(manifest.DATA)
    global _ctypes_hooks_pending
    _ctypes_hooks_pending = "_ctypes" in _modules and "ctypes" not in sys.modules
    if _modules or _data:
        sys.meta_path.insert(0, OnDemandFinder)
