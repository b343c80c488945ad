"""Settings: defaults, parsing, `.env` files, and errors that name the variable but never echo its value."""

from __future__ import annotations

import re
from datetime import timedelta
from pathlib import Path

import pytest
from pydantic import SecretStr

from bot.settings import MIN_API_TOKEN_LENGTH, Settings, SettingsError, load_settings
from tests.conftest import REPO

ENV_EXAMPLE = REPO / ".env.example"
DESIGN = REPO.parent / "shared" / "DESIGN.md"
ERROR_LINE = re.compile(r"^[A-Z][A-Z0-9_]*: \S.*$")


def _aliases() -> set[str]:
    names = set()
    for field in Settings.model_fields.values():
        assert isinstance(field.validation_alias, str), field
        names.add(field.validation_alias)
    return names


SETTING_NAMES = frozenset(_aliases())


@pytest.fixture(autouse=True)
def _clean_environment(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """No setting leaks in from the developer's environment or a `.env` in the working directory."""
    for name in SETTING_NAMES:
        monkeypatch.delenv(name, raising=False)
        monkeypatch.delenv(name.lower(), raising=False)
    monkeypatch.chdir(tmp_path)


def _error_for(**overrides: str) -> SettingsError:
    with pytest.raises(SettingsError) as caught:
        load_settings(_env_file=None, **overrides)
    return caught.value


# --- defaults and parsing -------------------------------------------------------------------------


def test_defaults_are_the_embedded_setup() -> None:
    settings = load_settings(_env_file=None)
    assert settings.database_url == "sqlite:///./coachbot.db"
    assert settings.timezone == "UTC"
    assert settings.http_host == "127.0.0.1"
    assert settings.http_port == 8080
    assert settings.api_tokens == ()
    assert settings.nudge_after == timedelta(hours=4)
    assert settings.expire_after == timedelta(days=3)
    assert settings.llm_timeout_seconds == 20
    assert settings.telegram_max_messages_per_second == 30
    assert settings.slack_api_url == "https://slack.com/api/"
    assert settings.telegram_api_base_url == "https://api.telegram.org/bot"
    assert settings.slack_bot_token is None
    assert settings.slack_app_token is None
    assert settings.telegram_bot_token is None
    assert settings.telegram_webhook_url is None
    assert settings.openai_api_key is None
    assert settings.log_level == "info"
    assert settings.log_format == "text"


@pytest.mark.parametrize(
    ("text", "seconds"),
    [("90s", 90), ("30m", 30 * 60), ("4h", 4 * 3600), ("3d", 3 * 86400), ("3600", 3600)],
)
@pytest.mark.parametrize("variable", ["COACHBOT_NUDGE_AFTER", "COACHBOT_EXPIRE_AFTER"])
def test_durations_accept_units_and_plain_seconds(
    monkeypatch: pytest.MonkeyPatch, variable: str, text: str, seconds: int
) -> None:
    monkeypatch.setenv(variable, text)
    settings = load_settings(_env_file=None)
    value = settings.nudge_after if variable == "COACHBOT_NUDGE_AFTER" else settings.expire_after
    assert value == timedelta(seconds=seconds)


def test_values_from_the_environment_are_used(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DATABASE_URL", "postgresql+psycopg://coachbot@db.internal:5432/coachbot")
    monkeypatch.setenv("COACHBOT_TIMEZONE", "America/Chicago")
    monkeypatch.setenv("COACHBOT_HTTP_PORT", "9090")
    monkeypatch.setenv("COACHBOT_LOG_LEVEL", "DEBUG")
    monkeypatch.setenv("COACHBOT_LLM_TIMEOUT_SECONDS", "7.5")
    settings = load_settings(_env_file=None)
    assert settings.database_url == "postgresql+psycopg://coachbot@db.internal:5432/coachbot"
    assert settings.timezone == "America/Chicago"
    assert settings.http_port == 9090
    assert settings.log_level == "debug"
    assert settings.llm_timeout_seconds == 7.5


def test_api_tokens_are_split_on_commas_into_secrets(monkeypatch: pytest.MonkeyPatch) -> None:
    first, second = "tok-A1b2C3d4E5f6G7h8", "tok-Z9y8X7w6V5u4T3s2"
    monkeypatch.setenv("COACHBOT_API_TOKENS", f" {first} ,{second},, ")
    tokens = load_settings(_env_file=None).api_tokens
    assert isinstance(tokens, tuple)
    assert all(isinstance(token, SecretStr) for token in tokens)
    assert [token.get_secret_value() for token in tokens] == [first, second]


def test_a_short_api_token_is_rejected_without_echoing_any_token(monkeypatch: pytest.MonkeyPatch) -> None:
    good, short = "tok-Q7w8E9r0T1y2U3i4", "shrtK9zP"
    assert len(short) < MIN_API_TOKEN_LENGTH <= len(good)
    monkeypatch.setenv("COACHBOT_API_TOKENS", f"{good},{short}")
    error = _error_for()
    assert len(error.lines) == 1
    assert error.lines[0].startswith("COACHBOT_API_TOKENS: ")
    for text in [*error.lines, str(error)]:
        assert short not in text
        assert good not in text


def test_a_token_of_exactly_the_minimum_length_is_accepted(monkeypatch: pytest.MonkeyPatch) -> None:
    token = "k" * MIN_API_TOKEN_LENGTH
    monkeypatch.setenv("COACHBOT_API_TOKENS", token)
    assert [t.get_secret_value() for t in load_settings(_env_file=None).api_tokens] == [token]


# --- bad values -----------------------------------------------------------------------------------


BAD_VALUES = [
    pytest.param("COACHBOT_HTTP_PORT", "80abcXq7Zk", id="port-not-a-number"),
    pytest.param("COACHBOT_HTTP_PORT", "70000", id="port-out-of-range"),
    pytest.param("COACHBOT_TIMEZONE", "Mars/Olympus", id="unknown-time-zone"),
    pytest.param("COACHBOT_TIMEZONE", "America", id="time-zone-folder-not-zone"),
    pytest.param("COACHBOT_TIMEZONE", "localtime", id="time-zone-localtime"),
    pytest.param("COACHBOT_NUDGE_AFTER", "9" * 400 + "d", id="duration-past-timedelta"),
    pytest.param("COACHBOT_EXPIRE_AFTER", "36500d", id="duration-a-century"),
    pytest.param("COACHBOT_NUDGE_AFTER", "soonish-Kq8v", id="bad-duration"),
    pytest.param("COACHBOT_EXPIRE_AFTER", "0s", id="zero-duration"),
    pytest.param("TELEGRAM_WEBHOOK_SECRET", "s3cr3t with-a-space", id="webhook-secret-space"),
    pytest.param("TELEGRAM_WEBHOOK_SECRET", "Zx9" * 100, id="webhook-secret-300-chars"),
    pytest.param("SLACK_API_URL", "ftp://s3cr3t-host.example/api", id="slack-url-not-http"),
    pytest.param("SLACK_APP_TOKEN", "xoxb-111-222-Sl4ckB0tT0ken", id="slack-bot-token-as-app-token"),
    pytest.param("SLACK_APP_TOKEN", "A0COACH-Sl4ckT0ken", id="slack-app-token-without-prefix"),
    pytest.param("OPENAI_BASE_URL", "file:///etc/s3cr3t-Vb2n", id="openai-url-not-http"),
    pytest.param("DATABASE_URL", "mysql://admin:hunter2-Pw9x@db.internal/coachbot", id="mysql-url"),
    pytest.param("COACHBOT_LOG_LEVEL", "LOUD-s3cr3t", id="log-level"),
    pytest.param("COACHBOT_LLM_TIMEOUT_SECONDS", "-7.25", id="negative-timeout"),
]


@pytest.mark.parametrize(("variable", "value"), BAD_VALUES)
def test_a_bad_value_names_the_variable_and_never_echoes_the_value(
    monkeypatch: pytest.MonkeyPatch, variable: str, value: str
) -> None:
    monkeypatch.setenv(variable, value)
    error = _error_for()
    assert len(error.lines) == 1, error.lines
    line = error.lines[0]
    assert ERROR_LINE.match(line), line
    assert line.startswith(f"{variable}: ")
    for text in [*error.lines, str(error), repr(error)]:
        assert value not in text


def test_every_bad_variable_gets_its_own_line(monkeypatch: pytest.MonkeyPatch) -> None:
    bad = {
        "COACHBOT_HTTP_PORT": "notaport-Yh3",
        "COACHBOT_TIMEZONE": "Mars/Olympus",
        "SLACK_API_URL": "gopher://Jm4-secret",
        "TELEGRAM_WEBHOOK_SECRET": "bad secret Rt5!",
    }
    for name, value in bad.items():
        monkeypatch.setenv(name, value)
    error = _error_for()
    assert sorted(line.split(":", 1)[0] for line in error.lines) == sorted(bad)
    for line in error.lines:
        assert ERROR_LINE.match(line), line
        for value in bad.values():
            assert value not in line
    for value in bad.values():
        assert value not in str(error)


def test_a_bad_override_is_reported_by_its_variable_name() -> None:
    error = _error_for(database_url="mysql://root:Sup3rS3cret@h/db")
    assert len(error.lines) == 1
    assert error.lines[0].startswith("DATABASE_URL: ")
    assert "Sup3rS3cret" not in str(error)


@pytest.mark.parametrize(
    "url", ["sqlite:///./coachbot.db", "sqlite:////var/lib/coachbot.db", "postgresql+psycopg://u@h:5432/db"]
)
def test_supported_database_urls_are_accepted(monkeypatch: pytest.MonkeyPatch, url: str) -> None:
    monkeypatch.setenv("DATABASE_URL", url)
    assert load_settings(_env_file=None).database_url == url


def test_a_webhook_secret_of_the_allowed_shape_is_accepted(monkeypatch: pytest.MonkeyPatch) -> None:
    secret = "Ab_9-" * 51 + "x"
    assert len(secret) == 256
    monkeypatch.setenv("TELEGRAM_WEBHOOK_SECRET", secret)
    value = load_settings(_env_file=None).telegram_webhook_secret
    assert value is not None
    assert value.get_secret_value() == secret


# --- empty values and secrets ---------------------------------------------------------------------


def test_empty_values_count_as_unset(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in (
        "SLACK_BOT_TOKEN",
        "SLACK_APP_TOKEN",
        "TELEGRAM_WEBHOOK_URL",
        "TELEGRAM_WEBHOOK_SECRET",
        "OPENAI_BASE_URL",
        "COACHBOT_HTTP_PORT",
        "COACHBOT_NUDGE_AFTER",
        "COACHBOT_API_TOKENS",
        "DATABASE_URL",
    ):
        monkeypatch.setenv(name, "")
    settings = load_settings(_env_file=None)
    assert settings.slack_bot_token is None
    assert settings.slack_app_token is None
    assert settings.telegram_webhook_url is None
    assert settings.telegram_webhook_secret is None
    assert settings.openai_base_url is None
    assert settings.http_port == 8080
    assert settings.nudge_after == timedelta(hours=4)
    assert settings.api_tokens == ()
    assert settings.database_url == "sqlite:///./coachbot.db"


def test_secrets_are_secretstr_and_never_shown(monkeypatch: pytest.MonkeyPatch) -> None:
    secrets = {
        "SLACK_BOT_TOKEN": "xoxb-111-222-Sl4ckB0tT0ken",
        "SLACK_SIGNING_SECRET": "s1gn1ngS3cretVal",
        "SLACK_APP_TOKEN": "xapp-1-A0-Sl4ckAppT0ken",
        "TELEGRAM_BOT_TOKEN": "123456:T3l3gramB0tT0kenValue",
        "TELEGRAM_WEBHOOK_SECRET": "W3bh00k_Secret-Value",
        "OPENAI_API_KEY": "sk-0p3nA1K3yValue",
        "COACHBOT_API_TOKENS": "ap1T0kenNumber0ne,ap1T0kenNumberTwo",
    }
    for name, value in secrets.items():
        monkeypatch.setenv(name, value)
    settings = load_settings(_env_file=None)
    fields: list[SecretStr | None] = [
        settings.slack_bot_token,
        settings.slack_signing_secret,
        settings.slack_app_token,
        settings.telegram_bot_token,
        settings.telegram_webhook_secret,
        settings.openai_api_key,
        *settings.api_tokens,
    ]
    assert all(isinstance(field, SecretStr) for field in fields)
    revealed = {field.get_secret_value() for field in fields if field is not None}
    expected = {v for k, v in secrets.items() if k != "COACHBOT_API_TOKENS"}
    expected |= set(secrets["COACHBOT_API_TOKENS"].split(","))
    assert revealed == expected
    shown = [repr(settings), str(settings), settings.model_dump_json(), repr(settings.api_tokens)]
    for text in shown:
        for secret in expected:
            assert secret not in text


# --- .env files -----------------------------------------------------------------------------------


def test_an_env_file_is_read(tmp_path: Path) -> None:
    env_file = tmp_path / "custom.env"
    env_file.write_text(
        "# comment\n"
        "COACHBOT_TIMEZONE=Europe/Berlin\n"
        "COACHBOT_NUDGE_AFTER=30m\n"
        "SLACK_BOT_TOKEN=xoxb-from-the-env-file\n"
        "SLACK_SIGNING_SECRET=signing-secret-from-the-env-file\n"
        "SLACK_APP_TOKEN=\n",
        encoding="utf-8",
    )
    settings = load_settings(_env_file=env_file)
    assert settings.timezone == "Europe/Berlin"
    assert settings.nudge_after == timedelta(minutes=30)
    assert settings.slack_bot_token is not None
    assert settings.slack_bot_token.get_secret_value() == "xoxb-from-the-env-file"
    assert settings.slack_app_token is None


@pytest.mark.parametrize(
    ("values", "line"),
    [
        pytest.param(
            {"SLACK_BOT_TOKEN": "xoxb-1"},
            "SLACK_SIGNING_SECRET: required with SLACK_BOT_TOKEN in HTTP mode (or set SLACK_APP_TOKEN)",
            id="slack-http-without-signing-secret",
        ),
        pytest.param(
            {"TELEGRAM_WEBHOOK_URL": "https://coach.example.com/telegram/webhook"},
            "TELEGRAM_WEBHOOK_SECRET: required with TELEGRAM_WEBHOOK_URL",
            id="telegram-webhook-without-secret",
        ),
    ],
)
def test_incomplete_platform_settings_name_the_missing_variable(values: dict[str, str], line: str) -> None:
    with pytest.raises(SettingsError) as caught:
        load_settings(_env_file=None, **values)
    assert caught.value.lines == [line]


def test_a_bot_token_in_slack_app_token_says_which_token_goes_where() -> None:
    """Socket Mode needs the app-level token; with the bot token, Slack answers not_allowed_token_type."""
    error = _error_for(SLACK_BOT_TOKEN="xoxb-1-2-Sl4ckB0tT0ken", SLACK_APP_TOKEN="xoxb-1-2-Sl4ckB0tT0ken")
    assert error.lines == [
        "SLACK_APP_TOKEN: expected the app-level token (xapp-...) with the connections:write scope; "
        "the bot token (xoxb-...) goes in SLACK_BOT_TOKEN"
    ]
    assert "Sl4ckB0tT0ken" not in str(error)


def test_socket_mode_needs_no_signing_secret() -> None:
    settings = load_settings(_env_file=None, SLACK_BOT_TOKEN="xoxb-1", SLACK_APP_TOKEN="xapp-1")
    assert settings.slack_signing_secret is None


def test_the_environment_wins_over_the_env_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    env_file = tmp_path / ".env"
    env_file.write_text("COACHBOT_TIMEZONE=Europe/Berlin\nCOACHBOT_HTTP_PORT=9000\n", encoding="utf-8")
    monkeypatch.setenv("COACHBOT_TIMEZONE", "Asia/Tokyo")
    settings = load_settings(_env_file=env_file)
    assert settings.timezone == "Asia/Tokyo"
    assert settings.http_port == 9000


def test_dot_env_in_the_working_directory_is_read_by_default(tmp_path: Path) -> None:
    (tmp_path / ".env").write_text("COACHBOT_EXPIRE_AFTER=90s\n", encoding="utf-8")
    assert load_settings().expire_after == timedelta(seconds=90)


def test_a_bad_value_in_an_env_file_is_named_not_echoed(tmp_path: Path) -> None:
    env_file = tmp_path / ".env"
    env_file.write_text("TELEGRAM_WEBHOOK_SECRET=not allowed Hq2w\n", encoding="utf-8")
    with pytest.raises(SettingsError) as caught:
        load_settings(_env_file=env_file)
    assert [line.split(":", 1)[0] for line in caught.value.lines] == ["TELEGRAM_WEBHOOK_SECRET"]
    assert "Hq2w" not in str(caught.value)


# --- .env.example and DESIGN.md ------------------------------------------------------------------------


def _example_variables() -> list[str]:
    names = []
    for line in ENV_EXAMPLE.read_text(encoding="utf-8").splitlines():
        match = re.match(r"^([A-Za-z_][A-Za-z0-9_]*)=", line)
        if match:
            names.append(match[1])
    return names


def _design_setting_names() -> set[str]:
    text = DESIGN.read_text(encoding="utf-8")
    start = text.index("Settings (environment or `.env`")
    block_start = text.index("```", start) + 3
    block = text[block_start : text.index("```", block_start)]
    names: set[str] = set()
    for line in block.strip().splitlines():
        # Each line starts with one or more names (`A, B` or `PREFIX_A/B`), then a description.
        for token in re.split(r"[,\s]+", line.strip()):
            if not re.fullmatch(r"[A-Z][A-Z0-9]*_[A-Z0-9_]+(/[A-Z0-9_]+)*", token):
                break
            first, *more = token.split("/")
            names.add(first)
            prefix = first.rsplit("_", 1)[0]
            names.update(f"{prefix}_{suffix}" for suffix in more)
    return names


def test_every_setting_in_the_design_is_in_env_example() -> None:
    if not DESIGN.exists():
        pytest.skip(f"{DESIGN} is not present")
    documented = _design_setting_names()
    assert {"DATABASE_URL", "COACHBOT_HTTP_HOST", "COACHBOT_HTTP_PORT", "COACHBOT_LOG_FORMAT"} <= documented
    assert all(re.fullmatch(r"[A-Z][A-Z0-9_]+", name) for name in documented), documented
    missing = documented - set(_example_variables())
    assert not missing, f"settings missing from .env.example: {sorted(missing)}"
    assert documented <= SETTING_NAMES, sorted(documented - SETTING_NAMES)


def test_every_env_example_variable_is_a_known_setting_and_loads() -> None:
    variables = _example_variables()
    assert variables, ".env.example defines no variables"
    assert len(variables) == len(set(variables)), "a variable is set twice in .env.example"
    unknown = set(variables) - SETTING_NAMES
    assert not unknown, f"unknown settings in .env.example: {sorted(unknown)}"
    assert set(variables) == SETTING_NAMES, sorted(SETTING_NAMES - set(variables))
    # The example, copied to .env as it is, is valid and spells out the defaults.
    assert load_settings(_env_file=ENV_EXAMPLE) == load_settings(_env_file=None)


def test_every_env_example_variable_has_a_comment() -> None:
    previous_kind = "blank"
    uncommented = []
    for line in ENV_EXAMPLE.read_text(encoding="utf-8").splitlines():
        if re.match(r"^[A-Za-z_][A-Za-z0-9_]*=", line):
            if previous_kind == "blank":
                uncommented.append(line.split("=", 1)[0])
            continue
        previous_kind = "comment" if line.startswith("#") else "blank"
    assert not uncommented, f"variables without a comment above them: {uncommented}"
