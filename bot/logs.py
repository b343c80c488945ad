"""Logging set up from COACHBOT_LOG_LEVEL and COACHBOT_LOG_FORMAT (text or one JSON object a line)."""

from __future__ import annotations

import json
import logging
from datetime import UTC, datetime


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        entry = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(),
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": record.getMessage(),
        }
        if record.exc_info:
            entry["exception"] = self.formatException(record.exc_info)
        return json.dumps(entry, ensure_ascii=False)


def configure_logging(*, level: str, fmt: str) -> None:
    handler = logging.StreamHandler()
    if fmt == "json":
        handler.setFormatter(JsonFormatter())
    else:
        handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
    # Request logs of the HTTP clients would print bot tokens that sit in URL paths (Telegram).
    for noisy in ("httpx", "httpcore", "urllib3"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
    # The chat SDKs' debug records quote the bot token ("Set Bot API URL") and the webhook secret
    # (setWebhook's parameters): never below INFO, whatever the level asked for.
    for sdk in ("telegram", "slack_sdk", "slack_bolt"):
        logging.getLogger(sdk).setLevel(max(logging.INFO, root.level))
