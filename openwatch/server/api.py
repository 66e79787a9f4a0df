"""The JSON API under /api/v1: health, version, login/logout and hosts. Transport-free and blocking:
handlers take parsed input and return a Reply or raise ApiError; ``asgi`` does the HTTP and runs
``Api.call`` in its bounded thread pool. Everything but health and login needs a token or a session.
"""

from __future__ import annotations

import ipaddress
import re
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import psycopg

from openwatch import accounts, buildinfo
from openwatch.accounts import Principal
from openwatch.server import auth, db

LIMIT_DEFAULT = 50
LIMIT_MAX = 200
_LABEL = r"[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?"
_HOSTNAME = re.compile(rf"{_LABEL}(?:\.{_LABEL})*\Z")
_HOST_COLUMNS = "id, hostname, address, port, created_at"


class ApiError(Exception):
    """An error reply: ``{"error": {"code", "message", "field"?}}``."""

    def __init__(
        self,
        status: int,
        code: str,
        message: str,
        field: str | None = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message
        self.field = field
        self.headers = headers or {}

    def body(self) -> dict[str, Any]:
        err: dict[str, Any] = {"code": self.code, "message": self.message}
        if self.field is not None:
            err["field"] = self.field
        return {"error": err}


def invalid(field: str, message: str) -> ApiError:
    return ApiError(400, "validation_failed", message, field)


def unavailable(exc: db.DatabaseUnavailable) -> ApiError:
    return ApiError(503, "db_unavailable", "the database is unavailable")


@dataclass
class Reply:
    status: int
    body: Any
    headers: dict[str, str] = field(default_factory=dict)


UNAUTHENTICATED = ApiError(
    401,
    "unauthenticated",
    "log in (POST /api/v1/auth/login) or send Authorization: Bearer <token>",
    headers={"WWW-Authenticate": 'Bearer realm="openwatch"'},
)


@dataclass
class Request:
    query: Mapping[str, list[str]]
    body: Any = None  # the decoded JSON document, for methods that take one
    params: tuple[str, ...] = ()  # captured from the path
    ip: str = "127.0.0.1"
    bearer: str | None = None  # from Authorization: Bearer
    cookie: str | None = None  # the session cookie's value
    user_agent: str = ""
    principal: Principal | None = None


Handler = Callable[[Request], Reply]


@dataclass(frozen=True)
class Route:
    action: Handler
    permission: str | None = None  # None: any authenticated user
    public: bool = False
    body: bool = False  # takes a JSON body


@dataclass
class Api:
    pool: db.Pool
    expected: int  # the embedded migrations' head
    migration_count: int
    auth: auth.Authenticator = field(default_factory=auth.Authenticator)

    def call(self, route: Route, req: Request) -> Reply:
        """Authenticate and authorise (unless public), then run the handler."""
        if not route.public:
            principal = self._db(lambda conn: self.auth.identify(conn, req.bearer, req.cookie))
            if principal is None:
                raise UNAUTHENTICATED
            if route.permission is not None and route.permission not in principal.permissions:
                raise ApiError(403, "forbidden", f"this needs the {route.permission} permission")
            req.principal = principal
        return route.action(req)

    # -- login, logout, who am I ------------------------------------------------------------------

    def login(self, req: Request) -> Reply:
        body = req.body
        if not isinstance(body, dict) or set(body) != {"username", "password"}:
            raise ApiError(400, "validation_failed", 'send {"username": ..., "password": ...}')
        username, password = body["username"], body["password"]
        if not isinstance(username, str) or not isinstance(password, str) or not username:
            raise ApiError(400, "validation_failed", "username and password must be strings")
        try:
            done = self._db(
                lambda conn: self.auth.login(conn, username, password, req.ip, req.user_agent),
                retry=False,
            )
        except auth.RateLimited as exc:
            raise ApiError(
                429, "too_many_requests", str(exc), headers={"Retry-After": str(exc.retry_after)}
            ) from None
        if done is None:
            raise ApiError(401, "invalid_credentials", "wrong user name or password", headers={
                "WWW-Authenticate": 'Bearer realm="openwatch"'})  # fmt: skip
        return Reply(
            200,
            {"user": auth.user_view(done.principal)},
            {"Set-Cookie": auth.session_cookie(done.cookie, done.max_age)},
        )

    def logout(self, req: Request) -> Reply:
        principal = req.principal
        assert principal is not None
        self._db(lambda conn: self.auth.logout(conn, principal, req.ip), retry=False)
        return Reply(200, {"logged_out": True}, {"Set-Cookie": auth.expired_cookie()})

    def me(self, req: Request) -> Reply:
        assert req.principal is not None
        return Reply(200, {"user": auth.user_view(req.principal)})

    # -- health and version -------------------------------------------------------------------

    def health(self, req: Request) -> Reply:
        current: int | None = None
        connected = False
        reason: str | None = None
        try:
            current = self.pool.run(db.schema_version)
            connected = True
            reason = db.schema_problem(current, self.expected)
        except db.DatabaseUnavailable:
            reason = "database unreachable"
        body: dict[str, Any] = {
            "status": "unhealthy" if reason else "healthy",
            "db_connected": connected,
            "schema": {"current": current, "expected": self.expected},
            "version": buildinfo.version,
        }
        if reason:
            body["reason"] = reason
        return Reply(503 if reason else 200, body)

    def health_timed_out(self) -> Reply:
        """Health's answer when the database did not answer within the deadline (hung, not down)."""
        body = {
            "status": "unhealthy",
            "db_connected": False,
            "schema": {"current": None, "expected": self.expected},
            "version": buildinfo.version,
            "reason": "database not answering",
        }
        return Reply(503, body)

    def version(self, req: Request) -> Reply:
        return Reply(
            200,
            {
                "version": buildinfo.version,
                "commit": buildinfo.commit,
                "build_time": buildinfo.build_time,
                "schema_version": self.expected,
                "migration_count": self.migration_count,
            },
        )

    # -- hosts ----------------------------------------------------------------------------------

    def list_hosts(self, req: Request) -> Reply:
        limit = _int_param(req.query, "limit", LIMIT_DEFAULT, 1, LIMIT_MAX)
        offset = _int_param(req.query, "offset", 0, 0, 2**62)

        def work(conn: psycopg.Connection) -> tuple[list[dict[str, Any]], int]:
            rows = conn.execute(
                f"SELECT {_HOST_COLUMNS} FROM hosts ORDER BY lower(hostname), id LIMIT %s OFFSET %s",
                (limit, offset),
            ).fetchall()
            total = conn.execute("SELECT count(*) FROM hosts").fetchone()
            return [_host(row) for row in rows], int(total[0]) if total else 0

        items, total = self._db(work)
        return Reply(200, {"items": items, "total": total, "limit": limit, "offset": offset})

    def get_host(self, req: Request) -> Reply:
        try:
            host_id = uuid.UUID(req.params[0])
        except ValueError:
            raise ApiError(404, "not_found", f"no host with id {req.params[0]}") from None

        def work(conn: psycopg.Connection) -> Any:
            return conn.execute(f"SELECT {_HOST_COLUMNS} FROM hosts WHERE id = %s", (host_id,)).fetchone()

        row = self._db(work)
        if row is None:
            raise ApiError(404, "not_found", f"no host with id {host_id}")
        return Reply(200, _host(row))

    def create_host(self, req: Request) -> Reply:
        hostname, address, port = validate_host(req.body)
        # Without a port the column default (22, declared by the schema) applies.
        args: tuple[object, ...]
        if port is None:
            sql = f"INSERT INTO hosts (hostname, address) VALUES (%s, %s) RETURNING {_HOST_COLUMNS}"
            args = (hostname, address)
        else:
            sql = f"INSERT INTO hosts (hostname, address, port) VALUES (%s, %s, %s) RETURNING {_HOST_COLUMNS}"
            args = (hostname, address, port)

        def work(conn: psycopg.Connection) -> Any:
            with conn.transaction():
                row = conn.execute(sql, args).fetchone()
                assert row is not None  # INSERT ... RETURNING
                accounts.audit(
                    conn, "host.create", actor=req.principal, ip=req.ip, target_type="host",
                    target_id=str(row[0]), details={"hostname": row[1], "address": row[2], "port": row[3]},
                )  # fmt: skip
                return row

        try:
            row = self._db(work, retry=False)
        except psycopg.errors.UniqueViolation:
            raise ApiError(
                409, "conflict", f"a host named {hostname!r} is already registered", "hostname"
            ) from None
        except psycopg.errors.CheckViolation as exc:
            raise ApiError(
                400, "validation_failed", f"rejected by the database: {exc.diag.message_primary}"
            ) from None
        host = _host(row)
        return Reply(201, host, {"Location": f"/api/v1/hosts/{host['id']}"})

    def _db(self, work: Callable[[psycopg.Connection], Any], *, retry: bool = True) -> Any:
        try:
            return self.pool.run(work, retry=retry)
        except db.DatabaseUnavailable as exc:
            raise unavailable(exc) from None

    def routes(self) -> list[tuple[re.Pattern[str], dict[str, Route]]]:
        read, write = "hosts.read", "hosts.write"
        return [
            (re.compile(r"/api/v1/health\Z"), {"GET": Route(self.health, public=True)}),
            (re.compile(r"/api/v1/version\Z"), {"GET": Route(self.version)}),
            (re.compile(r"/api/v1/auth/login\Z"), {"POST": Route(self.login, public=True, body=True)}),
            (re.compile(r"/api/v1/auth/logout\Z"), {"POST": Route(self.logout)}),
            (re.compile(r"/api/v1/auth/me\Z"), {"GET": Route(self.me)}),
            (
                re.compile(r"/api/v1/hosts\Z"),
                {"GET": Route(self.list_hosts, read), "POST": Route(self.create_host, write, body=True)},
            ),
            (re.compile(r"/api/v1/hosts/([^/]+)\Z"), {"GET": Route(self.get_host, read)}),
        ]


def _int_param(query: Mapping[str, list[str]], name: str, default: int, low: int, high: int) -> int:
    values = query.get(name)
    if not values:
        return default
    raw = values[-1].strip()
    if not re.fullmatch(r"[0-9]{1,19}", raw):
        raise invalid(name, f"{name} must be an integer between {low} and {high}, got {values[-1]!r}")
    value = int(raw)
    if not low <= value <= high:
        raise invalid(name, f"{name} must be between {low} and {high}, got {value}")
    return value


def _is_hostname(text: str) -> bool:
    return len(text) <= 253 and _HOSTNAME.match(text) is not None


def validate_host(body: Any) -> tuple[str, str, int | None]:
    """(hostname, address, port or None for the default) from a POST body, or ApiError naming the field."""
    if not isinstance(body, dict):
        raise ApiError(400, "validation_failed", "the body must be a JSON object")
    for key in body:
        if key not in ("hostname", "address", "port"):
            raise invalid(key, f"unknown field {key!r}: expected hostname, address and optionally port")

    hostname = body.get("hostname")
    if not isinstance(hostname, str) or not hostname.strip():
        raise invalid("hostname", "hostname is required (a DNS name such as web-01.example.com)")
    hostname = hostname.strip()
    if not _is_hostname(hostname):
        raise invalid(
            "hostname",
            "hostname must be a DNS name: labels of letters, digits and '-', separated by dots,"
            " at most 253 characters",
        )

    address = body.get("address")
    if not isinstance(address, str) or not address.strip():
        raise invalid("address", "address is required (an IP address or a DNS name)")
    address = address.strip()
    try:
        address = str(ipaddress.ip_address(address))
    except ValueError:
        if not _is_hostname(address):
            raise invalid("address", "address must be an IPv4 or IPv6 address or a DNS name") from None

    port = body.get("port")
    if port is not None and (isinstance(port, bool) or not isinstance(port, int) or not 1 <= port <= 65535):
        raise invalid("port", "port must be an integer between 1 and 65535")
    return hostname, address, port


def _host(row: Any) -> dict[str, Any]:
    host_id, hostname, address, port, created_at = row
    return {
        "id": str(host_id),
        "hostname": hostname,
        "address": address,
        "port": port,
        "created_at": created_at.isoformat(),
    }
