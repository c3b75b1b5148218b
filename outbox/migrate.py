"""Versioned schema migrations for both backends, applied at start under a lock.

Files live in ``outbox/migrations/<dialect>/NNNN_name.sql`` and are applied in order, each in its own
transaction together with its row in ``schema_migrations``; a version once applied is never run again.
On PostgreSQL the whole run holds ``pg_advisory_lock`` so instances starting together do not race; on
SQLite each file runs inside ``BEGIN IMMEDIATE`` (the database's write lock). SQLite's version 1 is
``outbox/schema.sql`` itself (idempotent ``CREATE … IF NOT EXISTS``), so databases made before
migrations existed upgrade in place.
"""

from __future__ import annotations

import re
import time
from dataclasses import dataclass
from importlib import resources
from typing import Any

import aiosqlite

# An arbitrary constant: the advisory lock key every backlogd instance takes while migrating.
ADVISORY_LOCK_KEY = 0x6B6C6F6764  # "klogd"

_TABLE = (
    "CREATE TABLE IF NOT EXISTS schema_migrations"
    " (version INTEGER PRIMARY KEY, name TEXT NOT NULL, applied_at DOUBLE PRECISION NOT NULL)"
)


@dataclass(frozen=True)
class Migration:
    version: int
    name: str
    sql: str

    def statements(self) -> list[str]:
        """The file's statements, comments dropped (SQLite runs one statement per call)."""
        text = "\n".join(line.split("--", 1)[0] for line in self.sql.splitlines())
        return [s.strip() for s in text.split(";") if s.strip()]


def migrations(dialect: str) -> list[Migration]:
    folder = resources.files("outbox").joinpath("migrations", dialect)
    found = []
    for entry in folder.iterdir():
        match = re.fullmatch(r"(\d{4})_(\w+)\.sql", entry.name)
        if match:
            found.append(Migration(int(match[1]), match[2], entry.read_text(encoding="utf-8")))
    return sorted(found, key=lambda m: m.version)


async def migrate_sqlite(db: aiosqlite.Connection) -> list[int]:
    """Bring a SQLite database (autocommit connection) to the newest version; returns what ran."""
    baseline = resources.files("outbox").joinpath("schema.sql").read_text(encoding="utf-8")
    await db.executescript(baseline)
    await db.execute(_TABLE.replace("DOUBLE PRECISION", "REAL"))
    applied: list[int] = []
    for m in migrations("sqlite"):
        await db.execute("BEGIN IMMEDIATE")
        try:
            rows = await db.execute_fetchall(
                "SELECT 1 FROM schema_migrations WHERE version = ?", (m.version,)
            )
            if not rows:
                for statement in m.statements():
                    await db.execute(statement)
                await db.execute(
                    "INSERT INTO schema_migrations(version, name, applied_at) VALUES (?, ?, ?)",
                    (m.version, m.name, time.time()),
                )
                applied.append(m.version)
        except BaseException:
            await db.execute("ROLLBACK")
            raise
        await db.execute("COMMIT")
    return applied


async def migrate_postgresql(conn: Any) -> list[int]:
    """Bring a PostgreSQL database to the newest version under the advisory lock; returns what ran.
    ``conn`` is an asyncpg connection that is not in a transaction."""
    applied: list[int] = []
    await conn.execute("SELECT pg_advisory_lock($1)", ADVISORY_LOCK_KEY)
    try:
        await conn.execute(_TABLE)
        done = {r["version"] for r in await conn.fetch("SELECT version FROM schema_migrations")}
        for m in migrations("postgresql"):
            if m.version in done:
                continue
            async with conn.transaction():
                await conn.execute(m.sql)
                await conn.execute(
                    "INSERT INTO schema_migrations(version, name, applied_at) VALUES ($1, $2, $3)",
                    m.version,
                    m.name,
                    time.time(),
                )
            applied.append(m.version)
    finally:
        await conn.execute("SELECT pg_advisory_unlock($1)", ADVISORY_LOCK_KEY)
    return applied
