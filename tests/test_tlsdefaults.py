"""openwatch.tlsdefaults: where the frozen binary's OpenSSL looks for the host's CAs."""

from __future__ import annotations

import os

from openwatch import tlsdefaults


def test_from_source_nothing_is_set() -> None:
    env: dict[str, str] = {}
    tlsdefaults.apply(env, frozen=False)
    assert env == {}


def test_frozen_takes_the_first_existing_distribution_locations() -> None:
    env: dict[str, str] = {}
    tlsdefaults.apply(env, frozen=True)
    expected_file = next(p for p in tlsdefaults.CA_FILES if os.path.isfile(p))
    expected_dir = next(p for p in tlsdefaults.CA_DIRS if os.path.isdir(p))
    assert env == {"SSL_CERT_FILE": expected_file, "SSL_CERT_DIR": expected_dir}


def test_the_operators_choice_wins() -> None:
    env = {"SSL_CERT_FILE": "/srv/ca.pem", "SSL_CERT_DIR": "/srv/certs"}
    tlsdefaults.apply(env, frozen=True)
    assert env == {"SSL_CERT_FILE": "/srv/ca.pem", "SSL_CERT_DIR": "/srv/certs"}
