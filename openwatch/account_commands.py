"""``openwatch user {create,list,disable}`` and ``openwatch token {create,list,revoke}``.

A password is read from the terminal (twice) or, when stdin is not a terminal, as stdin's first line:
never from argv, where any local user can read it. A token is printed once, on stdout, alone.
"""

from __future__ import annotations

import argparse
import getpass
import sys
from collections.abc import Callable
from typing import TextIO

import psycopg

from openwatch import accounts, config


class Failure(Exception):
    """One line for stderr; the caller prefixes the command and exits 1."""


def read_password(stdin: TextIO) -> str:
    if stdin.isatty():
        first = getpass.getpass("Password: ")
        if getpass.getpass("Repeat it: ") != first:
            raise Failure("the passwords differ")
        return first
    line = stdin.readline()
    if not line:
        raise Failure("no password on stdin (send it as the first line)")
    return line.rstrip("\r\n")


def _with_db(dsn: str, work: Callable[[psycopg.Connection], int]) -> int:
    try:
        with psycopg.connect(dsn, autocommit=True, connect_timeout=10) as conn:
            return work(conn)
    except accounts.AccountError as exc:
        raise Failure(str(exc)) from None
    except psycopg.errors.UndefinedTable:
        raise Failure(f"{config.mask_dsn(dsn)}: the schema is missing; run 'openwatch migrate'") from None
    except psycopg.Error as exc:
        reason = config.scrub(" ".join(str(exc).split()) or type(exc).__name__, dsn)
        raise Failure(f"{config.mask_dsn(dsn)}: {reason}") from None


def user_create(args: argparse.Namespace, dsn: str) -> int:
    password = read_password(sys.stdin)
    if problem := accounts.password_problem(password):
        raise Failure(problem)

    def work(conn: psycopg.Connection) -> int:
        accounts.create_user(conn, args.name, args.role, password)
        print(f"created user {args.name} (role {args.role})")
        return 0

    return _with_db(dsn, work)


def user_list(args: argparse.Namespace, dsn: str) -> int:
    def work(conn: psycopg.Connection) -> int:
        rows = accounts.list_users(conn)
        print(f"{'USER':<24} {'ROLES':<20} {'STATE':<9} LAST LOGIN")
        for name, roles, enabled, last in rows:
            state = "enabled" if enabled else "disabled"
            print(f"{name:<24} {roles or '-':<20} {state:<9} {last.isoformat() if last else '-'}")
        return 0

    return _with_db(dsn, work)


def user_disable(args: argparse.Namespace, dsn: str) -> int:
    def work(conn: psycopg.Connection) -> int:
        accounts.disable_user(conn, args.name, args.reason)
        print(f"disabled user {args.name}; their sessions and tokens are revoked")
        return 0

    return _with_db(dsn, work)


def token_create(args: argparse.Namespace, dsn: str) -> int:
    try:
        expires = accounts.parse_expiry(args.expires) if args.expires else None
    except accounts.AccountError as exc:
        raise Failure(str(exc)) from None

    def work(conn: psycopg.Connection) -> int:
        token, token_id = accounts.create_token(conn, args.user, args.name, expires)
        print(f"token {token_id} for {args.user} ({args.name}); shown once, store it now:", file=sys.stderr)
        print(token, flush=True)
        return 0

    return _with_db(dsn, work)


def token_list(args: argparse.Namespace, dsn: str) -> int:
    def work(conn: psycopg.Connection) -> int:
        print(f"{'ID':<36} {'USER':<16} {'NAME':<16} {'PREFIX':<12} {'STATE':<8} EXPIRES")
        for tid, user, name, prefix, _created, expires, _used, state in accounts.list_tokens(conn, args.user):
            until = expires.isoformat() if expires else "never"
            print(f"{tid!s:<36} {user:<16} {name:<16} {prefix:<12} {state:<8} {until}")
        return 0

    return _with_db(dsn, work)


def token_revoke(args: argparse.Namespace, dsn: str) -> int:
    def work(conn: psycopg.Connection) -> int:
        token_id = accounts.revoke_token(conn, args.token)
        print(f"revoked token {token_id}")
        return 0

    return _with_db(dsn, work)
