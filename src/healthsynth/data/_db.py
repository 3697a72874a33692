"""Database connections for OMOP CDM input and output: PostgreSQL and DuckDB.

One small interface over two engines, so the OMOP reader and writer hold no engine-specific
code:

* **PostgreSQL** (``postgresql://user:password@host:port/database``, also
  ``postgresql+psycopg://``): SQLAlchemy with the psycopg 3 driver. Statements and transactions
  go through SQLAlchemy; bulk transfer uses psycopg directly: a server-side cursor read with
  ``fetchmany`` (a bounded number of rows in memory) and ``COPY ... FROM STDIN`` for loading.
* **DuckDB** (``duckdb:///relative/file.duckdb`` or ``duckdb:////absolute/file.duckdb``):
  DuckDB's own Python API; reads come as Arrow record batches, loads as Arrow tables.

Every message names the database by its URL with the password replaced by ``***``, and any
text from the driver is scrubbed of the password before it is shown.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa

from healthsynth.errors import DatabaseError, MissingExtraError, ParameterError

__all__ = [
    "Database",
    "default_schema",
    "display_url",
    "open_database",
    "quote_identifier",
    "quote_literal",
]

logger = logging.getLogger(__name__)

_PURPOSE = "Reading or writing an OMOP CDM database"


def quote_identifier(name: str) -> str:
    """A SQL identifier in double quotes (quotes inside doubled)."""
    return '"' + str(name).replace('"', '""') + '"'


def quote_literal(text: str) -> str:
    """A SQL string literal in single quotes (quotes inside doubled)."""
    return "'" + str(text).replace("'", "''") + "'"


def _sqlalchemy() -> Any:
    try:
        import sqlalchemy
    except ModuleNotFoundError as e:
        if e.name and e.name.split(".")[0] != "sqlalchemy":
            raise
        raise MissingExtraError("sqlalchemy", "omop", _PURPOSE) from None
    return sqlalchemy


def _parse(url: str) -> Any:
    """A SQLAlchemy URL, or a ParameterError that does not echo the text (a password)."""
    sa = _sqlalchemy()
    if not isinstance(url, str) or not url.strip():
        raise ParameterError(
            "the database URL must be text such as postgresql://user@host/db or "
            "duckdb:///file.duckdb"
        )
    try:
        return sa.make_url(url.strip())
    except Exception:  # sqlalchemy raises ArgumentError and ValueError for malformed URLs
        raise ParameterError(
            "the database URL is not a valid URL; write it as postgresql://user:password@host:"
            "port/database or duckdb:///path/to/file.duckdb"
        ) from None


def display_url(url: str) -> str:
    """The URL as it may be shown: the password replaced by ``***``."""
    return str(_parse(url).render_as_string(hide_password=True))


def default_schema(url: str) -> str:
    """The schema used when none is given: ``main`` in DuckDB, ``public`` in PostgreSQL."""
    return "main" if _parse(url).get_backend_name() == "duckdb" else "public"


class Database:
    """An open connection to one PostgreSQL or DuckDB database (see :func:`open_database`)."""

    dialect: str
    #: the URL with the password replaced by ``***``
    display: str

    def __init__(self, dialect: str, display: str, password: str | None) -> None:
        self.dialect = dialect
        self.display = display
        self._password = password or None

    # -- messages -------------------------------------------------------------------------
    def scrub(self, text: str) -> str:
        """Driver text with the password removed and folded onto one line."""
        text = " ".join(str(text).split())
        if self._password:
            text = text.replace(self._password, "***")
        return text

    def fail(self, what: str, error: BaseException, hint: str) -> DatabaseError:
        """A DatabaseError: what went wrong at this database, the driver's reason, what to do."""
        reason = self.scrub(_first_reason(error))
        return DatabaseError(f"{what} at {self.display} failed ({reason}); {hint}")

    # -- names --------------------------------------------------------------------------
    _catalog: str | None = None

    def qualify(self, schema: str, table: str | None = None) -> str:
        """A schema or table name for SQL, with the catalog where the engine needs it.

        DuckDB names its catalog after the file, so a schema of the same name would be
        ambiguous without it.
        """
        parts = [self._catalog] if self._catalog else []
        parts += [schema] + ([table] if table is not None else [])
        return ".".join(quote_identifier(p) for p in parts)

    def _in_catalog(self) -> str:
        return f" AND table_catalog = {quote_literal(self._catalog)}" if self._catalog else ""

    # -- to implement ---------------------------------------------------------------------
    def tables(self, schema: str) -> list[str]:
        """Names of the base tables in ``schema`` (lower case)."""
        rows = self.rows(
            "SELECT table_name FROM information_schema.tables WHERE table_schema = "
            f"{quote_literal(schema)} AND table_type = 'BASE TABLE'{self._in_catalog()}"
        )
        return sorted(str(r[0]).lower() for r in rows)

    def columns(self, schema: str, table: str) -> list[str]:
        """Column names of a table, in order (lower case)."""
        rows = self.rows(
            "SELECT column_name FROM information_schema.columns WHERE table_schema = "
            f"{quote_literal(schema)} AND table_name = {quote_literal(table)}{self._in_catalog()} "
            "ORDER BY ordinal_position"
        )
        return [str(r[0]).lower() for r in rows]

    def schema_exists(self, schema: str) -> bool:
        """Whether the schema exists."""
        rows = self.rows(
            "SELECT schema_name FROM information_schema.schemata WHERE schema_name = "
            f"{quote_literal(schema)}"
            + (f" AND catalog_name = {quote_literal(self._catalog)}" if self._catalog else "")
        )
        return bool(rows)

    def rows(self, sql: str) -> list[tuple]:
        """Every row of a small query."""
        raise NotImplementedError

    def execute(self, sql: str) -> None:
        """Run a statement (inside the current transaction, if any)."""
        raise NotImplementedError

    def batches(self, sql: str, *, size: int) -> Iterator[dict[str, np.ndarray]]:
        """A query's rows, ``size`` at a time, as column name -> NumPy array (objects for text)."""
        raise NotImplementedError

    def load(self, schema: str, table: str, data: pa.Table) -> None:
        """Append an Arrow table to an existing table whose columns it names."""
        raise NotImplementedError

    @contextmanager
    def transaction(self) -> Iterator[None]:
        """Everything inside is committed together, or rolled back on any error."""
        raise NotImplementedError
        yield

    def close(self) -> None:
        """Close the connection."""
        raise NotImplementedError

    def __enter__(self) -> Database:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class _Postgres(Database):
    def __init__(self, url: Any, display: str) -> None:
        super().__init__("postgresql", display, url.password)
        sa = _sqlalchemy()
        try:
            import psycopg  # noqa: F401
        except ModuleNotFoundError as e:
            if e.name and e.name.split(".")[0] != "psycopg":
                raise
            raise MissingExtraError("psycopg", "omop", _PURPOSE) from None
        from sqlalchemy.pool import NullPool

        url = url.set(drivername="postgresql+psycopg")
        self._engine = sa.create_engine(
            url,
            poolclass=NullPool,
            connect_args={"connect_timeout": 10, "client_encoding": "utf8"},
        )
        try:
            self._conn = self._engine.connect()
        except sa.exc.SQLAlchemyError as e:
            self._engine.dispose()
            raise _connect_error(self, e) from None
        self._raw = self._conn.connection.driver_connection
        self._raw.autocommit = True
        self._sa = sa

    def rows(self, sql: str) -> list[tuple]:
        with self._raw.cursor() as cur:
            cur.execute(sql)
            return [tuple(r) for r in cur.fetchall()]

    def execute(self, sql: str) -> None:
        with self._raw.cursor() as cur:
            cur.execute(sql)

    def batches(self, sql: str, *, size: int) -> Iterator[dict[str, np.ndarray]]:
        # a named (server-side) cursor lives in a transaction; it holds at most `size` rows here
        with self._raw.transaction(), self._raw.cursor(name="healthsynth_read") as cur:
            cur.itersize = size
            cur.execute(sql)
            names = None
            while True:
                rows = cur.fetchmany(size)
                if names is None:
                    names = [d.name for d in cur.description]
                if not rows:
                    break
                cols = list(zip(*rows, strict=True))
                yield {n: _column(c) for n, c in zip(names, cols, strict=True)}

    def load(self, schema: str, table: str, data: pa.Table) -> None:
        import io

        import pyarrow.csv as pacsv

        cols = ", ".join(quote_identifier(c) for c in data.column_names)
        target = self.qualify(schema, table)
        with self._raw.cursor() as cur:
            with cur.copy(f"COPY {target} ({cols}) FROM STDIN (FORMAT csv)") as copy:
                for batch in data.to_batches(max_chunksize=50_000):
                    buf = io.BytesIO()
                    pacsv.write_csv(
                        pa.Table.from_batches([batch], schema=data.schema),
                        buf,
                        pacsv.WriteOptions(include_header=False),
                    )
                    copy.write(buf.getvalue())

    @contextmanager
    def transaction(self) -> Iterator[None]:
        with self._raw.transaction():
            yield

    def close(self) -> None:
        try:
            self._conn.close()
        finally:
            self._engine.dispose()


class _DuckDB(Database):
    def __init__(self, path: Path, display: str, *, write: bool) -> None:
        super().__init__("duckdb", display, None)
        try:
            import duckdb
        except ModuleNotFoundError as e:
            if e.name and e.name.split(".")[0] != "duckdb":
                raise
            raise MissingExtraError("duckdb", "omop", _PURPOSE) from None
        self._duckdb = duckdb
        self.path = path
        #: whether connecting created the file (a failed write then removes it)
        self.created = not path.exists()
        if not write and not path.is_file():
            raise DatabaseError(
                f"the DuckDB database file {path} (from {display}) does not exist; check the "
                "path (duckdb:///relative/path or duckdb:////absolute/path)"
            )
        try:
            self._con = duckdb.connect(str(path), read_only=not write)
        except duckdb.Error as e:
            raise self.fail(
                "opening the DuckDB database",
                e,
                "check that the file is a DuckDB database and that no other process holds it open "
                "for writing",
            ) from None
        self._catalog = str(self.rows("SELECT current_database()")[0][0])

    def rows(self, sql: str) -> list[tuple]:
        return [tuple(r) for r in self._con.execute(sql).fetchall()]

    def execute(self, sql: str) -> None:
        self._con.execute(sql)

    def batches(self, sql: str, *, size: int) -> Iterator[dict[str, np.ndarray]]:
        relation = self._con.sql(sql)
        # duckdb 2 calls it to_arrow_reader, 1.x fetch_arrow_reader
        fetch = getattr(relation, "to_arrow_reader", None) or relation.fetch_arrow_reader
        reader = fetch(size)
        for batch in reader:
            if batch.num_rows:
                yield {n: _arrow_column(batch.column(i)) for i, n in enumerate(batch.schema.names)}

    def load(self, schema: str, table: str, data: pa.Table) -> None:
        cols = ", ".join(quote_identifier(c) for c in data.column_names)
        target = self.qualify(schema, table)
        self._con.register("healthsynth_load", data)
        try:
            self._con.execute(f"INSERT INTO {target} ({cols}) SELECT {cols} FROM healthsynth_load")
        finally:
            self._con.unregister("healthsynth_load")

    @contextmanager
    def transaction(self) -> Iterator[None]:
        self._con.execute("BEGIN TRANSACTION")
        try:
            yield
        except BaseException:
            self._con.execute("ROLLBACK")
            raise
        self._con.execute("COMMIT")

    def close(self) -> None:
        self._con.close()


def open_database(url: str, *, write: bool = False) -> Database:
    """Connect to a PostgreSQL or DuckDB database by URL.

    Raises
    ------
    ParameterError
        A malformed URL or a database kind other than PostgreSQL and DuckDB.
    DatabaseError
        The server cannot be reached, refuses the login, or the database does not exist (the
        message shows the URL without its password).
    MissingExtraError
        SQLAlchemy, psycopg or duckdb is not installed (the ``omop`` extra).
    """
    parsed = _parse(url)
    display = parsed.render_as_string(hide_password=True)
    backend = parsed.get_backend_name()
    if backend == "postgresql":
        if parsed.get_driver_name() not in ("psycopg", "psycopg2", "") and "+" in parsed.drivername:
            raise ParameterError(
                f"the database URL {display} names the driver '{parsed.get_driver_name()}'; "
                "healthsynth uses psycopg 3: write postgresql:// or postgresql+psycopg://"
            )
        return _Postgres(parsed, display)
    if backend == "duckdb":
        if not parsed.database or parsed.database == ":memory:":
            raise ParameterError(
                f"the DuckDB URL {display} names no database file; write duckdb:///path/to/"
                "file.duckdb"
            )
        return _DuckDB(Path(parsed.database), display, write=write)
    raise ParameterError(
        f"the database URL {display} is for '{backend}'; healthsynth reads and writes OMOP CDM "
        "databases in PostgreSQL (postgresql://...) and DuckDB (duckdb:///file.duckdb)"
    )


def _connect_error(db: Database, error: BaseException) -> DatabaseError:
    reason = db.scrub(_first_reason(error)).lower()
    if "password authentication failed" in reason or "no password supplied" in reason:
        hint = "the login was refused; check the user name and password in the URL"
    elif re.search(r"database \S+ does not exist", reason):
        hint = "the database does not exist on that server; check its name in the URL"
    elif "role" in reason and "does not exist" in reason:
        hint = "the user does not exist on that server; check the user name in the URL"
    elif any(k in reason for k in ("refused", "timeout", "timed out", "could not translate")):
        hint = "check the host and port in the URL and that the server is running and reachable"
    else:
        hint = "check the URL and that the server accepts connections from this machine"
    return db.fail("connecting to the database", error, hint)


def _first_reason(error: BaseException) -> str:
    """The driver's own message without SQLAlchemy's SQL echo and background links."""
    orig = getattr(error, "orig", None)
    text = str(orig if orig is not None else error)
    lines = [ln.strip() for ln in text.splitlines() if ln.strip()]
    keep = [ln for ln in lines if not ln.startswith(("[SQL:", "(Background on", "[parameters:"))]
    return "; ".join(keep[:3]) or type(error).__name__


def _column(values: Sequence[Any]) -> np.ndarray:
    """A column of Python values from the driver as a NumPy array."""
    first = next((v for v in values if v is not None), None)
    if isinstance(first, bool) or first is None:
        return np.array(values, dtype=object)
    if isinstance(first, int):
        if any(v is None for v in values):
            return np.array([np.nan if v is None else v for v in values], dtype=float)
        return np.array(values, dtype=np.int64)
    if isinstance(first, float):
        return np.array([np.nan if v is None else v for v in values], dtype=float)
    return np.array(values, dtype=object)


def _arrow_column(array: pa.Array) -> np.ndarray:
    if pa.types.is_integer(array.type) and array.null_count:
        return array.cast(pa.float64()).to_numpy(zero_copy_only=False)
    if pa.types.is_integer(array.type) or pa.types.is_floating(array.type):
        return array.to_numpy(zero_copy_only=False)
    return np.array(array.to_pylist(), dtype=object)
