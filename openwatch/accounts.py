"""Users, API tokens and the audit trail, over the schema's ``users``, ``roles``, ``user_roles``,
``api_tokens`` and ``audit_events`` tables. Shared by ``openwatch user|token`` and by ``serve``.

Passwords are stored as argon2id (the only memory-hard form ``users.password_hash`` accepts); tokens
and session cookies only as their SHA-256: a database dump yields no usable credential. Imported only by
the commands that need it: argon2's native module costs nothing to ``--version`` or ``migrate``.
"""

from __future__ import annotations

import hashlib
import json
import re
import secrets
import string
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import argon2
import psycopg

# argon2-cffi's defaults are RFC 9106's second recommended profile (t=3, 64 MiB, p=4): ~50 ms a check.
_HASHER = argon2.PasswordHasher()
_DUMMY_HASH: list[str] = []  # made on first use (a hash costs 64 MiB and ~50 ms: not at start-up)
TOKEN_ALPHABET = string.ascii_letters + string.digits
TOKEN_PREFIX_LEN = 8  # characters after "ow_" kept in api_tokens.token_prefix, to recognise a token
TOKEN_SECRET_LEN = 40  # alphanumeric characters: ~238 bits
PASSWORD_MIN = 12  # auth_policy's default password_min_length
PASSWORD_MAX = 1024  # argon2 accepts any length; a bound keeps a login request's cost fixed
ROLES = ("admin", "operator", "auditor", "viewer")
USERNAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.@-]{0,127}\Z")


class AccountError(Exception):
    """A refusal to report as one line (unknown user, weak password, ...)."""


@dataclass(frozen=True)
class Principal:
    """Who a request acts as, with the permission codes of the user's roles."""

    user_id: str
    username: str
    roles: tuple[str, ...]
    permissions: frozenset[str]
    via: str  # "token" or "session"
    credential_id: str  # api_tokens.id or user_sessions.id


def sha256_hex(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


def hash_password(password: str) -> str:
    return _HASHER.hash(password)


def verify_password(stored: str | None, password: str) -> bool:
    """True if ``password`` matches; a missing hash still costs one verification (no timing oracle)."""
    if len(password) > PASSWORD_MAX:
        return False
    if stored is None and not _DUMMY_HASH:
        _DUMMY_HASH.append(_HASHER.hash(secrets.token_urlsafe(16)))
    try:
        # an unknown user still costs one verification, so the answer takes as long as for a known one
        return _HASHER.verify(stored or _DUMMY_HASH[0], password) and stored is not None
    except (argon2.exceptions.VerificationError, argon2.exceptions.InvalidHashError):
        return False


def password_problem(password: str) -> str | None:
    if len(password) < PASSWORD_MIN:
        return f"the password must have at least {PASSWORD_MIN} characters"
    if len(password) > PASSWORD_MAX:
        return f"the password must have at most {PASSWORD_MAX} characters"
    return None


def new_token() -> tuple[str, str, str]:
    """(token, its api_tokens.token_prefix, its SHA-256): the token itself is shown once, never stored."""
    body = "".join(secrets.choice(TOKEN_ALPHABET) for _ in range(TOKEN_SECRET_LEN))
    token = f"ow_{body}"
    return token, token[: 3 + TOKEN_PREFIX_LEN], sha256_hex(token)


def looks_like_token(text: str) -> bool:
    return len(text) == 3 + TOKEN_SECRET_LEN and text.startswith("ow_") and text[3:].isalnum()


def parse_expiry(text: str) -> timedelta:
    """``90d``, ``12h``, ``30m`` or ``2w`` as a positive timedelta."""
    m = re.fullmatch(r"([1-9][0-9]{0,5})([mhdw])", text.strip())
    if not m:
        raise AccountError(f"invalid expiry {text!r}: use e.g. 90d, 12h, 30m or 2w")
    unit = {"m": "minutes", "h": "hours", "d": "days", "w": "weeks"}[m.group(2)]
    return timedelta(**{unit: int(m.group(1))})


# -- the audit trail ------------------------------------------------------------------------------


def audit(
    conn: psycopg.Connection,
    action: str,
    *,
    actor: Principal | None = None,
    actor_name: str | None = None,
    ip: str | None = None,
    target_type: str | None = None,
    target_id: str | None = None,
    outcome: str = "success",
    details: dict[str, Any] | None = None,
) -> None:
    """One append-only audit_events row; category from the action's first segment (as 0002 backfills)."""
    head = action.split(".", 1)[0]
    category = {"auth": "auth", "session": "auth", "token": "auth", "host": "host", "user": "user"}.get(
        head, "system"
    )
    severity = {"denied": "warning", "failure": "warning"}.get(outcome, "info")
    conn.execute(
        "INSERT INTO audit_events (actor_id, actor_name, actor_ip, action, target_type, target_id,"
        " outcome, details, category, severity) VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s)",
        (
            actor.user_id if actor else None,
            actor.username if actor else (actor_name or "system"),
            ip,
            action,
            target_type,
            target_id,
            outcome,
            json.dumps(details or {}),
            category,
            severity,
        ),
    )


# -- users ------------------------------------------------------------------------------------------


def create_user(conn: psycopg.Connection, username: str, role: str, password: str) -> str:
    if not USERNAME.match(username):
        raise AccountError(
            f"invalid user name {username!r}: letters, digits and _ . @ -, starting with a letter or digit"
        )
    if role not in ROLES:
        raise AccountError(f"unknown role {role!r}: one of {', '.join(ROLES)}")
    if problem := password_problem(password):
        raise AccountError(problem)
    digest = hash_password(password)
    with conn.transaction():
        if conn.execute("SELECT 1 FROM users WHERE lower(username) = lower(%s)", (username,)).fetchone():
            raise AccountError(f"user {username!r} already exists")
        row = conn.execute(
            "INSERT INTO users (username, password_hash, password_changed_at) VALUES (%s, %s, now())"
            " RETURNING id",
            (username, digest),
        ).fetchone()
        assert row is not None
        user_id = str(row[0])
        conn.execute(
            "INSERT INTO user_roles (user_id, role_id) SELECT %s, id FROM roles WHERE name = %s",
            (user_id, role),
        )
        details = {"username": username, "role": role}
        audit(conn, "user.create", target_type="user", target_id=user_id, details=details)
    return user_id


def list_users(conn: psycopg.Connection) -> list[tuple[str, str, bool, datetime | None]]:
    """(username, roles comma-separated, enabled, last login) by name."""
    rows = conn.execute(
        "SELECT u.username, coalesce(string_agg(r.name, ',' ORDER BY r.name), ''),"
        " u.disabled_at IS NULL, u.last_login_at FROM users u"
        " LEFT JOIN user_roles ur ON ur.user_id = u.id LEFT JOIN roles r ON r.id = ur.role_id"
        " GROUP BY u.id ORDER BY lower(u.username)"
    ).fetchall()
    return [(r[0], r[1], bool(r[2]), r[3]) for r in rows]


def _user_id(conn: psycopg.Connection, username: str) -> str:
    row = conn.execute("SELECT id FROM users WHERE lower(username) = lower(%s)", (username,)).fetchone()
    if row is None:
        raise AccountError(f"no user named {username!r}")
    return str(row[0])


def disable_user(conn: psycopg.Connection, username: str, reason: str | None = None) -> None:
    """Disable the user, revoke their sessions and tokens: nothing they hold works afterwards."""
    with conn.transaction():
        user_id = _user_id(conn, username)
        conn.execute(
            "UPDATE users SET disabled_at = coalesce(disabled_at, now()), disabled_reason = %s WHERE id = %s",
            (reason, user_id),
        )
        conn.execute(
            "UPDATE user_sessions SET revoked_at = now() WHERE user_id = %s AND revoked_at IS NULL",
            (user_id,),
        )
        conn.execute(
            "UPDATE api_tokens SET revoked_at = now() WHERE user_id = %s AND revoked_at IS NULL", (user_id,)
        )
        audit(conn, "user.disable", target_type="user", target_id=user_id, details={"username": username})


# -- tokens -----------------------------------------------------------------------------------------


def create_token(
    conn: psycopg.Connection, username: str, name: str, expires: timedelta | None
) -> tuple[str, str]:
    """(token, id); the token is returned once and never stored."""
    if not name.strip():
        raise AccountError("the token needs a --name")
    token, prefix, digest = new_token()
    expires_at = datetime.now(UTC) + expires if expires else None
    with conn.transaction():
        user_id = _user_id(conn, username)
        disabled = conn.execute("SELECT disabled_at FROM users WHERE id = %s", (user_id,)).fetchone()
        if disabled and disabled[0] is not None:
            raise AccountError(f"user {username!r} is disabled")
        row = conn.execute(
            "INSERT INTO api_tokens (user_id, name, token_prefix, token_hash, expires_at)"
            " VALUES (%s, %s, %s, %s, %s) RETURNING id",
            (user_id, name, prefix, digest, expires_at),
        ).fetchone()
        assert row is not None
        token_id = str(row[0])
        audit(
            conn,
            "token.create",
            target_type="api_token",
            target_id=token_id,
            details={"user": username, "name": name, "prefix": prefix},
        )
    return token, token_id


def list_tokens(conn: psycopg.Connection, username: str | None = None) -> list[tuple[Any, ...]]:
    """(id, user, name, prefix, created, expires, last used, state) for every token, or one user's."""
    rows = conn.execute(
        "SELECT t.id, u.username, t.name, t.token_prefix, t.created_at, t.expires_at, t.last_used_at,"
        " CASE WHEN t.revoked_at IS NOT NULL THEN 'revoked'"
        " WHEN t.expires_at IS NOT NULL AND t.expires_at <= now() THEN 'expired' ELSE 'active' END"
        " FROM api_tokens t JOIN users u ON u.id = t.user_id"
        " WHERE %s::text IS NULL OR lower(u.username) = lower(%s) ORDER BY t.created_at",
        (username, username),
    ).fetchall()
    return [tuple(r) for r in rows]


def revoke_token(conn: psycopg.Connection, ident: str) -> str:
    """Revoke by id or by prefix (``ow_XXXXXXXX``); returns the token's id."""
    with conn.transaction():
        if re.fullmatch(r"[0-9a-fA-F-]{36}", ident):
            rows = conn.execute("SELECT id FROM api_tokens WHERE id = %s", (ident,)).fetchall()
        else:
            rows = conn.execute(
                "SELECT id FROM api_tokens WHERE token_prefix = %s AND revoked_at IS NULL", (ident,)
            ).fetchall()
        if not rows:
            raise AccountError(f"no token {ident!r} (give its id or its ow_ prefix, see 'token list')")
        if len(rows) > 1:
            raise AccountError(f"prefix {ident!r} matches {len(rows)} tokens: give the id")
        token_id = str(rows[0][0])
        conn.execute(
            "UPDATE api_tokens SET revoked_at = coalesce(revoked_at, now()) WHERE id = %s", (token_id,)
        )
        audit(conn, "token.revoke", target_type="api_token", target_id=token_id)
    return token_id
