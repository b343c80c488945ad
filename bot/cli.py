"""The ``coachbot`` command line. Heavy modules are imported inside commands so ``--help`` stays fast."""

from __future__ import annotations

import getpass
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager, suppress
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, NoReturn

import typer

if TYPE_CHECKING:
    from sqlalchemy import Engine

    from bot.settings import Settings
    from content.problems import Problem

app = typer.Typer(
    help="coachbot: a self-hosted chat coach for sales teams.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
db_app = typer.Typer(help="Create or migrate the database schema.", no_args_is_help=True)
pack_app = typer.Typer(help="Validate, load and list content packs.", no_args_is_help=True)
roster_app = typer.Typer(help="Load the roster of teams and people.", no_args_is_help=True)
activities_app = typer.Typer(help="Import logged sales activities.", no_args_is_help=True)
app.add_typer(db_app, name="db")
app.add_typer(pack_app, name="pack")
app.add_typer(roster_app, name="roster")
app.add_typer(activities_app, name="activities")

DryRun = Annotated[
    bool, typer.Option("--dry-run", help="Validate and report what would change; write nothing.")
]
EXIT_INVALID_INPUT = 1
EXIT_USAGE = 2


class _Context:
    """What commands share: settings, built once on first use, and the engine made from them."""

    def __init__(self) -> None:
        self._settings: Settings | None = None
        self._engine: Engine | None = None

    @property
    def settings(self) -> Settings:
        if self._settings is None:
            from bot.settings import SettingsError, load_settings

            try:
                self._settings = load_settings()
            except SettingsError as exc:
                _fail("\n".join(exc.lines), code=EXIT_USAGE)
        return self._settings

    def engine(self, *, url: str | None = None) -> Engine:
        if self._engine is None:
            from storage.db import make_engine
            from storage.errors import DatabaseUrlError

            try:
                self._engine = make_engine(url or self.settings.database_url)
            except DatabaseUrlError as exc:
                _fail(f"DATABASE_URL: {exc}", code=EXIT_USAGE)
        return self._engine

    def close(self) -> None:
        if self._engine is not None:
            self._engine.dispose()


def _fail(message: str, *, code: int = EXIT_INVALID_INPUT) -> NoReturn:
    typer.echo(message, err=True)
    raise typer.Exit(code)


def _actor() -> str:
    try:
        return f"cli:{getpass.getuser()}"
    except (KeyError, OSError):
        return "cli:unknown"


@app.callback()
def _root(ctx: typer.Context) -> None:
    state = _Context()
    ctx.obj = state
    ctx.call_on_close(state.close)


def _state(ctx: typer.Context) -> _Context:
    state = ctx.obj
    assert isinstance(state, _Context)
    return state


@contextmanager
def _reported_errors() -> Iterator[None]:
    """Turn the typed errors of the lower rooms into messages and exit codes; never a traceback."""
    from sqlalchemy.exc import OperationalError

    from bot.protocol import AdapterStartError
    from content.problems import ContentError
    from storage.errors import StorageError

    try:
        yield
    except AdapterStartError as exc:
        _fail(str(exc))
    except ContentError as exc:
        _print_problems(exc.problems)
        _fail(f"{len(exc.errors)} problem(s) found; nothing was written.")
    except StorageError as exc:
        _fail(str(exc))
    except OperationalError as exc:
        _fail(f"database error: {exc.orig}" if exc.orig else "database error")


def _print_problems(problems: list[Problem]) -> None:
    for problem in problems:
        typer.echo(str(problem), err=not problem.warning)


def _ready_engine(state: _Context) -> Engine:
    from storage.schema import require_current_schema

    engine = state.engine()
    require_current_schema(engine)
    return engine


@contextmanager
def _progress(total: int, label: str) -> Iterator[Callable[[str], None] | None]:
    """A progress bar on a terminal; nothing when output is piped or captured."""
    if total < 1 or not sys.stdout.isatty():
        yield None
        return
    with typer.progressbar(length=total, label=label) as bar:
        yield lambda _key: bar.update(1)


# --- db -----------------------------------------------------------------------------------------


@db_app.command("upgrade")
def db_upgrade(ctx: typer.Context) -> None:
    """Create or migrate the schema (safe to run from several processes at once on Postgres)."""
    from storage.schema import current_revision, upgrade_database

    with _reported_errors():
        engine = _state(ctx).engine()
        before = current_revision(engine)
        upgrade_database(engine)
        after = current_revision(engine)
    typer.echo(f"schema at {after}" + ("" if before == after else f" (was {before or 'empty'})"))


# --- packs --------------------------------------------------------------------------------------


@pack_app.command("validate")
def pack_validate(files: Annotated[list[Path], typer.Argument(help="Pack YAML files.")]) -> None:
    """Check packs; exit 0 if all are valid, else print one FILE:LINE:COL: message per problem and exit 1."""
    from content.loading import validate_pack_files

    valid, problems = validate_pack_files(files)
    _print_problems(problems)
    errors = [p for p in problems if not p.warning]
    if errors:
        _fail(f"{len(errors)} problem(s) in {len(files) - len(valid)} of {len(files)} file(s)")
    for pack in valid:
        items = pack.spec.items
        mcqs = sum(1 for i in items if i.type == "mcq")
        typer.echo(f"{pack.file}: ok ({pack.spec.pack}: {mcqs} MCQs, {len(items) - mcqs} role-plays)")


@pack_app.command("load")
def pack_load(
    ctx: typer.Context,
    files: Annotated[list[Path], typer.Argument(help="Pack YAML files.")],
    dry_run: DryRun = False,
) -> None:
    """Validate, then upsert every pack in one transaction; print items added, changed and retired."""
    from content.loading import describe_pack_report, load_validated_packs, validate_pack_files

    state = _state(ctx)
    valid, problems = validate_pack_files(files)
    errors = [p for p in problems if not p.warning]
    if errors:
        _print_problems(problems)
        _fail(f"{len(errors)} problem(s) found; nothing was written.")
    with _reported_errors():
        engine = _ready_engine(state)
        total = sum(len(pack.spec.items) for pack in valid)
        with _progress(total, "loading items") as progress:
            batch = load_validated_packs(
                engine, valid, actor=_actor(), dry_run=dry_run, progress=progress, warnings=problems
            )
    _print_problems(batch.warnings)
    for report in batch.packs:
        typer.echo(describe_pack_report(report))
    if dry_run:
        typer.echo("dry run: nothing was written")


@pack_app.command("list")
def pack_list(ctx: typer.Context) -> None:
    """List loaded packs with their live and retired item counts."""
    from storage.db import read_session
    from storage.packs import list_packs

    with _reported_errors():
        engine = _ready_engine(_state(ctx))
        with read_session(engine) as session:
            packs = list_packs(session)
    if not packs:
        typer.echo("no packs loaded; try `coachbot pack load FILE.yaml`")
        return
    for pack in packs:
        retired = f", {pack.retired_items} retired" if pack.retired_items else ""
        loaded = pack.loaded_at.strftime("%Y-%m-%d %H:%M UTC")
        typer.echo(
            f"{pack.key} v{pack.version}: {pack.title} ({pack.active_items} items{retired}; loaded {loaded})"
        )


# --- roster and activities ------------------------------------------------------------------------


@roster_app.command("load")
def roster_load(
    ctx: typer.Context,
    file: Annotated[Path, typer.Argument(help="Roster YAML or CSV.")],
    dry_run: DryRun = False,
) -> None:
    """Load a roster; people missing from it are deactivated (never deleted)."""
    from content.loading import load_roster

    with _reported_errors():
        result = load_roster(_ready_engine(_state(ctx)), file, actor=_actor(), dry_run=dry_run)
    for warning in result.warnings:
        typer.echo(f"warning: {warning}")
    changes = result.changes
    if not changes.changed_anything:
        typer.echo("roster unchanged")
    for label, names in (
        ("teams added", changes.teams_added),
        ("teams updated", changes.teams_updated),
        ("people added", changes.people_added),
        ("people updated", changes.people_updated),
        ("people reactivated", changes.people_reactivated),
        ("people deactivated", changes.people_deactivated),
    ):
        if names:
            typer.echo(f"{label} ({len(names)}): {', '.join(names)}")
    if dry_run:
        typer.echo("dry run: nothing was written")


@activities_app.command("import")
def activities_import(
    ctx: typer.Context,
    file: Annotated[Path, typer.Argument(help="Activities CSV (UTF-8, with a header row).")],
    dry_run: DryRun = False,
) -> None:
    """Import activities: all rows or none; each bad row is named with its line and column."""
    from content.loading import import_activity_rows, read_activity_file

    state = _state(ctx)
    with _reported_errors():
        rows = read_activity_file(file)
        engine = _ready_engine(state)
        with _progress(len(rows), "storing rows") as progress:
            report = import_activity_rows(
                engine,
                rows,
                file=str(file),
                actor=_actor(),
                default_timezone=state.settings.timezone,
                dry_run=dry_run,
                progress=progress,
            )
    total = report.added + report.updated + report.unchanged
    typer.echo(f"{total} rows: {report.added} added, {report.updated} updated, {report.unchanged} unchanged")
    if report.follow_ups:
        typer.echo(f"{report.follow_ups} follow-up reminder(s) requested")
    if dry_run:
        typer.echo("dry run: nothing was written")


# --- status and demo ------------------------------------------------------------------------------


@app.command("status")
def status(ctx: typer.Context) -> None:
    """Outbox backlog, unreachable or never-connected people, and the last digest per team."""
    from storage.db import read_session
    from storage.status import deployment_status

    with _reported_errors():
        engine = _ready_engine(_state(ctx))
        with read_session(engine) as session:
            report = deployment_status(session)
    typer.echo(f"people: {report.active_people} active, {report.inactive_people} deactivated")
    backlog = ", ".join(f"{count} {name}" for name, count in sorted(report.outbox.items())) or "empty"
    typer.echo(f"outbox: {backlog}")
    typer.echo(f"never connected ({len(report.never_connected)}): {', '.join(report.never_connected) or '-'}")
    typer.echo(f"unreachable ({len(report.unreachable)}): {', '.join(report.unreachable) or '-'}")
    for team, week in sorted(report.last_digest.items()):
        typer.echo(f"team {team}: last digest {week or 'never'}")


@app.command("demo")
def demo(
    ctx: typer.Context,
    out: Annotated[Path, typer.Option(help="Folder for the demo database.")] = Path("demo-out"),
) -> None:
    """Load the bundled packs, sample roster and sample activities into OUT/demo.db (never DATABASE_URL)."""
    from bot.demo import run_demo

    out.mkdir(parents=True, exist_ok=True)
    with _reported_errors():
        engine = _state(ctx).engine(url=f"sqlite:///{(out / 'demo.db').resolve()}")
        for line in run_demo(engine, actor=_actor()):
            typer.echo(line)


@app.command("chat")
def chat(
    ctx: typer.Context,
    email: Annotated[str, typer.Option("--as", help="Be this roster person (their email).")],
    item: Annotated[
        str | None, typer.Option("--item", help="Start with this item, as PACK/ITEM (preview a question).")
    ] = None,
) -> None:
    """Be a rep in the terminal: answer questions and role-plays, try every command (reads standard input)."""
    import asyncio

    from bot.chat import ChatError, run_console_chat
    from bot.composition import build_grader, coach_config

    state = _state(ctx)
    with _reported_errors():
        engine = _ready_engine(state)
        try:
            asyncio.run(
                run_console_chat(
                    engine=engine,
                    email=email,
                    item=item,
                    stdin=sys.stdin,
                    stdout=sys.stdout,
                    grader=build_grader(state.settings),
                    config=coach_config(state.settings),
                )
            )
        except ChatError as exc:
            _fail(str(exc))
        except KeyboardInterrupt:
            typer.echo("")


@app.command("invite")
def invite(
    ctx: typer.Context,
    team: Annotated[str | None, typer.Option("--team", help="Only this team's people.")] = None,
    days: Annotated[int, typer.Option("--days", min=1, max=90, help="How long the links stay valid.")] = 14,
    bot_username: Annotated[
        str | None, typer.Option("--bot-username", help="The bot's username (default: asked of Telegram).")
    ] = None,
) -> None:
    """Telegram deep links binding a chat to a roster person: one-time codes for people not yet connected."""
    import asyncio
    from datetime import timedelta

    from storage.audit import record_audit
    from storage.db import write_session
    from storage.models import Platform, utcnow
    from storage.onboarding import create_invites

    state = _state(ctx)
    settings = state.settings
    if bot_username is None:
        if settings.telegram_bot_token is None:
            _fail(
                "TELEGRAM_BOT_TOKEN: needed to ask Telegram for the bot's username (or pass --bot-username)"
            )
        from bot.adapters.telegram.service import fetch_bot_username

        try:
            bot_username = asyncio.run(
                fetch_bot_username(
                    token=settings.telegram_bot_token.get_secret_value(),
                    base_url=settings.telegram_api_base_url,
                )
            )
        except Exception as exc:
            _fail(
                f"could not ask Telegram for the bot's username ({type(exc).__name__}); pass --bot-username"
            )
    with _reported_errors():
        engine = _ready_engine(state)
        with write_session(engine) as session:
            invites = create_invites(
                session, team_key=team, platform=Platform.TELEGRAM, ttl=timedelta(days=days), now=utcnow()
            )
            if invites:
                record_audit(
                    session,
                    actor=_actor(),
                    action="invite.create",
                    details={"team": team, "people": [person.email for person, _ in invites], "days": days},
                )
    if not invites:
        typer.echo("everyone is connected to Telegram already")
        return
    for person, code in invites:
        typer.echo(f"{person.email}\t{person.name}\thttps://t.me/{bot_username}?start={code}")
    typer.echo(f"{len(invites)} link(s), each valid once for {days} days", err=True)


@app.command("run")
def run(ctx: typer.Context) -> None:
    """Serve: the chat adapters configured in the environment and the HTTP app (migrates first)."""
    import asyncio

    from bot.logs import configure_logging
    from bot.runtime import serve

    settings = _state(ctx).settings
    configure_logging(level=settings.log_level, fmt=settings.log_format)
    with _reported_errors(), suppress(KeyboardInterrupt):
        asyncio.run(serve(settings))


def main(argv: list[str] | None = None) -> None:
    """Entry point of the ``coachbot`` script."""
    app(args=argv, prog_name="coachbot")


if __name__ == "__main__":
    main()
