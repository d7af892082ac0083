"""Logging for ``serve``: access lines on stdout, everything else on stderr.

``--log-config FILE`` replaces these defaults with the file's configuration:
``logging.config.dictConfig`` from JSON (or YAML when PyYAML is installed), or
``logging.config.fileConfig`` from an ``.ini``/``.conf`` file.
"""

from __future__ import annotations

import importlib
import json
import logging
import logging.config
import sys
from pathlib import Path
from typing import Any

from .errors import UsageError

ACCESS_LOGGER = "hyperpy.access"
LOG_FORMAT = "%(asctime)s [%(process)d] %(levelname)s %(name)s: %(message)s"
_FILE_CONFIG_SUFFIXES = (".ini", ".conf", ".cfg")
_YAML_SUFFIXES = (".yaml", ".yml")


def configure(*, level: str | None, access_log: bool, config_file: str | None) -> None:
    """Set up logging before the app is imported (so its import-time logs show)."""
    if config_file is not None:
        _from_file(config_file)
        if level is not None:
            logging.getLogger().setLevel(level.upper())
        return
    root = logging.getLogger()
    for handler in list(root.handlers):
        root.removeHandler(handler)
    errors = logging.StreamHandler(sys.stderr)
    errors.setFormatter(logging.Formatter(LOG_FORMAT))
    root.addHandler(errors)
    root.setLevel((level or "info").upper())

    access = logging.getLogger(ACCESS_LOGGER)
    for handler in list(access.handlers):
        access.removeHandler(handler)
    # Its own stream and level: --log-level governs the other logs, --access-log this one.
    access.propagate = False
    if access_log:
        lines = logging.StreamHandler(sys.stdout)
        lines.setFormatter(logging.Formatter("%(message)s"))
        access.addHandler(lines)
        access.setLevel(logging.INFO)
    else:
        access.setLevel(logging.CRITICAL + 1)


def _from_file(path: str) -> None:
    file = Path(path)
    try:
        if file.suffix.lower() in _FILE_CONFIG_SUFFIXES:
            # Loggers that exist already (hyperpy's own) stay enabled, unlike fileConfig's default.
            logging.config.fileConfig(file, disable_existing_loggers=False)
            return
        text = file.read_text(encoding="utf-8")
        config = _parse(file, text)
        if not isinstance(config, dict):
            raise UsageError(f"--log-config {path}: expected a mapping, found {type(config)}")
        config.setdefault("disable_existing_loggers", False)
        logging.config.dictConfig(config)
    except UsageError:
        raise
    except Exception as exc:  # OSError, a parse error, dictConfig's ValueError...
        raise UsageError(f"--log-config {path}: {exc}") from None


def _parse(file: Path, text: str) -> Any:
    if file.suffix.lower() in _YAML_SUFFIXES:
        try:
            yaml = importlib.import_module("yaml")
        except ImportError:
            raise UsageError(
                f"--log-config {file}: YAML needs PyYAML: pip install pyyaml"
            ) from None
        return yaml.safe_load(text)
    return json.loads(text)
