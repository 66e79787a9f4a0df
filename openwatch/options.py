"""The values the command line offers before any configuration is loaded.

Kept apart from ``openwatch.config`` (which imports tomllib, dataclasses and pathlib) so that building the
argument parser, which every command does, costs nothing: ``--version`` never imports the config.
"""

from __future__ import annotations

LOG_LEVELS = ("debug", "info", "warn", "error")
LOG_FORMATS = ("text", "json")
