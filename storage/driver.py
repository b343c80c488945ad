"""Prebuilt Core statements run straight on the driver connection, for the answer path.

SQLAlchemy's execution machinery costs about 20 µs a statement here (execution context, events, result
objects), several times what SQLite itself spends on a small indexed statement, and an MCQ pick runs
five to seven of them (measured by ``benchmarks/bench_answer_path.py``). The statements stay SQLAlchemy
Core, compiled once per dialect by SQLAlchemy's own compiler, and every value goes through the column
types' own bind and result processors, so a row written or read here is the same as through a
``Session`` (``tests/storage/test_driver.py`` checks both ways, on SQLite and Postgres). Driver errors
are raised as SQLAlchemy's exceptions (``IntegrityError``, ``OperationalError``), as everywhere else.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping, Sequence
from collections.abc import Set as AbstractSet
from contextlib import contextmanager
from typing import Any, cast

from sqlalchemy import Engine
from sqlalchemy.engine import Dialect
from sqlalchemy.exc import DBAPIError
from sqlalchemy.sql.compiler import SQLCompiler
from sqlalchemy.sql.dml import ValuesBase
from sqlalchemy.sql.elements import ClauseElement
from sqlalchemy.sql.selectable import ReturnsRows

from storage.errors import StorageError

Processor = Callable[[Any], Any]


class PreparedStatement:
    """One statement compiled for one dialect, with the bind and result processors of its types.

    An INSERT or UPDATE is compiled for the parameter names it is run with, as SQLAlchemy does, and must
    be given every value whose default is computed in Python (a timestamp, an empty list).
    """

    def __init__(
        self, statement: ClauseElement, dialect: Dialect, keys: frozenset[str] | None = None
    ) -> None:
        compiled = statement.compile(dialect=dialect, column_keys=sorted(keys) if keys is not None else None)
        if not isinstance(compiled, SQLCompiler):
            raise StorageError(f"cannot prepare {type(statement).__name__} for the driver path")
        if any(bind.expanding for bind in compiled.binds.values()):
            raise StorageError(f"expanding IN parameters cannot run on the driver path: {compiled.string}")
        computed = [*compiled.insert_prefetch, *compiled.update_prefetch]
        if computed:
            names = sorted(column.name for column in computed)
            raise StorageError(f"give values for {names} explicitly on the driver path: {compiled.string}")
        if compiled.escaped_bind_names:
            raise StorageError(
                f"bind names that need escaping cannot run on the driver path: {compiled.string}"
            )
        self.sql = compiled.string
        # The statement's own values (literals) are fixed; callers give exactly the named parameters.
        self._defaults: dict[str, Any] = {}
        required: set[str] = set()
        processors: dict[str, Processor] = {}
        for bind, name in compiled.bind_names.items():
            if bind.required:
                required.add(name)
            else:
                self._defaults[name] = bind.effective_value
            processor = bind.type.dialect_impl(dialect).bind_processor(dialect)
            if processor is not None:
                processors[name] = processor
        self._required: AbstractSet[str] = frozenset(required)
        self._bind_processors: Mapping[str, Processor] = processors
        self._names: Sequence[str] | None = compiled.positiontup if compiled.positional else None
        dml = compiled.isinsert or compiled.isupdate or compiled.isdelete
        self.returns_rows = bool(compiled.effective_returning) if dml else True
        self._dialect = dialect
        # An INSERT may return the primary key on its own (Postgres): its columns are the compiler's.
        selected = statement.exported_columns if isinstance(statement, ReturnsRows) else ()
        columns = (compiled.effective_returning or ()) if dml else selected
        self._column_types = [column.type.dialect_impl(dialect) for column in columns]
        self._result_processors: list[Processor | None] | None = None

    def arguments(self, params: Mapping[str, Any] | None) -> Sequence[Any] | dict[str, Any]:
        """The driver's parameters: the statement's own values and exactly its named ones, processed."""
        given = params.keys() if params else frozenset[str]()
        if self._required != given:
            missing, unknown = self._required - given, given - self._required
            raise StorageError(
                f"missing {sorted(missing)}, unknown {sorted(unknown)} parameters for: {self.sql}"
            )
        values = dict(self._defaults)
        if params:
            values.update(params)
        for name, processor in self._bind_processors.items():
            values[name] = processor(values[name])
        if self._names is None:
            return values
        return [values[name] for name in self._names]

    def rows(
        self, raw: Sequence[Sequence[Any]], description: Sequence[Sequence[Any]]
    ) -> list[tuple[Any, ...]]:
        """Rows as the column types read them; processors are made once, from the driver's type codes."""
        processors = self._result_processors
        if processors is None:
            codes = [column[1] for column in description]
            processors = [
                column_type.result_processor(self._dialect, code)
                for column_type, code in zip(self._column_types, codes, strict=True)
            ]
            self._result_processors = processors
        if not any(processors):
            return [tuple(row) for row in raw]
        return [
            tuple(
                processor(value) if processor is not None else value
                for processor, value in zip(processors, row, strict=True)
            )
            for row in raw
        ]


class PreparedStatements:
    """Statements prepared on first use for one engine's dialect; one per engine, kept by its owner.

    Meant for statements built once at import time: a statement built per call would be prepared per
    call, so past ``limit`` entries nothing more is kept and such statements just run slower. Shared by
    the storage threads: at worst two of them prepare the same statement at once and one copy is kept.
    """

    def __init__(self, dialect: Dialect, *, limit: int = 128) -> None:
        self.dialect = dialect
        self._limit = limit
        self._prepared: dict[tuple[int, frozenset[str] | None], tuple[ClauseElement, PreparedStatement]] = {}

    def get(self, statement: ClauseElement, params: Mapping[str, Any] | None) -> PreparedStatement:
        keys = frozenset(params or ()) if isinstance(statement, ValuesBase) else None
        found = self._prepared.get((id(statement), keys))
        if found is not None and found[0] is statement:
            return found[1]
        prepared = PreparedStatement(statement, self.dialect, keys)
        if len(self._prepared) < self._limit:
            # Kept with its statement, so the id cannot be reused by another object meanwhile.
            self._prepared[(id(statement), keys)] = (statement, prepared)
        return prepared


class DriverResult:
    """The rows (all fetched) and row count of one statement, with the few ``Result`` methods we use."""

    def __init__(self, rows: list[tuple[Any, ...]], rowcount: int) -> None:
        self._rows = rows
        self.rowcount = rowcount

    def first(self) -> tuple[Any, ...] | None:
        return self._rows[0] if self._rows else None

    def one(self) -> tuple[Any, ...]:
        if len(self._rows) != 1:
            raise StorageError(f"expected one row, found {len(self._rows)}")
        return self._rows[0]

    def scalar_one(self) -> Any:
        return self.one()[0]

    def all(self) -> list[tuple[Any, ...]]:
        return list(self._rows)


class DriverTransaction:
    """Executes prepared statements inside one open driver transaction."""

    def __init__(self, connection: Any, statements: PreparedStatements) -> None:
        self._connection = connection
        self._statements = statements
        self.dialect = statements.dialect
        self._error: type[Exception] = statements.dialect.loaded_dbapi.Error

    def execute(self, statement: ClauseElement, params: Mapping[str, Any] | None = None) -> DriverResult:
        prepared = self._statements.get(statement, params)
        arguments = prepared.arguments(params)
        cursor = None
        try:
            cursor = self._connection.cursor()
            cursor.execute(prepared.sql, arguments)
            rows = prepared.rows(cursor.fetchall(), cursor.description) if prepared.returns_rows else []
            return DriverResult(rows, cursor.rowcount)
        except self._error as exc:
            raise self._wrapped(exc, prepared.sql, arguments, cursor) from exc
        finally:
            if cursor is not None:
                cursor.close()

    def begin_immediate(self) -> None:
        try:
            self._connection.driver_connection.execute("BEGIN IMMEDIATE")
        except self._error as exc:
            raise self._wrapped(exc, "BEGIN IMMEDIATE", None, None) from exc

    def commit(self) -> None:
        try:
            self._connection.commit()
        except self._error as exc:
            raise self._wrapped(exc, "COMMIT", None, None) from exc

    def _wrapped(self, exc: Exception, sql: str | None, arguments: Any, cursor: Any) -> BaseException:
        invalidated = self.dialect.is_disconnect(cast(Any, exc), self._connection, cursor)
        if invalidated:
            self._connection.invalidate(exc)
        return DBAPIError.instance(
            sql, arguments, exc, self._error, connection_invalidated=invalidated, dialect=self.dialect
        )


@contextmanager
def driver_transaction(engine: Engine, statements: PreparedStatements) -> Iterator[DriverTransaction]:
    """One write transaction on a pooled driver connection: committed, or rolled back on any exception.

    Same guarantees as :func:`storage.db.write_session`: ``BEGIN IMMEDIATE`` on SQLite (so writers
    queue on ``busy_timeout``), Postgres's implicit transaction otherwise.
    """
    if statements.dialect is not engine.dialect:
        raise StorageError("prepared statements belong to another engine")
    connection = engine.raw_connection()
    transaction = DriverTransaction(connection, statements)
    try:
        if engine.dialect.name == "sqlite":
            transaction.begin_immediate()
        yield transaction
        transaction.commit()
    except BaseException:
        if connection.is_valid:
            try:
                connection.rollback()
            except transaction.dialect.loaded_dbapi.Error:
                connection.invalidate()  # a connection that cannot roll back must not go back to the pool
        raise
    finally:
        connection.close()
