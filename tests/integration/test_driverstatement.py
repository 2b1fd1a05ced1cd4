"""A DriverStatement writes and reads values as SQLAlchemy's own execution would, on both
dialects."""

from __future__ import annotations

from decimal import Decimal

import psycopg
import pytest
from sqlalchemy import bindparam, insert, select, update

from charter.store import Store
from charter.store.driverstatement import DriverStatement
from charter.store.schema import outcomes

ROWS = [
    {"id": "o-1", "task_id": "t-1", "member": "bot", "engine_version": "v1",
     "task_type": "job", "success": True, "quality": 0.25, "cost": Decimal("12.3456"),
     "duration_s": 1.5, "verified": False, "reported_by": "bot",
     "at": "2026-01-01T00:00:00.000000Z"},
    {"id": "o-2", "task_id": "t-1", "member": "bot", "engine_version": "v1",
     "task_type": "job", "success": False, "quality": None, "cost": None,
     "duration_s": None, "verified": True, "reported_by": "boss",
     "at": "2026-01-01T00:00:01.000000Z"},
]
BY_TASK = (select(outcomes).where(outcomes.c.task_id == bindparam("task"))
           .order_by(outcomes.c.id))


def test_rows_written_and_read_on_the_driver_match_sqlalchemys(store: Store):
    written = DriverStatement(insert(outcomes), [column.key for column in outcomes.c])
    with store.transaction() as conn:
        for row in ROWS:
            written.run(conn, row)
    with store.reading() as conn:
        expected = [row._asdict() for row in conn.execute(BY_TASK, {"task": "t-1"})]
        read = [row._asdict() for row in DriverStatement(BY_TASK).rows(conn, {"task": "t-1"})]
    assert read == expected
    assert [{key: row[key] for key in ROWS[0]} for row in read] == [
        {**row, "cost": None if row["cost"] is None else Decimal(row["cost"])}
        for row in ROWS]
    assert all(type(row["success"]) is bool and type(row["verified"]) is bool for row in read)
    assert isinstance(read[0]["cost"], Decimal)


def test_an_update_reports_the_rows_it_changed(store: Store):
    with store.transaction() as conn:
        conn.execute(insert(outcomes), ROWS)
    verify = DriverStatement(update(outcomes).where(outcomes.c.task_id == bindparam("task")),
                             ["verified"])
    with store.transaction() as conn:
        assert verify.run(conn, {"verified": True, "task": "t-1"}) == 2
        assert verify.run(conn, {"verified": True, "task": "t-2"}) == 0
    with store.reading() as conn:
        assert all(row.verified is True
                   for row in DriverStatement(BY_TASK).rows(conn, {"task": "t-1"}))


def test_a_select_with_no_rows_gives_an_empty_list(store: Store):
    with store.reading() as conn:
        assert DriverStatement(BY_TASK).rows(conn, {"task": "nothing"}) == []


def test_a_missing_value_fails_the_statement_instead_of_writing_a_null(store: Store):
    with store.transaction() as conn:
        conn.execute(insert(outcomes), ROWS)
    statement = DriverStatement(update(outcomes).where(
        outcomes.c.task_id == bindparam("task")), ["verified", "quality"])
    # SQLite's parameters are positional (a KeyError here), PostgreSQL's named.
    with pytest.raises((KeyError, psycopg.ProgrammingError)), store.transaction() as conn:
        statement.run(conn, {"verified": False, "task": "t-1"})
    with store.reading() as conn:
        assert [row.verified for row in DriverStatement(BY_TASK).rows(
            conn, {"task": "t-1"})] == [False, True]
