"""The embedded UI in a real browser: Debian's chromium, headless, driven over the DevTools protocol
(``--remote-debugging-pipe``: NUL-separated JSON on fds 3 and 4, standard library only).

The test clicks and types like a user: it logs in (a wrong password first), sees who is logged in,
registers a host through the page's form, sees it listed, sees a validation error rendered, logs out,
and keeps a screenshot in tests/artifacts/.
"""

from __future__ import annotations

import base64
import fcntl
import json
import os
import shutil
import subprocess
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

import pytest
from conftest import Database
from test_serve import (  # noqa: F401 - fixtures
    ADMIN,
    ADMIN_PASSWORD,
    HEAD,
    StartServer,
    iso,
    migrated_db,
    openwatch_binary,
    start_server,
    tls_pair,
)

pytestmark = pytest.mark.pg

ARTIFACTS = Path(__file__).resolve().parent / "artifacts"
CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--ignore-certificate-errors",
    "--remote-debugging-pipe",
    "--window-size=1280,900",
]


def _above_9(fd: int) -> int:
    """The same pipe end on a descriptor above 9, so the shell's ``3<&N 4>&M`` cannot clobber it."""
    high = fcntl.fcntl(fd, fcntl.F_DUPFD_CLOEXEC, 10)
    os.close(fd)
    return high


class Browser:
    """A chromium process and a DevTools session on its one page."""

    def __init__(self, profile: Path) -> None:
        to_browser_r, self._to_browser = os.pipe()
        self._from_browser, from_browser_w = os.pipe()
        to_browser_r, from_browser_w = _above_9(to_browser_r), _above_9(from_browser_w)
        # bash (dash takes single-digit fds only) moves our pipe ends to the fds chromium expects:
        # 3 for commands in, 4 for replies out
        script = f'exec "$0" "$@" 3<&{to_browser_r} 4>&{from_browser_w} {to_browser_r}<&- {from_browser_w}>&-'
        self.proc = subprocess.Popen(
            ["bash", "-c", script, CHROMIUM, *FLAGS, f"--user-data-dir={profile}", "about:blank"],
            pass_fds=(to_browser_r, from_browser_w),
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        os.close(to_browser_r)
        os.close(from_browser_w)
        self._next = 0
        self._replies: dict[int, dict[str, Any]] = {}
        self.events: list[dict[str, Any]] = []
        self._cond = threading.Condition()
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()
        self.session: str | None = None

    def _read(self) -> None:
        buffer = b""
        while True:
            chunk = os.read(self._from_browser, 65536)
            if not chunk:
                break
            buffer += chunk
            while b"\0" in buffer:
                raw, buffer = buffer.split(b"\0", 1)
                message = json.loads(raw)
                with self._cond:
                    if "id" in message:
                        self._replies[message["id"]] = message
                    else:
                        self.events.append(message)
                    self._cond.notify_all()
        with self._cond:
            self._cond.notify_all()

    def send(self, method: str, params: dict[str, Any] | None = None, *, browser: bool = False) -> Any:
        with self._cond:
            self._next += 1
            ident = self._next
        message: dict[str, Any] = {"id": ident, "method": method, "params": params or {}}
        if self.session and not browser:
            message["sessionId"] = self.session
        os.write(self._to_browser, json.dumps(message).encode() + b"\0")
        with self._cond:
            if not self._cond.wait_for(lambda: ident in self._replies, timeout=30):
                raise AssertionError(f"no reply to {method}")
            reply = self._replies.pop(ident)
        if "error" in reply:
            raise AssertionError(f"{method}: {reply['error']}")
        return reply["result"]

    def open_page(self) -> None:
        targets = self.send("Target.getTargets")["targetInfos"]
        pages = [t for t in targets if t["type"] == "page"]
        target = (
            pages[0]["targetId"]
            if pages
            else self.send("Target.createTarget", {"url": "about:blank"})["targetId"]
        )
        self.session = self.send("Target.attachToTarget", {"targetId": target, "flatten": True})["sessionId"]
        for domain in ("Page.enable", "Runtime.enable", "Log.enable"):
            self.send(domain)

    def wait_event(self, method: str, since: int, timeout: float = 30) -> dict[str, Any]:
        with self._cond:
            found = self._cond.wait_for(
                lambda: next((e for e in self.events[since:] if e["method"] == method), None), timeout
            )
        if not found:
            raise AssertionError(f"no {method} event within {timeout}s")
        return found

    def navigate(self, url: str) -> None:
        mark = len(self.events)
        self.send("Page.navigate", {"url": url})
        self.wait_event("Page.loadEventFired", mark)

    def evaluate(self, expression: str) -> Any:
        result = self.send("Runtime.evaluate", {"expression": expression, "returnByValue": True})
        if "exceptionDetails" in result:
            raise AssertionError(f"{expression}: {result['exceptionDetails']}")
        return result["result"].get("value")

    def wait_for(self, expression: str, timeout: float = 15) -> Any:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            value = self.evaluate(expression)
            if value:
                return value
            time.sleep(0.1)
        raise AssertionError(
            f"never true: {expression}; page text: {self.evaluate('document.body.innerText')}"
        )

    def click(self, selector: str) -> None:
        box = self.evaluate(
            f"(() => {{ const r = document.querySelector({json.dumps(selector)}).getBoundingClientRect();"
            " return [r.x + r.width / 2, r.y + r.height / 2]; })()"
        )
        for kind in ("mouseMoved", "mousePressed", "mouseReleased"):
            self.send(
                "Input.dispatchMouseEvent",
                {"type": kind, "x": box[0], "y": box[1], "button": "left", "clickCount": 1},
            )

    def type_into(self, selector: str, text: str) -> None:
        self.click(selector)
        self.send("Input.dispatchKeyEvent", {"type": "keyDown", "key": "a", "commands": ["selectAll"]})
        self.send("Input.dispatchKeyEvent", {"type": "keyUp", "key": "a"})
        self.send("Input.insertText", {"text": text})

    def screenshot(self, path: Path) -> bytes:
        data = base64.b64decode(self.send("Page.captureScreenshot", {"format": "png"})["data"])
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)
        return data

    def close(self) -> None:
        try:
            if self.proc.poll() is None:
                self.send("Browser.close", browser=True)
            self.proc.wait(10)
        except (AssertionError, OSError, subprocess.TimeoutExpired):
            self.proc.kill()
            self.proc.wait()
        finally:
            os.close(self._to_browser)
            self._reader.join(5)
            os.close(self._from_browser)


def test_register_a_host_through_the_page(
    migrated_db: Database,  # noqa: F811 - the fixture imported above
    start_server: StartServer,  # noqa: F811
) -> None:
    server = start_server(migrated_db.dsn)
    version = server.request("GET", "/api/v1/version").json()["version"]
    profile = Path(tempfile.mkdtemp(prefix="ow-chromium-"))
    browser = Browser(profile)
    try:
        browser.open_page()
        browser.navigate(f"https://127.0.0.1:{server.port}/")
        # logged out: only the login form; a wrong password is refused on the page
        browser.wait_for("!document.getElementById('login-section').hidden")
        assert browser.evaluate("document.getElementById('app').hidden") is True
        browser.type_into("#username", ADMIN)
        browser.type_into("#password", "not the password")
        browser.click("#login-submit")
        browser.wait_for(
            "document.getElementById('login-message').textContent === 'wrong user name or password'"
        )
        browser.type_into("#password", ADMIN_PASSWORD)
        browser.click("#login-submit")
        browser.wait_for("!document.getElementById('app').hidden")
        assert browser.evaluate("document.getElementById('whoami').textContent") == f"{ADMIN} (admin)"
        assert browser.evaluate("document.cookie") == ""  # HttpOnly: the script cannot read the session
        browser.wait_for(f"document.getElementById('schema').textContent === 'up to date (version {HEAD})'")
        assert version in browser.evaluate("document.getElementById('version').textContent")
        assert browser.evaluate("document.getElementById('database').textContent") == "connected"
        browser.wait_for("!document.getElementById('hosts-empty').hidden")

        # a mistake first: the API's error is shown and the field is marked
        browser.type_into("#hostname", "not a hostname!")
        browser.type_into("#address", "192.0.2.10")
        browser.click("#submit")
        browser.wait_for("document.getElementById('form-message').textContent.startsWith('hostname must be')")
        assert browser.evaluate("document.getElementById('hostname').getAttribute('aria-invalid')") == "true"
        assert browser.evaluate("document.activeElement.id") == "hostname"

        browser.type_into("#hostname", "web-01.example.com")
        browser.type_into("#port", "2222")
        browser.click("#submit")
        browser.wait_for(
            "document.getElementById('form-message').textContent === 'Registered web-01.example.com.'"
        )
        cells = browser.wait_for(
            "(() => { const row = document.querySelector('#hosts tbody tr');"
            " return row && [...row.cells].map(c => c.textContent); })()"
        )
        assert cells[:3] == ["web-01.example.com", "192.0.2.10", "2222"]
        assert browser.evaluate("document.getElementById('host-total').textContent") == "(1)"
        assert browser.evaluate("document.getElementById('hostname').value") == ""  # the form was reset

        png = browser.screenshot(ARTIFACTS / "ui-hosts.png")
        assert png.startswith(b"\x89PNG\r\n\x1a\n") and len(png) > 10_000

        # the page went through the API to the database
        listed = server.request("GET", "/api/v1/hosts").json()
        assert [(h["hostname"], h["address"], h["port"]) for h in listed["items"]] == [
            ("web-01.example.com", "192.0.2.10", 2222)
        ]
        # no script error and no console error (a CSP violation would be one), except the refused POST
        assert not [e for e in browser.events if e["method"] == "Runtime.exceptionThrown"]
        errors = [
            e["params"]["entry"]
            for e in browser.events
            if e["method"] == "Log.entryAdded" and e["params"]["entry"]["level"] == "error"
        ]
        unexpected = [
            e
            for e in errors
            if not (
                e.get("source") == "network"
                and ("status of 400" in e["text"] or "status of 401" in e["text"])
            )
        ]
        assert unexpected == [], unexpected

        # logging out ends the session: the page shows the login form, the API refuses the old cookie
        browser.click("#logout")
        browser.wait_for("document.getElementById('login-message').textContent === 'Logged out.'")
        assert browser.evaluate("document.getElementById('app').hidden") is True
        browser.navigate(f"https://127.0.0.1:{server.port}/")
        browser.wait_for("!document.getElementById('login-section').hidden")
    finally:
        browser.close()
        shutil.rmtree(profile, ignore_errors=True)
    posts = [line for line in server.stdout if "method=POST path=/api/v1/hosts" in line]
    assert [" status=400 " in posts[0], " status=201 " in posts[1]] == [True, True]
