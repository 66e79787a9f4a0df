"""Who is asking: API tokens (``Authorization: Bearer ow_...``) and login sessions (a cookie), both
looked up by their SHA-256 only; the login itself, its per-address rate limit, and logout.

Blocking (psycopg, argon2): the web layer runs these in its bounded thread pool.
"""

from __future__ import annotations

import secrets
import threading
import time
from collections import OrderedDict, deque
from dataclasses import dataclass
from typing import Any

import psycopg

from openwatch import accounts
from openwatch.accounts import Principal

COOKIE = "ow_session"
# A login costs one argon2id check (64 MiB, ~50 ms): at most this many run at once, so a burst of
# logins is bounded in memory (the unit's MemoryMax counts them) and cannot starve the other requests.
CONCURRENT_PASSWORD_CHECKS = 2
FAILURES_ALLOWED = 5  # failed logins per client address ...
FAILURE_WINDOW = 300.0  # ... within this many seconds; then 429 until the oldest failure ages out
TRACKED_ADDRESSES = 10_000  # the limiter forgets the least recently seen addresses past this
TOUCH_EVERY = 60  # seconds: last_seen_at/last_used_at are written at most this often per credential

# One query: the credential, its user (enabled), the user's roles and permissions.
_PRINCIPAL = """
SELECT c.id, u.id, u.username,
       coalesce(array_agg(DISTINCT r.name) FILTER (WHERE r.name IS NOT NULL), '{{}}'),
       coalesce(array_agg(DISTINCT p.code) FILTER (WHERE p.code IS NOT NULL), '{{}}'),
       c.touched < now() - make_interval(secs => {touch})
FROM {source} c
JOIN users u ON u.id = c.user_id AND u.disabled_at IS NULL
LEFT JOIN user_roles ur ON ur.user_id = u.id
LEFT JOIN roles r ON r.id = ur.role_id
LEFT JOIN role_permissions rp ON rp.role_id = r.id
LEFT JOIN permissions p ON p.id = rp.permission_id
WHERE c.token_hash = %s
GROUP BY c.id, u.id, u.username, c.touched
"""
_TOKENS = (
    "(SELECT id, user_id, token_hash, coalesce(last_used_at, '-infinity') AS touched FROM api_tokens"
    " WHERE revoked_at IS NULL AND (expires_at IS NULL OR expires_at > now()))"
)
_SESSIONS = (
    "(SELECT s.id, s.user_id, s.token_hash, s.last_seen_at AS touched FROM user_sessions s, auth_policy a"
    " WHERE s.revoked_at IS NULL AND s.expires_at > now()"
    " AND s.last_seen_at > now() - make_interval(mins => a.session_idle_minutes))"
)
TOKEN_SQL = _PRINCIPAL.format(source=_TOKENS, touch=TOUCH_EVERY)
SESSION_SQL = _PRINCIPAL.format(source=_SESSIONS, touch=TOUCH_EVERY)


@dataclass(frozen=True)
class Login:
    principal: Principal
    cookie: str  # the session cookie's value: shown to the client once, stored hashed
    max_age: int  # seconds: the session's absolute lifetime


class RateLimited(Exception):
    def __init__(self, retry_after: int) -> None:
        super().__init__(f"too many failed logins; retry in {retry_after} s")
        self.retry_after = retry_after


class FailureLimiter:
    """Failed logins per client address in a sliding window; bounded in memory."""

    def __init__(self, allowed: int = FAILURES_ALLOWED, window: float = FAILURE_WINDOW) -> None:
        self.allowed = allowed
        self.window = window
        self._failures: OrderedDict[str, deque[float]] = OrderedDict()
        self._lock = threading.Lock()

    def check(self, address: str) -> None:
        """RateLimited if ``address`` has used up its failures."""
        now = time.monotonic()
        with self._lock:
            times = self._failures.get(address)
            if times is None:
                return
            while times and times[0] <= now - self.window:
                times.popleft()
            if len(times) >= self.allowed:
                raise RateLimited(max(1, int(times[0] + self.window - now) + 1))

    def failed(self, address: str) -> None:
        with self._lock:
            times = self._failures.pop(address, None) or deque(maxlen=self.allowed)
            times.append(time.monotonic())
            self._failures[address] = times
            while len(self._failures) > TRACKED_ADDRESSES:
                self._failures.popitem(last=False)

    def succeeded(self, address: str) -> None:
        with self._lock:
            self._failures.pop(address, None)


class Authenticator:
    def __init__(self) -> None:
        self.limiter = FailureLimiter()
        self._checks = threading.BoundedSemaphore(CONCURRENT_PASSWORD_CHECKS)

    # -- every request ----------------------------------------------------------------------------

    def identify(self, conn: psycopg.Connection, bearer: str | None, cookie: str | None) -> Principal | None:
        """The principal behind a bearer token or a session cookie; None if neither is valid."""
        if bearer is not None:
            if not accounts.looks_like_token(bearer):
                return None
            return self._lookup(conn, TOKEN_SQL, bearer, "token")
        if cookie is not None and 20 <= len(cookie) <= 128:
            return self._lookup(conn, SESSION_SQL, cookie, "session")
        return None

    @staticmethod
    def _lookup(conn: psycopg.Connection, sql: str, secret: str, via: str) -> Principal | None:
        row = conn.execute(sql, (accounts.sha256_hex(secret),)).fetchone()
        if row is None:
            return None
        cred_id, user_id, username, roles, permissions, stale = row
        if stale:  # a write per credential per minute, not per request
            if via == "token":
                conn.execute("UPDATE api_tokens SET last_used_at = now() WHERE id = %s", (cred_id,))
            else:
                conn.execute("UPDATE user_sessions SET last_seen_at = now() WHERE id = %s", (cred_id,))
        return Principal(str(user_id), username, tuple(roles), frozenset(permissions), via, str(cred_id))

    # -- login and logout -------------------------------------------------------------------------

    def login(
        self, conn: psycopg.Connection, username: str, password: str, ip: str, user_agent: str
    ) -> Login | None:
        """A new session, or None (audited as a failure) for a wrong name or password or a disabled user.

        RateLimited before any check once ``ip`` has failed too often.
        """
        self.limiter.check(ip)
        row = conn.execute(
            "SELECT u.id, u.username, u.password_hash, u.disabled_at IS NULL, a.session_max_hours"
            " FROM auth_policy a LEFT JOIN users u ON lower(u.username) = lower(%s)",
            (username,),
        ).fetchone()
        assert row is not None  # auth_policy holds exactly one row (0033)
        user_id, _name_found, stored, enabled, max_hours = row
        with self._checks:
            ok = accounts.verify_password(stored, password)
        if not ok or not enabled:
            self.limiter.failed(ip)
            with conn.transaction():
                if user_id is not None:
                    conn.execute(
                        "UPDATE users SET failed_login_count = failed_login_count + 1 WHERE id = %s",
                        (user_id,),
                    )
                reason = "disabled" if ok else "bad credentials"
                accounts.audit(
                    conn, "auth.login", actor_name=_name(username), ip=ip, outcome="failure",
                    target_type="user", target_id=str(user_id) if user_id else None,
                    details={"reason": reason},
                )  # fmt: skip
            return None
        self.limiter.succeeded(ip)
        cookie = secrets.token_urlsafe(32)
        max_age = int(max_hours) * 3600
        with conn.transaction():
            session = conn.execute(
                "INSERT INTO user_sessions (user_id, token_hash, client_ip, user_agent, expires_at)"
                " VALUES (%s, %s, %s, %s, now() + make_interval(hours => %s)) RETURNING id",
                (user_id, accounts.sha256_hex(cookie), ip, user_agent[:512], int(max_hours)),
            ).fetchone()
            assert session is not None
            conn.execute(
                "UPDATE users SET last_login_at = now(), failed_login_count = 0 WHERE id = %s", (user_id,)
            )
            principal = self._lookup(conn, SESSION_SQL, cookie, "session")
            assert principal is not None
            accounts.audit(
                conn, "auth.login", actor=principal, ip=ip, target_type="session",
                target_id=str(session[0]),
            )  # fmt: skip
        return Login(principal, cookie, max_age)

    @staticmethod
    def logout(conn: psycopg.Connection, principal: Principal, ip: str) -> None:
        with conn.transaction():
            if principal.via == "session":
                conn.execute(
                    "UPDATE user_sessions SET revoked_at = now() WHERE id = %s AND revoked_at IS NULL",
                    (principal.credential_id,),
                )
            accounts.audit(
                conn, "auth.logout", actor=principal, ip=ip, target_type=principal.via,
                target_id=principal.credential_id,
            )  # fmt: skip


def _name(username: str) -> str:
    """A submitted user name as an audit actor_name: bounded, printable."""
    text = "".join(c if c.isprintable() else "?" for c in username[:128])
    return text or "-"


def session_cookie(value: str, max_age: int) -> str:
    return f"{COOKIE}={value}; Path=/; Max-Age={max_age}; Secure; HttpOnly; SameSite=Strict"


def expired_cookie() -> str:
    return f"{COOKIE}=; Path=/; Max-Age=0; Secure; HttpOnly; SameSite=Strict"


def parse_cookie(header: str | None) -> str | None:
    if not header:
        return None
    for part in header.split(";"):
        name, _, value = part.strip().partition("=")
        if name == COOKIE and value:
            return value
    return None


def user_view(principal: Principal) -> dict[str, Any]:
    return {"username": principal.username, "roles": list(principal.roles), "via": principal.via}
