"""Logging set-up: whatever level an operator asks for, secrets that chat SDKs log at DEBUG stay out."""

from __future__ import annotations

import logging
from collections.abc import Iterator

import pytest

from bot.logs import configure_logging

QUIET = ("httpx", "httpcore", "urllib3", "telegram", "slack_sdk", "slack_bolt")


@pytest.fixture
def restored_logging() -> Iterator[None]:
    root = logging.getLogger()
    handlers, level = root.handlers[:], root.level
    levels = {name: logging.getLogger(name).level for name in QUIET}
    yield
    root.handlers[:], root.level = handlers, level
    for name, saved in levels.items():
        logging.getLogger(name).setLevel(saved)


@pytest.mark.usefixtures("restored_logging")
def test_debug_level_keeps_the_sdks_token_and_secret_records_out() -> None:
    """PTB logs the bot token ("Set Bot API URL") and setWebhook's secret_token at DEBUG."""
    configure_logging(level="debug", fmt="text")
    assert logging.getLogger("bot").isEnabledFor(logging.DEBUG)
    for sdk in ("telegram", "telegram.ext.ExtBot", "slack_sdk", "slack_bolt"):
        assert not logging.getLogger(sdk).isEnabledFor(logging.DEBUG), sdk
        assert logging.getLogger(sdk).isEnabledFor(logging.INFO), sdk


@pytest.mark.usefixtures("restored_logging")
def test_a_quieter_level_stays_quiet_for_the_sdks_too() -> None:
    configure_logging(level="warning", fmt="text")
    assert not logging.getLogger("telegram").isEnabledFor(logging.INFO)
    assert logging.getLogger("telegram").isEnabledFor(logging.WARNING)
