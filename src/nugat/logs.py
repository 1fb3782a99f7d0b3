"""Logging setup for the ``nugat`` command and the server processes: text lines, or one JSON object per line.

``NUGAT_LOG_FORMAT=json`` (or ``nugat serve --log-format json``) suits log collectors (Loki,
Elasticsearch, CloudWatch): every record is ``{"time", "level", "logger", "message"}``, plus
``"exception"`` when there is one.
"""

from __future__ import annotations

import json
import logging
from datetime import UTC, datetime
from typing import Any

FORMATS = ("text", "json")


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        data = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": record.getMessage(),
        }
        if record.exc_info:
            data["exception"] = self.formatException(record.exc_info)
        return json.dumps(data, ensure_ascii=False)


def logging_config(log_format: str, level: str = "INFO") -> dict[str, Any]:
    """``dictConfig`` for nugat's and the server's loggers (granian applies it in every worker)."""
    if log_format not in FORMATS:
        raise ValueError(f"unknown log format {log_format!r}: use text or json")
    formatter: dict[str, Any] = (
        {"()": "nugat.logs.JsonFormatter"}
        if log_format == "json"
        else {"format": "%(asctime)s %(levelname)s %(name)s: %(message)s"}
    )
    return {
        "version": 1,
        "disable_existing_loggers": False,
        "formatters": {"nugat": formatter},
        "handlers": {
            "console": {"class": "logging.StreamHandler", "formatter": "nugat", "stream": "ext://sys.stderr"}
        },
        "loggers": {
            "_granian": {"handlers": ["console"], "level": level, "propagate": False},
            "granian.access": {"handlers": ["console"], "level": level, "propagate": False},
            # Alembic narrates each step at INFO (plugins, the dialect): nugat logs one line per upgrade.
            "alembic": {"level": "WARNING"},
        },
        "root": {"handlers": ["console"], "level": level},
    }
