"""The command line: ``openwatch [options] {serve,migrate,check-config}``.

Every subcommand is a function returning an exit code: 0 success, 1 failure (one line on stderr,
prefixed ``openwatch <command>: ``), 2 usage error (argparse). Each command imports what it uses and no
more (tests/test_import_budget.py): ``--version`` only argparse and the migration names, ``migrate list``
the migration set, ``check-config`` the config; psycopg only for the database commands, and only
``serve`` imports ``openwatch.server``.
"""

from __future__ import annotations

import sys

from openwatch import buildinfo, options, runtime

TYPE_CHECKING = False  # typing.TYPE_CHECKING without importing typing (mypy treats the name alike)
if TYPE_CHECKING:
    import argparse
    from collections.abc import Sequence
    from types import ModuleType
    from typing import TextIO

    from openwatch import config
    from openwatch.migrations import backup, source

DEFAULT_TIMEOUT = 60.0


class CommandError(Exception):
    """A failure to report as lines on stderr (each prefixed with the command) and exit 1."""

    def __init__(self, *lines: str) -> None:
        super().__init__(lines[0] if lines else "")
        self.lines = list(lines)


def parse_duration(text: str) -> float:
    """Seconds from ``60``, ``2.5``, ``500ms``, ``30s``, ``2m`` or ``1h``; positive."""
    import argparse
    import re

    m = re.fullmatch(r"\s*(\d+(?:\.\d*)?|\.\d+)\s*(ms|s|m|h)?\s*", text)
    if not m:
        raise argparse.ArgumentTypeError(f"invalid duration {text!r} (use seconds, or e.g. 90s, 2m)")
    value = float(m.group(1)) * {"ms": 0.001, "s": 1, "m": 60, "h": 3600, None: 1}[m.group(2)]
    if value <= 0:
        raise argparse.ArgumentTypeError("the timeout must be positive")
    return value


def _common_options() -> argparse.ArgumentParser:
    """Options accepted before or after the subcommand (SUPPRESS: absent unless given)."""
    import argparse

    p = argparse.ArgumentParser(add_help=False)
    g = p.add_argument_group("configuration")
    g.add_argument("--config", metavar="PATH", default=argparse.SUPPRESS, help="TOML config file")
    g.add_argument(
        "--secrets", metavar="PATH", default=argparse.SUPPRESS, help="EnvironmentFile with secrets"
    )
    g.add_argument("--listen", metavar="HOST:PORT", default=argparse.SUPPRESS, help="override server.listen")
    g.add_argument(
        "--log-level", choices=options.LOG_LEVELS, default=argparse.SUPPRESS, help="override logging.level"
    )
    g.add_argument(
        "--log-format", choices=options.LOG_FORMATS, default=argparse.SUPPRESS, help="override logging.format"
    )
    return p


def _migrate_options(*, timeout: bool = True) -> argparse.ArgumentParser:
    import argparse

    p = argparse.ArgumentParser(add_help=False)
    p.add_argument(
        "--dir",
        metavar="PATH",
        default=argparse.SUPPRESS,
        help="use the goose files in PATH, not the embedded set",
    )
    if timeout:
        p.add_argument(
            "--timeout",
            type=parse_duration,
            metavar="DURATION",
            default=argparse.SUPPRESS,
            help="bound for the whole command, lock wait included (default 60s)",
        )
    return p


def build_parser() -> argparse.ArgumentParser:
    import argparse

    common = _common_options()
    parser = argparse.ArgumentParser(
        prog="openwatch",
        parents=[common],
        description="OpenWatch compliance server and goose-compatible PostgreSQL migrator.",
        epilog=(
            "configuration layering (highest precedence first): flags > environment "
            "(OPENWATCH_<SECTION>_<KEY>) > secrets.env > openwatch.toml > defaults"
        ),
    )
    parser.add_argument("--version", action="store_true", help="print build information and exit")
    sub = parser.add_subparsers(dest="command", metavar="{serve,migrate,check-config,user,token}")

    serve = sub.add_parser("serve", parents=[common], help="run the HTTPS API and UI")
    serve.set_defaults(func=cmd_serve)

    check = sub.add_parser("check-config", parents=[common], help="validate and print the resolved config")
    check.set_defaults(func=cmd_check_config)

    migrate = sub.add_parser(
        "migrate",
        parents=[common, _migrate_options()],
        help="apply pending migrations (goose v3 compatible)",
        description="Apply every pending Up migration, each in its own transaction.",
    )
    migrate.add_argument(
        "--allow-missing", action="store_true", help="apply versions missing below the database version first"
    )
    migrate.add_argument(
        "--dry-run", action="store_true", help="print the SQL that would run; change nothing"
    )
    saving = migrate.add_mutually_exclusive_group()
    saving.add_argument(
        "--backup-dir",
        metavar="DIR",
        default=argparse.SUPPRESS,
        help="pg_dump the database into DIR before migrating it (overrides [backup] dir)",
    )
    saving.add_argument("--no-backup", action="store_true", help="migrate without the pre-migration backup")
    migrate.set_defaults(func=cmd_migrate)
    actions = migrate.add_subparsers(dest="action", metavar="{status,list}")
    status = actions.add_parser(
        "status", parents=[common, _migrate_options()], help="applied/pending per file (read-only)"
    )
    status.set_defaults(func=cmd_migrate_status)
    listing = actions.add_parser(
        "list", parents=[_migrate_options(timeout=False)], help="the embedded migrations (no database)"
    )
    listing.add_argument("--json", action="store_true", help="machine-readable output")
    listing.set_defaults(func=cmd_migrate_list)
    _account_parsers(sub, common)
    return parser


def _account_parsers(
    sub: argparse._SubParsersAction[argparse.ArgumentParser], common: argparse.ArgumentParser
) -> None:
    """``user`` and ``token``: accounts for the API (see openwatch.account_commands)."""
    user = sub.add_parser("user", parents=[common], help="manage the API's users")
    users = user.add_subparsers(dest="action", metavar="{create,list,disable}", required=True)
    create = users.add_parser(
        "create", parents=[common], help="add a user; the password is read from the terminal or stdin"
    )
    create.add_argument("name")
    create.add_argument("--role", required=True, choices=("admin", "operator", "auditor", "viewer"))
    users.add_parser("list", parents=[common], help="every user, its roles and state")
    disable = users.add_parser(
        "disable", parents=[common], help="disable a user, revoking sessions and tokens"
    )
    disable.add_argument("name")
    disable.add_argument("--reason", default=None)
    user.set_defaults(func=cmd_account)

    token = sub.add_parser("token", parents=[common], help="manage API tokens")
    tokens = token.add_subparsers(dest="action", metavar="{create,list,revoke}", required=True)
    tcreate = tokens.add_parser("create", parents=[common], help="a new token, printed once")
    tcreate.add_argument("--user", required=True)
    tcreate.add_argument("--name", required=True, help="a label, e.g. what uses the token")
    tcreate.add_argument("--expires", metavar="DURATION", default=None, help="e.g. 90d, 12h (default: never)")
    tlist = tokens.add_parser("list", parents=[common], help="tokens (never their secret)")
    tlist.add_argument("--user", default=None)
    trevoke = tokens.add_parser("revoke", parents=[common], help="revoke a token by id or ow_ prefix")
    trevoke.add_argument("token")
    token.set_defaults(func=cmd_account)


def main(argv: Sequence[str] | None = None) -> int:
    args_given = sys.argv[1:] if argv is None else list(argv)
    if args_given == ["--version"]:
        # What scripts and configuration management run on every host: argparse would answer the same,
        # but building the parser imports argparse, gettext, locale and shutil (bz2, lzma), several
        # times the cost of printing the version (bench/startup.py).
        return cmd_version(sys.stdout)
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.version:
        return cmd_version(sys.stdout)
    if getattr(args, "func", None) is None:
        parser.print_usage(sys.stderr)
        print(
            "openwatch: error: a subcommand is required (serve, migrate, check-config, user, token)",
            file=sys.stderr,
        )
        return 2
    prog = _prog(args)
    runtime.prepare()  # frozen: the bundled OpenSSL and psycopg must be set up before any use
    try:
        return int(args.func(args))
    except CommandError as exc:
        for line in exc.lines:
            print(f"{prog}: {line}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print(f"{prog}: interrupted", file=sys.stderr)
        return 130


# --------------------------------------------------------------------------------------------------
# helpers


def _prog(args: argparse.Namespace) -> str:
    return "openwatch " + args.command + (f" {args.action}" if getattr(args, "action", None) else "")


def _print_warnings(args: argparse.Namespace, cfg: config.Config) -> None:
    """The configuration's non-fatal notes (ignored secrets.env lines, ...), one line each on stderr."""
    for warning in cfg.warnings:
        print(f"{_prog(args)}: warning: {warning}", file=sys.stderr, flush=True)


def _load_config(args: argparse.Namespace) -> config.Config:
    from openwatch import config

    flags = {
        "server.listen": getattr(args, "listen", None),
        "logging.level": getattr(args, "log_level", None),
        "logging.format": getattr(args, "log_format", None),
    }
    try:
        return config.load(getattr(args, "config", None), getattr(args, "secrets", None), None, flags)
    except config.ConfigError as exc:
        raise CommandError(*(f"config: {p}" for p in exc.problems)) from None


def _migration_set(args: argparse.Namespace) -> source.MigrationSet:
    from openwatch.migrations import source

    try:
        directory = getattr(args, "dir", None)
        return source.from_dir(directory) if directory else source.embedded()
    except source.SourceError as exc:
        raise CommandError(str(exc)) from None


# --------------------------------------------------------------------------------------------------
# commands


def cmd_version(out: TextIO) -> int:
    from openwatch.migrations import discover  # names only: nothing read, nothing hashed

    try:
        found = discover.scan_embedded()
        schema = f"{found[-1][0]} ({len(found)} migrations)"
    except discover.SourceError as exc:
        schema = f"unavailable ({exc})"
    print(f"openwatch {buildinfo.version}", file=out)
    print(f"  schema:     {schema}", file=out)
    print(f"  commit:     {buildinfo.commit}", file=out)
    print(f"  built:      {buildinfo.build_time}", file=out)
    for name, version in buildinfo.runtime().items():
        print(f"  {name + ':':<11} {version}", file=out)
    return 0


def cmd_check_config(args: argparse.Namespace) -> int:
    from openwatch import config

    cfg = _load_config(args)
    problems = config.validate(cfg, check_files=True)
    if problems:
        raise CommandError(*problems)
    _print_warnings(args, cfg)
    print(config.summary(cfg))
    print()
    print("config is valid")
    return 0


def cmd_serve(args: argparse.Namespace) -> int:
    from openwatch import config

    cfg = _load_config(args)
    problems = config.validate(cfg, check_files=True)
    if problems:
        raise CommandError(*problems)
    _print_warnings(args, cfg)
    from openwatch.server import run

    return run(cfg)


def cmd_account(args: argparse.Namespace) -> int:
    dsn = _dsn_for_migrate(args)
    try:  # psycopg and argon2 load here only
        from openwatch import account_commands as commands
    except ImportError as exc:
        raise CommandError(f"cannot load the account modules: {_first_line(exc)}") from None
    try:
        return int(getattr(commands, f"{args.command}_{args.action}")(args, dsn))
    except commands.Failure as exc:
        raise CommandError(str(exc)) from None


def cmd_migrate_list(args: argparse.Namespace) -> int:
    mset = _migration_set(args)
    if args.json:
        import json

        doc = {
            "schema_version": mset.head,
            "count": len(mset.files),
            "migrations": [{"version": f.version, "name": f.name, "sha256": f.sha256} for f in mset.files],
            "runtime": buildinfo.runtime(),
        }
        print(json.dumps(doc, indent=2))
        return 0
    width = max(len(str(f.version)) for f in mset.files)
    for f in mset.files:
        print(f"{f.version:>{width}}  {f.name}  {f.sha256}")
    print(f"{len(mset.files)} migrations, schema version {mset.head}")
    return 0


def _config_for_migrate(args: argparse.Namespace) -> config.Config:
    from openwatch import config

    cfg = _load_config(args)
    problems = config.validate(cfg, check_files=False)
    if problems:
        raise CommandError(*(f"config: {p}" for p in problems))
    _print_warnings(args, cfg)
    return cfg


def _dsn_for_migrate(args: argparse.Namespace) -> str:
    return _config_for_migrate(args).database.dsn


def _backup_settings(args: argparse.Namespace, cfg: config.Config) -> backup.Settings:
    from pathlib import Path

    from openwatch.migrations import backup

    directory = getattr(args, "backup_dir", None) or cfg.backup.dir
    return backup.Settings(
        directory=Path(directory) if directory else None,
        keep=cfg.backup.keep,
        pg_bindir=cfg.backup.pg_bindir or None,
        disabled=bool(getattr(args, "no_backup", False)),
    )


def _runner() -> ModuleType:
    """The runner, importing psycopg: a driver that cannot load is one line, not a traceback."""
    try:
        from openwatch.migrations import runner
    except ImportError as exc:
        raise CommandError(f"cannot load the PostgreSQL driver (psycopg): {_first_line(exc)}") from None
    return runner


def _first_line(exc: BaseException) -> str:
    return (str(exc).strip().splitlines() or [type(exc).__name__])[0]


def cmd_migrate(args: argparse.Namespace) -> int:
    mset = _migration_set(args)
    cfg = _config_for_migrate(args)
    dsn = cfg.database.dsn
    runner = _runner()

    timeout = getattr(args, "timeout", DEFAULT_TIMEOUT)
    try:
        if args.dry_run:
            return runner.plan(
                mset, dsn, timeout=timeout, allow_missing=args.allow_missing, out=sys.stdout, err=sys.stderr
            )
        return runner.apply(
            mset,
            dsn,
            timeout=timeout,
            allow_missing=args.allow_missing,
            out=sys.stdout,
            err=sys.stderr,
            backup_settings=_backup_settings(args, cfg),
        )
    except runner.MigrateError as exc:
        raise CommandError(*exc.lines) from None


def cmd_migrate_status(args: argparse.Namespace) -> int:
    mset = _migration_set(args)
    dsn = _dsn_for_migrate(args)
    runner = _runner()

    try:
        return runner.status(
            mset, dsn, timeout=getattr(args, "timeout", DEFAULT_TIMEOUT), out=sys.stdout, err=sys.stderr
        )
    except runner.MigrateError as exc:
        raise CommandError(*exc.lines) from None
