"""openwatch.runtime: what the frozen binary sets up before TLS and PostgreSQL."""

from __future__ import annotations

import os

from openwatch import runtime


def test_from_source_nothing_is_set() -> None:
    env: dict[str, str] = {}
    runtime.prepare(env, frozen=False)
    assert env == {}


def test_frozen_takes_the_first_existing_ca_locations_and_pins_psycopg() -> None:
    env: dict[str, str] = {}
    runtime.prepare(env, frozen=True)
    expected_file = next(p for p in runtime.CA_FILES if os.path.isfile(p))
    expected_dir = next(p for p in runtime.CA_DIRS if os.path.isdir(p))
    assert env == {"SSL_CERT_FILE": expected_file, "SSL_CERT_DIR": expected_dir, "PSYCOPG_IMPL": "binary"}


def test_the_operators_choice_wins() -> None:
    env = {"SSL_CERT_FILE": "/srv/ca.pem", "SSL_CERT_DIR": "/srv/certs", "PSYCOPG_IMPL": "python"}
    runtime.prepare(env, frozen=True)
    assert env == {"SSL_CERT_FILE": "/srv/ca.pem", "SSL_CERT_DIR": "/srv/certs", "PSYCOPG_IMPL": "python"}
