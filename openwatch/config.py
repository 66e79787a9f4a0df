"""Configuration: layering, validation and secret masking.

Layers, lowest first: built-in defaults; ``/etc/openwatch/openwatch.toml`` (or ``--config``);
``/etc/openwatch/secrets.env`` (or ``--secrets``, systemd EnvironmentFile syntax, OPENWATCH_* keys
only); the process environment (``OPENWATCH_<SECTION>_<KEY>``); then command-line flags. Every value
remembers where it came from, for ``check-config``.

This module is imported by ``--version``-cheap commands: it must not import psycopg or any web module.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import unquote

from openwatch import envfile
from openwatch.options import LOG_FORMATS, LOG_LEVELS

DEFAULT_CONFIG = Path("/etc/openwatch/openwatch.toml")
DEFAULT_SECRETS = Path("/etc/openwatch/secrets.env")

# section -> key -> (type, default)
SCHEMA: dict[str, dict[str, tuple[type, Any]]] = {
    "server": {
        "listen": (str, "0.0.0.0:8443"),
        "tls_cert": (str, "/etc/openwatch/tls/cert.pem"),
        "tls_key": (str, "/etc/openwatch/tls/key.pem"),
        # open client connections beyond this are closed on accept (the unit's LimitNOFILE leaves room)
        "max_connections": (int, 4000),
    },
    "database": {
        "dsn": (str, "postgres://openwatch@localhost:5432/openwatch?sslmode=disable"),
        "max_connections": (int, 10),
    },
    "logging": {
        "level": (str, "info"),
        "format": (str, "text"),
    },
    # migrate's pre-migration pg_dump (openwatch.migrations.backup); the shipped openwatch.toml sets dir
    "backup": {
        "dir": (str, ""),
        "keep": (int, 5),
        "pg_bindir": (str, ""),
    },
}
SECRET_KEYS = frozenset({("database", "dsn")})
# the flags that may override a key (no flag carries a secret)
FLAG_NAMES = {"server.listen": "--listen", "logging.level": "--log-level", "logging.format": "--log-format"}


def env_name(section: str, key: str) -> str:
    return f"OPENWATCH_{section.upper()}_{key.upper()}"


ENV_KEYS: dict[str, tuple[str, str]] = {
    env_name(section, key): (section, key) for section, keys in SCHEMA.items() for key in keys
}


class ConfigError(Exception):
    """One or more configuration problems, each a one-line message."""

    def __init__(self, problems: list[str]) -> None:
        super().__init__("; ".join(problems))
        self.problems = problems


@dataclass
class ServerConfig:
    listen: str = SCHEMA["server"]["listen"][1]
    tls_cert: str = SCHEMA["server"]["tls_cert"][1]
    tls_key: str = SCHEMA["server"]["tls_key"][1]
    max_connections: int = SCHEMA["server"]["max_connections"][1]


@dataclass
class DatabaseConfig:
    dsn: str = SCHEMA["database"]["dsn"][1]
    max_connections: int = SCHEMA["database"]["max_connections"][1]


@dataclass
class LoggingConfig:
    level: str = SCHEMA["logging"]["level"][1]
    format: str = SCHEMA["logging"]["format"][1]


@dataclass
class BackupConfig:
    dir: str = SCHEMA["backup"]["dir"][1]
    keep: int = SCHEMA["backup"]["keep"][1]
    pg_bindir: str = SCHEMA["backup"]["pg_bindir"][1]


@dataclass
class Config:
    server: ServerConfig = field(default_factory=ServerConfig)
    database: DatabaseConfig = field(default_factory=DatabaseConfig)
    logging: LoggingConfig = field(default_factory=LoggingConfig)
    backup: BackupConfig = field(default_factory=BackupConfig)
    # "section.key" -> where the value came from ("default", "/etc/openwatch/openwatch.toml:3", ...)
    sources: dict[str, str] = field(default_factory=dict)
    # non-fatal notes (ignored secrets.env lines, ...)
    warnings: list[str] = field(default_factory=list)

    def get(self, section: str, key: str) -> Any:
        return getattr(getattr(self, section), key)

    def set(self, section: str, key: str, value: Any, source: str) -> None:
        setattr(getattr(self, section), key, value)
        self.sources[f"{section}.{key}"] = source


# --------------------------------------------------------------------------------------------------
# Masking


_URL = re.compile(r"^(?P<scheme>[A-Za-z][A-Za-z0-9+.-]*)://(?P<rest>.*)\Z", re.S)
_KV_PASSWORD = re.compile(r"(?P<key>\bpassword\s*=\s*)(?P<value>'(?:[^'\\]|\\.)*'?|(?:\\.|[^\s\\])*)", re.S)
_QUERY_PASSWORD = re.compile(r"(?P<key>[?&]password=)(?P<value>[^&#]*)", re.I)


def mask_dsn(dsn: str) -> str:
    """The DSN with its password replaced by ``***``, URL or libpq key=value form, parseable or not.

    For a URL the userinfo runs from ``://`` to the *last* ``@``, so a password holding unencoded
    ``@ / # ?`` is still masked whole (over-masking is preferred to leaking). A ``password=`` query
    parameter or key=value pair is masked too.
    """
    m = _URL.match(dsn.strip())
    if m:
        scheme, rest = m.group("scheme"), m.group("rest")
        at = rest.rfind("@")
        if at >= 0:
            userinfo, tail = rest[:at], rest[at:]
            if ":" in userinfo:
                userinfo = userinfo.split(":", 1)[0] + ":***"
            rest = userinfo + tail
        rest = _QUERY_PASSWORD.sub(lambda q: q.group("key") + "***", rest)
        return f"{scheme}://{rest}"
    return _KV_PASSWORD.sub(lambda kv: kv.group("key") + "***", dsn)


def dsn_secrets(dsn: str) -> list[str]:
    """Every form in which the DSN's password could show up in a message (raw, decoded, pieces)."""
    found: list[str] = []
    m = _URL.match(dsn.strip())
    if m:
        rest = m.group("rest")
        at = rest.rfind("@")
        if at >= 0 and ":" in rest[:at]:
            found.append(rest[:at].split(":", 1)[1])
        found += [q.group("value") for q in _QUERY_PASSWORD.finditer(rest)]
    else:
        for kv in _KV_PASSWORD.finditer(dsn):
            raw = kv.group("value")
            found.append(raw)
            if raw.startswith("'"):
                found.append(re.sub(r"\\(.)", r"\1", raw.strip("'")))
    out: set[str] = set()
    for secret in found:
        for form in (secret, unquote(secret)):
            if form:
                out.add(form)
                out.update(piece for piece in re.split(r"\s+", form) if len(piece) >= 3)
    return sorted(out, key=len, reverse=True)


# A DSN written inside a message: ``scheme://user:password@`` and ``password=value`` (query or key=value).
_URL_USERINFO_IN_TEXT = re.compile(
    r"(?P<head>\b[A-Za-z][A-Za-z0-9+.-]*://[^\s:/@?#]*:)(?P<value>[^\s@]*)(?=@)"
)
_QUERY_PASSWORD_IN_TEXT = re.compile(r"(?P<key>[?&]password=)(?P<value>[^&#\s]*)", re.I)
_KV_PASSWORD_IN_TEXT = re.compile(
    r"(?P<key>(?<![?&\w])password\s*=\s*)(?P<value>'(?:[^'\\]|\\.)*'?|(?:\\.|[^\s\\])*)", re.S
)


def _bounded(secret: str) -> re.Pattern[str]:
    """``secret`` where it cannot be part of a longer word: a word character at either end of the secret
    must not touch another word character in the text (so password ``y`` leaves "query" alone)."""
    before = r"(?<!\w)" if re.match(r"\w", secret[0]) else ""
    after = r"(?!\w)" if re.match(r"\w", secret[-1]) else ""
    return re.compile(before + re.escape(secret) + after)


def scrub(text: str, dsn: str) -> str:
    """Remove the DSN's password from a message, e.g. a driver's error text.

    Two rules: (1) structurally, every DSN written in the text has its password masked
    (``scheme://user:***@``, ``?password=***``, ``password=***``), whatever the password is; (2) the
    password itself (raw, percent-decoded, and its whitespace-separated pieces of 3+ characters) is
    replaced wherever it stands as a token of its own, never inside a longer word.
    """
    text = _URL_USERINFO_IN_TEXT.sub(lambda m: m.group("head") + "***", text)
    text = _QUERY_PASSWORD_IN_TEXT.sub(lambda m: m.group("key") + "***", text)
    text = _KV_PASSWORD_IN_TEXT.sub(lambda m: m.group("key") + "***", text)
    for secret in dsn_secrets(dsn):
        if secret != "***":
            text = _bounded(secret).sub("***", text)
    return text


# --------------------------------------------------------------------------------------------------
# Loading


def _key_lines(text: str) -> dict[str, int]:
    """Best-effort map of "section.key" and "section" to the line where it is written."""
    lines: dict[str, int] = {}
    table = ""
    header = re.compile(r"^\s*\[\s*([^\]\[]+?)\s*\]")
    keyre = re.compile(r"""^\s*("[^"]*"|'[^']*'|[A-Za-z0-9_.\- ]+?)\s*=""")
    for number, line in enumerate(text.splitlines(), start=1):
        h = header.match(line)
        if h and not line.lstrip().startswith("[["):
            table = ".".join(p.strip().strip("\"'") for p in h.group(1).split("."))
            lines.setdefault(table, number)
            continue
        k = keyre.match(line)
        if k:
            name = ".".join(p.strip().strip("\"'") for p in k.group(1).split("."))
            full = f"{table}.{name}" if table else name
            lines.setdefault(full, number)
            lines.setdefault(full.split(".", 1)[0], number)
    return lines


def _type_name(value: Any) -> str:
    return {bool: "boolean", int: "integer", float: "float", str: "string", dict: "table", list: "array"}.get(
        type(value), type(value).__name__
    )


def _apply_toml(cfg: Config, path: Path, explicit: bool, problems: list[str]) -> None:
    try:
        raw = path.read_bytes()
    except FileNotFoundError:
        if explicit:
            problems.append(f"{path}: config file does not exist")
        return
    except IsADirectoryError:
        problems.append(f"{path}: is a directory, not a config file")
        return
    except PermissionError:
        problems.append(f"{path}: {DENIED}")
        return
    import tomllib  # only when there is a file to parse: the default config is often absent

    try:
        text = raw.decode("utf-8")
        data = tomllib.loads(text)
    except UnicodeDecodeError as exc:
        problems.append(f"{path}: not UTF-8 text ({exc.reason} at byte {exc.start})")
        return
    except tomllib.TOMLDecodeError as exc:
        msg = str(exc)
        m = re.search(r"\s*\(at line (\d+), column (\d+)\)$", msg)
        if m:
            problems.append(f"{path}:{m.group(1)}: malformed TOML: {msg[: m.start()]} (column {m.group(2)})")
        else:
            problems.append(f"{path}: malformed TOML: {msg}")
        return
    where = _key_lines(text)

    def loc(name: str) -> str:
        line = where.get(name) or where.get(name.split(".", 1)[0])
        return f"{path}:{line}" if line else str(path)

    for section, body in data.items():
        if section not in SCHEMA:
            problems.append(f"{loc(section)}: unknown section [{section}]")
            continue
        if not isinstance(body, dict):
            problems.append(f"{loc(section)}: {section} must be a table, got {_type_name(body)}")
            continue
        for key, value in body.items():
            name = f"{section}.{key}"
            if key not in SCHEMA[section]:
                problems.append(f"{loc(name)}: unknown key {name}")
                continue
            want = SCHEMA[section][key][0]
            if type(value) is not want:  # bool is not an int here
                problems.append(
                    f"{loc(name)}: {name} must be a {_type_name(want())}, got {_type_name(value)} {value!r}"
                )
                continue
            cfg.set(section, key, value, loc(name))


def _apply_env(cfg: Config, env: Mapping[str, str], origin: str, problems: list[str]) -> None:
    for name, (section, key) in ENV_KEYS.items():
        if name not in env:
            continue
        value: Any = env[name]
        if SCHEMA[section][key][0] is int:
            try:
                value = int(value.strip())
            except ValueError:
                shown = "***" if (section, key) in SECRET_KEYS else repr(value)
                problems.append(f"{origin} {name}: must be an integer, got {shown}")
                continue
        cfg.set(section, key, value, f"{origin} {name}")


def read_secrets(path: Path, explicit: bool) -> envfile.EnvFile | None:
    """The parsed secrets file, None when the default one is absent; raises ConfigError otherwise."""
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        if explicit:
            raise ConfigError([f"{path}: secrets file does not exist"]) from None
        return None
    except PermissionError:
        raise ConfigError([f"{path}: {DENIED}"]) from None
    except IsADirectoryError:
        raise ConfigError([f"{path}: is a directory, not a secrets file"]) from None
    except UnicodeDecodeError as exc:
        raise ConfigError([f"{path}: not UTF-8 text (byte {exc.start})"]) from None
    return envfile.parse(text)


def load(
    config_path: str | os.PathLike[str] | None = None,
    secrets_path: str | os.PathLike[str] | None = None,
    environ: Mapping[str, str] | None = None,
    flags: Mapping[str, Any] | None = None,
) -> Config:
    """Resolve every layer; raises ConfigError listing every problem found while loading.

    ``flags`` maps "section.key" to a value given on the command line (None means not given).
    Semantic validation (listen address, DSN form, files) is ``validate()``'s job.
    """
    env = os.environ if environ is None else environ
    cfg = Config()
    for section, keys in SCHEMA.items():
        for key in keys:
            cfg.sources[f"{section}.{key}"] = "default"
    problems: list[str] = []

    _apply_toml(cfg, Path(config_path or DEFAULT_CONFIG), config_path is not None, problems)

    spath = Path(secrets_path or DEFAULT_SECRETS)
    try:
        secrets = read_secrets(spath, secrets_path is not None)
    except ConfigError as exc:
        problems += exc.problems
        secrets = None
    ignored: list[tuple[int, str]] = []
    notes: list[tuple[int, str]] = []  # (line, warning) for secrets.env, reported in line order
    if secrets is not None:
        ignored = secrets.ignored
        ours = {k: v for k, v in secrets.values.items() if k.startswith("OPENWATCH_")}
        for k in ours:
            if k not in ENV_KEYS:
                line = secrets.lines[k]
                notes.append((line, f"{spath}:{line}: {k} is not a configuration key; ignored"))
        _apply_env(cfg, ours, "secrets", problems)
        for k, (section, key) in ENV_KEYS.items():
            if k in ours and cfg.sources[f"{section}.{key}"] == f"secrets {k}":
                cfg.sources[f"{section}.{key}"] = f"{spath}:{secrets.lines[k]} {k}"

    _apply_env(cfg, env, "environment", problems)

    for name, value in (flags or {}).items():
        if value is not None:
            section, key = name.split(".", 1)
            cfg.set(section, key, value, "flag " + FLAG_NAMES.get(name, name))

    dsn_key = env_name("database", "dsn")
    for line, written in ignored:
        if cfg.sources["database.dsn"] == "default" and dsn_key in re.split(r"[^A-Za-z0-9_]+", written):
            # the operator meant to set the DSN: connecting to the built-in default instead would be wrong
            problems.append(
                f"{spath}:{line}: this {dsn_key} line is ignored ({written!r} is not NAME=value; systemd "
                f"ignores it too), so openwatch would use the built-in default {mask_dsn(cfg.database.dsn)}: "
                f"write it as {dsn_key}=..."
            )
        else:
            notes.append(
                (line, f"{spath}:{line}: ignored (not NAME=value; systemd ignores it too): {written}")
            )
    cfg.warnings += [text for _, text in sorted(notes)]

    if problems:
        raise ConfigError(_one_denial(problems))
    return cfg


DENIED = "permission denied; run as root or the openwatch user"


def _one_denial(problems: list[str]) -> list[str]:
    """A user who may read neither file gets one line naming both, not one line per file."""
    denied = [p.removesuffix(f": {DENIED}") for p in problems if p.endswith(f": {DENIED}")]
    if len(denied) < 2:
        return problems
    rest = [p for p in problems if not p.endswith(f": {DENIED}")]
    return [f"{', '.join(denied)}: {DENIED}", *rest]


# --------------------------------------------------------------------------------------------------
# Validation


_HEX = frozenset("0123456789abcdefABCDEF")
_NOT_KV = "database.dsn: neither a postgres:// URL nor a libpq key=value string"


def _escape_problem(text: str) -> str | None:
    """libpq's URI decoding rules: ``%`` takes two hex digits, and ``%00`` is forbidden."""
    i = text.find("%")
    while i >= 0:
        pair = text[i + 1 : i + 3]
        if len(pair) < 2 or not set(pair) <= _HEX:
            return "an invalid percent escape ('%' not followed by two hex digits; write a literal % as %25)"
        if pair == "00":
            return "the forbidden percent escape %00"
        i = text.find("%", i + 3)
    return None


def _port_ok(port: str) -> bool:
    return port.isascii() and port.isdigit() and 0 < int(port) <= 65535


def _url_problem(rest: str) -> str | None:
    """What libpq would refuse in ``postgres://<rest>`` (or fail to connect with), naming the part only:
    the caller shows the masked DSN, never a piece that could be the password."""
    main, _, query = rest.partition("?")
    # libpq: the userinfo runs to the first "@" that comes before any "/"
    if "@" not in main and "@" in query.partition("=")[0].partition("&")[0]:
        return "an '@' after a '?': percent-encode '?' as %3F in the user name or password"
    slash, at = main.find("/"), main.find("@")
    if 0 <= slash < main.rfind("@"):
        return (
            "an '@' after a '/': percent-encode '/' as %2F and '@' as %40 in the user name or password "
            "(and in the database name)"
        )
    if at >= 0:
        user, _, password = main[:at].partition(":")
        if p := _escape_problem(user):
            return f"the user name has {p}"
        if p := _escape_problem(password):
            return f"the password has {p}"
        main = main[at + 1 :]
    hostspec, _, dbname = main.partition("/")
    if "@" in hostspec:
        return "more than one '@' before the host: percent-encode '@' in the user name or password as %40"
    for host in hostspec.split(","):
        if host.startswith("["):
            close = host.find("]")
            if close < 0:
                return "an IPv6 host has no closing ']'"
            if close == 1:
                return "an IPv6 host between [ ] is empty"
            name, after = host[1:close], host[close + 1 :]
            if after and not after.startswith(":"):
                return "unexpected text after an IPv6 host's ']' (expected ':port')"
            port = after[1:] if after else ""
            has_port = bool(after)
        else:
            name, colon, port = host.partition(":")
            has_port = bool(colon)
        if p := _escape_problem(name):
            return f"the host has {p}"
        decoded = unquote(name)
        if any(ch.isspace() or ord(ch) < 32 for ch in decoded):
            return "the host name contains whitespace or a control character"
        if has_port:
            if p := _escape_problem(port):
                return f"the port has {p}"
            if port and not _port_ok(unquote(port)):
                return "the port is not a number from 1 to 65535"
    if p := _escape_problem(dbname):
        return f"the database name has {p}"
    for param in query.split("&"):
        if not param:
            continue
        key, eq, value = param.partition("=")
        if not eq:
            return "a query parameter has no '=' (write key=value pairs separated by '&')"
        if "=" in value:
            return f"the query parameter {key!r} has a second '='; percent-encode it as %3D"
        if p := _escape_problem(key):
            return f"a query parameter name has {p}"
        if p := _escape_problem(value):
            return f"the value of the query parameter {key!r} has {p}"
        if unquote(key) == "port" and not all(not v or _port_ok(v) for v in unquote(value).split(",")):
            return "the port query parameter is not a number from 1 to 65535"
    return None


def _kv_parse(text: str) -> dict[str, str] | str:
    """libpq's key=value syntax (conninfo_parse): the pairs, or why the string is not one."""
    out: dict[str, str] = {}
    i, n = 0, len(text)
    while True:
        while i < n and text[i].isspace():
            i += 1
        if i >= n:
            return out
        start = i
        while i < n and text[i] != "=" and not text[i].isspace():
            i += 1
        key = text[start:i]
        while i < n and text[i].isspace():
            i += 1
        if i >= n or text[i] != "=" or not key:
            return "a word without '=' (write key=value pairs separated by spaces)"
        i += 1
        while i < n and text[i].isspace():
            i += 1
        value: list[str] = []
        if i < n and text[i] == "'":
            i += 1
            while True:
                if i >= n:
                    return "an unterminated quoted value"
                if text[i] == "\\" and i + 1 < n:
                    value.append(text[i + 1])
                    i += 2
                elif text[i] == "'":
                    i += 1
                    break
                else:
                    value.append(text[i])
                    i += 1
        else:
            while i < n and not text[i].isspace():
                if text[i] == "\\" and i + 1 < n:
                    value.append(text[i + 1])
                    i += 2
                else:
                    value.append(text[i])
                    i += 1
        out[key] = "".join(value)


def dsn_problem(dsn: str) -> str | None:
    """Why the DSN is not a usable PostgreSQL connection string, or None. Never echoes the password:
    a problem names the part at fault and shows the DSN masked (or nothing of it, when it is not even
    a parseable key=value string, since then no password can be located)."""
    text = dsn.strip()
    if not text:
        return "database.dsn is empty"
    m = _URL.match(text)
    if m:
        if m.group("scheme") not in ("postgres", "postgresql"):
            return f"database.dsn: scheme {m.group('scheme')}:// is not postgres:// or postgresql://"
        if p := _url_problem(m.group("rest")):
            return f"database.dsn: {p} in {mask_dsn(text)}"
        return None
    if "://" in text:
        return "database.dsn: not a postgres:// URL"
    pairs = _kv_parse(text)
    if isinstance(pairs, str):
        return f"{_NOT_KV}: {pairs}"
    if not pairs:
        return _NOT_KV
    ports = pairs.get("port", "")
    if not all(not v or _port_ok(v) for v in ports.split(",")):
        return f"database.dsn: port is not a number from 1 to 65535 in {mask_dsn(text)}"
    return None


def listen_problem(listen: str) -> str | None:
    m = re.fullmatch(r"(?:\[(?P<v6>[0-9A-Fa-f:.%\w]+)\]|(?P<host>[^:\[\]\s]*)):(?P<port>\d{1,5})", listen)
    if not m or not 0 < int(m.group("port")) <= 65535:
        return f"server.listen: {listen!r} is not host:port (e.g. 0.0.0.0:8443 or [::]:8443)"
    return None


def validate(cfg: Config, *, check_files: bool = True) -> list[str]:
    """Every semantic problem, one line each, naming where the bad value came from."""
    problems: list[str] = []

    def src(name: str) -> str:
        return f" (from {cfg.sources.get(name, 'default')})"

    if p := listen_problem(cfg.server.listen):
        problems.append(p + src("server.listen"))
    if p := dsn_problem(cfg.database.dsn):
        problems.append(p + src("database.dsn"))
    if not 1 <= cfg.server.max_connections <= 60000:
        problems.append(
            f"server.max_connections must be between 1 and 60000, got {cfg.server.max_connections}"
            + src("server.max_connections")
        )
    if cfg.database.max_connections < 1:
        problems.append(
            f"database.max_connections must be at least 1, got {cfg.database.max_connections}"
            + src("database.max_connections")
        )
    if cfg.backup.keep < 1:
        problems.append(f"backup.keep must be at least 1, got {cfg.backup.keep}" + src("backup.keep"))
    if cfg.logging.level not in LOG_LEVELS:
        problems.append(
            f"logging.level: {cfg.logging.level!r} is not one of {', '.join(LOG_LEVELS)}"
            + src("logging.level")
        )
    if cfg.logging.format not in LOG_FORMATS:
        problems.append(
            f"logging.format: {cfg.logging.format!r} is not one of {', '.join(LOG_FORMATS)}"
            + src("logging.format")
        )
    if check_files:
        for key in ("tls_cert", "tls_key"):
            path = getattr(cfg.server, key)
            if not path:
                problems.append(f"server.{key} is empty" + src(f"server.{key}"))
                continue
            try:
                with open(path, "rb") as fh:
                    fh.read(1)
            except FileNotFoundError:
                problems.append(f"server.{key}: {path} does not exist" + src(f"server.{key}"))
            except IsADirectoryError:
                problems.append(f"server.{key}: {path} is a directory" + src(f"server.{key}"))
            except PermissionError:
                problems.append(
                    f"server.{key}: {path} is not readable; run as root or the openwatch user"
                    + src(f"server.{key}")
                )
    return problems


def summary(cfg: Config) -> str:
    """The resolved configuration, secrets masked, with where each value came from."""
    out: list[str] = []
    for section, keys in SCHEMA.items():
        if out:
            out.append("")
        out.append(f"[{section}]")
        width = max(len(k) for k in keys)
        for key in keys:
            value = cfg.get(section, key)
            shown = mask_dsn(value) if (section, key) in SECRET_KEYS else value
            text = f'"{shown}"' if isinstance(shown, str) else str(shown)
            out.append(f"  {key:<{width}} = {text}    # {cfg.sources.get(f'{section}.{key}', 'default')}")
    return "\n".join(out)
