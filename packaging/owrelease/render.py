"""Jinja2 (StrictUndefined) over ``templates/``. Python computes every value; templates only lay them out."""

from __future__ import annotations

import datetime as dt
import hashlib
import shlex
import textwrap
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Any

import jinja2

from owrelease.model import ROOT, Package
from owrelease.version import PackageVersion

TEMPLATES = ROOT / "templates"

_DAYS = ("Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun")
_MONTHS = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")


@dataclass(frozen=True)
class BuildFacts:
    """What the build measured, as the templates need it."""

    pep440: str
    glibc_floor: str
    arch_rpm: str
    arch_deb: str


def _rpm_date(d: dt.date) -> str:
    return f"{_DAYS[d.weekday()]} {_MONTHS[d.month - 1]} {d.day:02d} {d.year}"


def _deb_date(d: dt.date) -> str:
    return f"{_DAYS[d.weekday()]}, {d.day:02d} {_MONTHS[d.month - 1]} {d.year} 00:00:00 +0000"


def _sh(value: str) -> str:
    return shlex.quote(value)


def _toml(value: object) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    text = str(value)
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'


def _roff(value: str) -> str:
    out = value.replace("\\", "\\e").replace("-", "\\-")
    return "\\&" + out if out.startswith((".", "'")) else out


def environment() -> jinja2.Environment:
    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(str(TEMPLATES)),
        undefined=jinja2.StrictUndefined,
        autoescape=False,
        keep_trailing_newline=True,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.filters["sh"] = _sh
    env.filters["toml"] = _toml
    env.filters["roff"] = _roff
    return env


def _deb_description(pkg: Package) -> list[str]:
    """The extended description, as control-file continuation lines (' text', ' .' for a blank line)."""
    lines: list[str] = []
    for para in pkg.description.split("\n\n"):
        if lines:
            lines.append(" .")
        lines.extend(" " + ln for ln in textwrap.wrap(" ".join(para.split()), 79))
    return lines


def _wrapped(text: str, width: int = 79) -> str:
    """Paragraphs re-wrapped to ``width`` (rpmlint's description-line-too-long)."""
    return "\n\n".join(textwrap.fill(" ".join(p.split()), width) for p in text.split("\n\n"))


def _dir_name(path: str, base: str) -> str:
    """``/var/lib/openwatch`` under ``/var/lib`` -> ``openwatch`` (the systemd *Directory= form)."""
    rel = PurePosixPath(path).relative_to(base)
    return str(rel)


def context(pkg: Package, facts: BuildFacts) -> dict[str, Any]:
    v: PackageVersion = pkg.version(facts.pep440)
    acc = pkg.account
    p = dict(pkg.by_id)
    service = dict(pkg.service)
    service.update(
        exec_start=f"{p['binary'].path} {service['exec_args']}",
        state_directory=_dir_name(p["state"].path, "/var/lib"),
        logs_directory=_dir_name(p["logs"].path, "/var/log"),
        runtime_directory=_dir_name(service["runtime_dir"], "/run"),
        state_mode=p["state"].mode_str,
        logs_mode=p["logs"].mode_str,
    )
    changelog = [
        {
            "rpm_header": f"{_rpm_date(c.date)} {c.author} - {pkg.version(c.version).rpm_evr}",
            "deb_header": f"{pkg.name} ({pkg.version(c.version).deb}) unstable; urgency=medium",
            "deb_trailer": f" -- {c.author}  {_deb_date(c.date)}",
            "changes": list(c.changes),
        }
        for c in pkg.changelog
    ]
    rpm_req = pkg.rpm_requires(facts.glibc_floor)
    shell = {
        "groupadd": shlex.join(["groupadd", "--system", acc.group]),
        "useradd": shlex.join(
            [
                "useradd",
                "--system",
                "--gid",
                acc.group,
                "--home-dir",
                acc.home,
                "--no-create-home",
                "--shell",
                acc.shell,
                "--comment",
                acc.gecos,
                acc.user,
            ]
        ),
        "purge": [shlex.quote(x) for x in pkg.purge_paths()],
    }
    return {
        "pkg": pkg,
        "v": v,
        "p": p,
        "account": acc,
        "service": service,
        "defaults": pkg.defaults,
        "facts": facts,
        "shell": shell,
        "changelog": changelog,
        "rpm": {
            "epoch_lines": [f"Epoch:          {v.epoch}"] if v.epoch else [],
            "requires": rpm_req["requires"],
            "requires_pre": rpm_req["requires_pre"],
            "requires_post": rpm_req["requires_post"],
            "recommends": pkg.recommends("rpm"),
            "files": pkg.rpm_files(),
            "description": _wrapped(pkg.description),
        },
        "deb": {
            "depends": ", ".join(pkg.deb_depends(facts.glibc_floor)),
            # a Recommends: line only when there is something to recommend (the templates have no if)
            "recommends_lines": [f"Recommends: {', '.join(r)}" for r in [pkg.recommends("deb")] if r],
            "description": _deb_description(pkg),
            "conffiles": pkg.conffiles("deb"),
            "fixups": pkg.ownership_fixes("deb"),
        },
        "generated": pkg.generated(),
    }


def render(env: jinja2.Environment, template: str, ctx: Mapping[str, Any]) -> str:
    return env.get_template(template).render(**ctx)


def payload_files(pkg: Package, ctx: Mapping[str, Any], fmt: str) -> dict[str, str]:
    """Rendered text of every template-sourced payload file of ``fmt``, keyed by entry id."""
    env = environment()
    return {e.id: render(env, e.template, ctx) for e in pkg.payload(fmt) if e.template}


RPM_SPEC = "rpm/openwatch.spec.j2"
DEB_CONTROL_FILES = {
    "control": "deb/control.j2",
    "conffiles": "deb/conffiles.j2",
    "postinst": "deb/postinst.j2",
    "prerm": "deb/prerm.j2",
    "postrm": "deb/postrm.j2",
}
DEB_SCRIPTS = ("postinst", "prerm", "postrm")


def rpm_spec(ctx: Mapping[str, Any]) -> str:
    return render(environment(), RPM_SPEC, ctx)


def deb_control_files(
    ctx: Mapping[str, Any], installed_size_kib: int, md5sums: list[tuple[str, str]]
) -> dict[str, str]:
    env = environment()
    full = {**ctx, "installed_size": installed_size_kib, "md5sums": md5sums}
    out = {name: render(env, tpl, full) for name, tpl in DEB_CONTROL_FILES.items()}
    out["md5sums"] = render(env, "deb/md5sums.j2", full)
    return out


def render_tree(pkg: Package, facts: BuildFacts, out: Path) -> list[Path]:
    """Write every rendered file under ``out``: payload/<path>, rpm/openwatch.spec, deb/DEBIAN/*."""
    ctx = context(pkg, facts)
    written: list[Path] = []

    def put(rel: str, text: str) -> None:
        target = out / rel
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(text, encoding="utf-8")
        written.append(target)

    env = environment()
    for e in pkg.entries:
        if e.template:
            put("payload/" + e.relpath.removesuffix(".gz"), render(env, e.template, ctx))
    put("rpm/openwatch.spec", rpm_spec(ctx))
    # md5sums and Installed-Size depend on the staged payload: the deb builder fills them in
    for name, text in deb_control_files(ctx, 0, []).items():
        if name != "md5sums":
            put("deb/DEBIAN/" + name, text)
    return written


def md5_of(path: Path) -> str:
    return hashlib.md5(path.read_bytes(), usedforsecurity=False).hexdigest()
