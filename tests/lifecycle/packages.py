"""The packages the scenarios install: the tree's own build, and a newer one made from a copy of the tree
the way a release engineer makes the next release candidate (bump ``__version__``, add the next
migration, extend migrations.lock and the changelog, change one shipped default).

The newer build runs in a background process started at the beginning of the session, so it overlaps
the first scenarios; its packages are cached under ``CACHE`` keyed by every input file.
"""

from __future__ import annotations

import fcntl
import hashlib
import json
import os
import re
import shutil
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

from .roots import CACHE

ROOT = Path(__file__).resolve().parents[2]
RECIPE = "newer-v1"  # bump when make_newer_tree changes what it writes
NEW_MAX_CONNECTIONS = 16  # the shipped default the newer build changes (openwatch.toml)


@dataclass(frozen=True)
class Build:
    version: str  # PEP 440, as `openwatch --version` prints it
    deb: Path
    rpm: Path
    head: int  # the schema version its binary expects
    seconds: float


def tree_files(root: Path = ROOT) -> list[str]:
    """The files a fresh clone has (tracked plus new, not ignored): what a release is built from."""
    out = subprocess.run(
        ["git", "-C", str(root), "ls-files", "-co", "--exclude-standard", "-z"],
        capture_output=True,
        check=True,
    ).stdout
    return sorted(p for p in out.decode().split("\0") if p and (root / p).is_file())


def migration_head(root: Path) -> int:
    return max(int(p.name.split("_", 1)[0]) for p in (root / "migrations").glob("[0-9]*_*.sql"))


def app_version(root: Path) -> str:
    m = re.search(r'^__version__ = "([^"]+)"', (root / "openwatch/__init__.py").read_text(), re.M)
    assert m, "openwatch/__init__.py has no __version__"
    return m.group(1)


def next_version(v: str) -> str:
    """The next release candidate (0.2.0rc1 -> 0.2.0rc2), or the next patch release after a final."""
    m = re.fullmatch(r"(\d+\.\d+\.\d+)rc(\d+)", v)
    if m:
        return f"{m.group(1)}rc{int(m.group(2)) + 1}"
    m = re.fullmatch(r"(\d+)\.(\d+)\.(\d+)", v)
    assert m, f"cannot derive a newer version from {v!r}"
    return f"{m.group(1)}.{m.group(2)}.{int(m.group(3)) + 1}"


def _key(files: list[str]) -> str:
    h = hashlib.sha256(RECIPE.encode())
    for rel in files:
        h.update(rel.encode() + b"\0" + hashlib.sha256((ROOT / rel).read_bytes()).digest())
    return h.hexdigest()[:16]


def make_newer_tree(dest: Path) -> tuple[str, int]:
    """Copy the tree to ``dest`` and turn it into the next release; returns (version, new head)."""
    if dest.exists():
        shutil.rmtree(dest)
    for rel in tree_files():
        target = dest / rel
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(ROOT / rel, target)
    old = app_version(dest)
    new = next_version(old)
    init = dest / "openwatch/__init__.py"
    init.write_text(init.read_text().replace(f'__version__ = "{old}"', f'__version__ = "{new}"'))
    head = migration_head(dest) + 1
    (dest / "migrations" / f"{head:04d}_lifecycle_upgrade_probe.sql").write_text(
        "-- Added by the lifecycle tests' newer build: proves an upgrade brings the schema forward.\n"
        "-- +goose Up\n"
        "CREATE TABLE lifecycle_upgrade_probe (\n"
        "    id BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,\n"
        "    note TEXT NOT NULL DEFAULT 'upgraded'\n"
        ");\n\n"
        "-- +goose Down\n"
        "DROP TABLE IF EXISTS lifecycle_upgrade_probe;\n"
    )
    # As a release engineer would: extend the lock with the new file (nox -s lock), never rewrite it.
    sys.path.insert(0, str(ROOT / "packaging"))
    from owrelease import lock

    lock.write(dest)
    lock.check(dest)
    toml = dest / "packaging/package.toml"
    text = toml.read_text()
    text, n = re.subn(r"(?m)^max_connections = \d+$", f"max_connections = {NEW_MAX_CONNECTIONS}", text)
    assert n == 1, "package.toml: [defaults.database] max_connections not found"
    entry = (
        "[[changelog]]\n"
        f'version = "{new}"\n'
        'date = "2026-11-27"\n'
        'author = "OpenWatch maintainers <maintainers@openwatch.dev>"\n'
        f'changes = ["Migration {head:04d}; default database.max_connections {NEW_MAX_CONNECTIONS}."]\n\n'
    )
    first = text.index("[[changelog]]")
    toml.write_text(text[:first] + entry + text[first:])
    return new, head


def build_newer(base: Path) -> None:
    """In the child process: make the newer tree and build both packages into ``base``, under a lock so
    that two sessions never build into the same directory (the second one finds the result)."""
    sys.path.insert(0, str(ROOT / "packaging"))
    from owrelease import build, freeze

    base.mkdir(parents=True, exist_ok=True)
    with open(base.parent / f"{base.name}.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        result = base / "result.json"
        if result.exists():
            return
        started = time.monotonic()
        version, head = make_newer_tree(base / "tree")
        dist = base / "dist"
        shutil.rmtree(dist, ignore_errors=True)
        dist.mkdir()
        # the main tree's freeze cache (keyed by every input) and build venv: a rerun re-freezes nothing
        cache = ROOT / "build" / "freeze"
        frozen = freeze.freeze(
            freeze.HostBuilder(cache=cache), src=base / "tree", cache=cache, stamp=freeze.build_stamp(ROOT)
        )
        out = {
            f: str(build.build_package(f, dist, root=base / "tree", frozen=frozen)) for f in ("deb", "rpm")
        }
        doc = {**out, "version": version, "head": head, "seconds": round(time.monotonic() - started, 1)}
        tmp = result.with_suffix(".tmp")
        tmp.write_text(json.dumps(doc))
        tmp.replace(result)


CHILD = (
    "import sys; sys.path[:0] = sys.argv[1:3]; "
    "from lifecycle.packages import build_newer, Path; build_newer(Path(sys.argv[3]))"
)


class BackgroundBuild:
    """Builds the newer packages in a child process; ``result()`` waits for it (or takes the cache)."""

    def __init__(self) -> None:
        self.key = _key(tree_files())
        self.base = CACHE / "packages" / f"newer-{self.key}"
        self.result_file = self.base / "result.json"
        self.log = self.base.with_suffix(".log")
        self.proc: subprocess.Popen[bytes] | None = None
        self._prune()
        if self.result_file.exists():
            return
        self.base.parent.mkdir(parents=True, exist_ok=True)
        with open(self.log, "ab") as log:
            self.proc = subprocess.Popen(
                [sys.executable, "-c", CHILD, str(ROOT / "tests"), str(ROOT / "packaging"), str(self.base)],
                stdout=log,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                env={k: v for k, v in os.environ.items() if not k.startswith("OPENWATCH_")},
            )

    def _prune(self, keep_seconds: float = 3600) -> None:
        """Older newer-builds (other trees) go once they are an hour old: one build is ~30 MB a package."""
        for old in (CACHE / "packages").glob("newer-*"):
            if old.name.startswith(self.base.name):
                continue
            if time.time() - old.stat().st_mtime > keep_seconds:
                if old.is_dir():
                    shutil.rmtree(old, ignore_errors=True)
                else:
                    old.unlink(missing_ok=True)

    def result(self, timeout: float = 1200) -> Build:
        if self.proc is not None:
            rc = self.proc.wait(timeout)
            assert rc == 0, f"building the newer packages failed (rc={rc}):\n{self.log.read_text()[-6000:]}"
        data = json.loads(self.result_file.read_text())
        return Build(
            version=data["version"],
            deb=Path(data["deb"]),
            rpm=Path(data["rpm"]),
            head=data["head"],
            seconds=data["seconds"],
        )

    def cancel(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            self.proc.wait(30)
