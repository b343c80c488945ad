"""Settings from the environment or ``.env``; built once in ``main()`` and passed down.

A bad value is reported as ``VARIABLE: what is wrong`` and never echoed, since it may be a secret.
"""

from __future__ import annotations

import re
from datetime import timedelta
from typing import Annotated, Any, Literal

from pydantic import Field, SecretStr, ValidationError, field_validator, model_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

from content.fields import check_timezone

_DURATION = re.compile(r"^\s*([0-9]{1,9}(?:\.[0-9]{1,9})?)\s*(s|sec|m|min|h|d)\s*$", re.IGNORECASE)
_SECONDS = re.compile(r"[0-9]{1,12}(?:\.[0-9]{1,9})?")
MAX_DURATION = timedelta(days=3650)
"""Longer than any nudge, expiry or retention anyone means; far below what ``timedelta`` overflows at."""
_UNIT_SECONDS = {"s": 1, "sec": 1, "m": 60, "min": 60, "h": 3600, "d": 86400}
_WEBHOOK_SECRET = re.compile(r"^[A-Za-z0-9_-]{1,256}$")
MIN_API_TOKEN_LENGTH = 16
SLACK_APP_TOKEN_PREFIX = "xapp-"  # noqa: S105 (a prefix, not a secret)
"""Slack's app-level tokens, which Socket Mode needs, start with this
(https://api.slack.com/authentication/token-types#app-level)."""


class SettingsError(Exception):
    """Settings are invalid; ``lines`` holds one ``VARIABLE: message`` per problem."""

    def __init__(self, lines: list[str]) -> None:
        self.lines = lines
        super().__init__("; ".join(lines))


def parse_duration(value: Any) -> timedelta:
    """Accept ``90s``, ``30m``, ``4h``, ``3d`` or a number of seconds."""
    if isinstance(value, timedelta):
        return value
    if isinstance(value, int | float) and not isinstance(value, bool):
        seconds = float(value)
    else:
        text = str(value).strip()
        match = _DURATION.match(text)
        if match:
            seconds = float(match[1]) * _UNIT_SECONDS[match[2].lower()]
        elif _SECONDS.fullmatch(text):
            seconds = float(text)
        else:
            raise ValueError("expected a duration such as 90s, 30m, 4h or 3d")
    if not 0 < seconds <= MAX_DURATION.total_seconds():
        raise ValueError(f"must be longer than zero and at most {MAX_DURATION.days} days")
    return timedelta(seconds=seconds)


class Settings(BaseSettings):
    model_config = SettingsConfigDict(
        env_file=".env",
        env_file_encoding="utf-8",
        extra="ignore",
        case_sensitive=False,
        populate_by_name=True,
        env_ignore_empty=True,
    )

    database_url: str = Field(default="sqlite:///./coachbot.db", validation_alias="DATABASE_URL")
    timezone: str = Field(default="UTC", validation_alias="COACHBOT_TIMEZONE")
    http_host: str = Field(default="127.0.0.1", validation_alias="COACHBOT_HTTP_HOST")
    http_port: int = Field(default=8080, ge=1, le=65535, validation_alias="COACHBOT_HTTP_PORT")
    api_tokens: Annotated[tuple[SecretStr, ...], NoDecode] = Field(
        default=(), validation_alias="COACHBOT_API_TOKENS"
    )
    nudge_after: timedelta = Field(default=timedelta(hours=4), validation_alias="COACHBOT_NUDGE_AFTER")
    expire_after: timedelta = Field(default=timedelta(days=3), validation_alias="COACHBOT_EXPIRE_AFTER")
    log_level: Literal["debug", "info", "warning", "error"] = Field(
        default="info", validation_alias="COACHBOT_LOG_LEVEL"
    )
    log_format: Literal["text", "json"] = Field(default="text", validation_alias="COACHBOT_LOG_FORMAT")

    slack_bot_token: SecretStr | None = Field(default=None, validation_alias="SLACK_BOT_TOKEN")
    slack_signing_secret: SecretStr | None = Field(default=None, validation_alias="SLACK_SIGNING_SECRET")
    slack_app_token: SecretStr | None = Field(default=None, validation_alias="SLACK_APP_TOKEN")
    slack_api_url: str = Field(default="https://slack.com/api/", validation_alias="SLACK_API_URL")

    telegram_bot_token: SecretStr | None = Field(default=None, validation_alias="TELEGRAM_BOT_TOKEN")
    telegram_api_base_url: str = Field(
        default="https://api.telegram.org/bot", validation_alias="TELEGRAM_API_BASE_URL"
    )
    telegram_webhook_url: str | None = Field(default=None, validation_alias="TELEGRAM_WEBHOOK_URL")
    telegram_webhook_secret: SecretStr | None = Field(
        default=None, validation_alias="TELEGRAM_WEBHOOK_SECRET"
    )
    telegram_max_messages_per_second: float = Field(
        default=30.0, gt=0, le=1000, validation_alias="TELEGRAM_MAX_MESSAGES_PER_SECOND"
    )

    openai_api_key: SecretStr | None = Field(default=None, validation_alias="OPENAI_API_KEY")
    openai_base_url: str | None = Field(default=None, validation_alias="OPENAI_BASE_URL")
    llm_model: str | None = Field(default=None, validation_alias="COACHBOT_LLM_MODEL")
    llm_timeout_seconds: float = Field(
        default=20.0, gt=0, le=600, validation_alias="COACHBOT_LLM_TIMEOUT_SECONDS"
    )

    @model_validator(mode="after")
    def _complete_platform_settings(self) -> Settings:
        if (
            self.slack_bot_token is not None
            and self.slack_signing_secret is None
            and self.slack_app_token is None
        ):
            raise ValueError(
                "SLACK_SIGNING_SECRET: required with SLACK_BOT_TOKEN in HTTP mode (or set SLACK_APP_TOKEN)"
            )
        if self.telegram_webhook_url is not None and self.telegram_webhook_secret is None:
            raise ValueError("TELEGRAM_WEBHOOK_SECRET: required with TELEGRAM_WEBHOOK_URL")
        return self

    @field_validator("timezone")
    @classmethod
    def _known_timezone(cls, value: str) -> str:
        return check_timezone(value)

    @field_validator("database_url")
    @classmethod
    def _supported_database(cls, value: str) -> str:
        if not value.startswith(("sqlite:///", "postgresql+psycopg://", "postgresql://")):
            raise ValueError("expected sqlite:///FILE or postgresql+psycopg://USER@HOST/DB")
        return value

    @field_validator("api_tokens", mode="before")
    @classmethod
    def _split_tokens(cls, value: Any) -> Any:
        if isinstance(value, str):
            value = [part.strip() for part in value.split(",") if part.strip()]
        for token in value or ():
            text = token.get_secret_value() if isinstance(token, SecretStr) else str(token)
            if len(text) < MIN_API_TOKEN_LENGTH:
                raise ValueError(f"each token must be at least {MIN_API_TOKEN_LENGTH} characters")
        return value

    @field_validator("nudge_after", "expire_after", mode="before")
    @classmethod
    def _durations(cls, value: Any) -> timedelta:
        return parse_duration(value)

    @field_validator("log_level", "log_format", mode="before")
    @classmethod
    def _lowercase(cls, value: Any) -> Any:
        return value.strip().lower() if isinstance(value, str) else value

    @field_validator("telegram_webhook_secret")
    @classmethod
    def _webhook_secret_shape(cls, value: SecretStr | None) -> SecretStr | None:
        if value is not None and not _WEBHOOK_SECRET.match(value.get_secret_value()):
            raise ValueError("must be 1-256 characters of A-Z, a-z, 0-9, _ and -")
        return value

    @field_validator("slack_app_token")
    @classmethod
    def _app_level_token(cls, value: SecretStr | None) -> SecretStr | None:
        if value is not None and not value.get_secret_value().startswith(SLACK_APP_TOKEN_PREFIX):
            raise ValueError(
                "expected the app-level token (xapp-...) with the connections:write scope; "
                "the bot token (xoxb-...) goes in SLACK_BOT_TOKEN"
            )
        return value

    @field_validator("slack_api_url", "telegram_api_base_url", "telegram_webhook_url", "openai_base_url")
    @classmethod
    def _http_url(cls, value: str | None) -> str | None:
        if value is not None and not value.startswith(("http://", "https://")):
            raise ValueError("expected an http:// or https:// URL")
        return value


def load_settings(**overrides: Any) -> Settings:
    """Build settings; raise :class:`SettingsError` naming each bad variable without its value."""
    try:
        return Settings(**overrides)
    except ValidationError as exc:
        lines = []
        for detail in exc.errors(include_url=False, include_input=False, include_context=False):
            message = str(detail["msg"]).removeprefix("Value error, ")
            # Checks across settings name their variable in the message itself.
            lines.append(f"{str(detail['loc'][0]).upper()}: {message}" if detail["loc"] else message)
        raise SettingsError(lines) from None
