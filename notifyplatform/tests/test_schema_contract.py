"""The migrated database holds the seeds' data contract.

``data/seed_schema.json`` lists every seed table, column (type, NOT NULL), foreign
key, index (by leading columns, as the seeds name them), unique key and view. This
test reads PostgreSQL's catalog of the test database, migrated from scratch by
pytest-django, and checks each item.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
from django.db import connection

CONTRACT = json.loads((Path(__file__).parent / "data" / "seed_schema.json").read_text())

COLUMNS_SQL = """
SELECT c.relname, a.attname, format_type(a.atttypid, a.atttypmod), a.attnotnull,
       pg_get_expr(d.adbin, d.adrelid), a.attidentity
FROM pg_attribute a
JOIN pg_class c ON c.oid = a.attrelid
JOIN pg_namespace n ON n.oid = c.relnamespace AND n.nspname = current_schema()
LEFT JOIN pg_attrdef d ON d.adrelid = a.attrelid AND d.adnum = a.attnum
WHERE c.relname = ANY(%s) AND a.attnum > 0 AND NOT a.attisdropped
"""

CONSTRAINTS_SQL = """
SELECT c.relname, con.contype, array(SELECT attname FROM pg_attribute
         WHERE attrelid = con.conrelid AND attnum = ANY(con.conkey)),
       fc.relname, pg_get_constraintdef(con.oid)
FROM pg_constraint con
JOIN pg_class c ON c.oid = con.conrelid
JOIN pg_namespace n ON n.oid = c.relnamespace AND n.nspname = current_schema()
LEFT JOIN pg_class fc ON fc.oid = con.confrelid
WHERE c.relname = ANY(%s)
"""

INDEXES_SQL = """
SELECT c.relname, i.indisunique, (i.indpred IS NOT NULL),
       array(SELECT a.attname FROM unnest(i.indkey[0:i.indnkeyatts - 1]) WITH ORDINALITY k(num, ord)
             JOIN pg_attribute a ON a.attrelid = i.indrelid AND a.attnum = k.num ORDER BY k.ord)
FROM pg_index i
JOIN pg_class c ON c.oid = i.indrelid
JOIN pg_namespace n ON n.oid = c.relnamespace AND n.nspname = current_schema()
WHERE c.relname = ANY(%s)
"""

VIEWS_SQL = """
SELECT c.relname, a.attname FROM pg_class c
JOIN pg_namespace n ON n.oid = c.relnamespace AND n.nspname = current_schema()
JOIN pg_attribute a ON a.attrelid = c.oid AND a.attnum > 0
WHERE c.relkind IN ('v', 'm') AND c.relname = ANY(%s)
"""


def _short(fmt: str) -> str:
    fmt = re.sub(r"^character varying", "varchar", fmt)
    fmt = re.sub(r"^timestamp(\(\d+\))? with(out)? time zone", "timestamp", fmt)
    return re.sub(r"^time(\(\d+\))? without time zone", "time", fmt)


def _type_ok(want: str, got: str, default: str | None, identity: str, checks: list[str]) -> bool:
    if want == "serial":
        return got == "integer" and (bool(identity) or (default or "").startswith("nextval("))
    if want == "json":
        return got in ("json", "jsonb")
    if want in ("text", "varchar"):
        return got in ("text", "varchar")
    if m := re.fullmatch(r"varchar\((\d+)\)", want):
        g = re.fullmatch(r"varchar\((\d+)\)", got)
        return got in ("text", "varchar") or (g is not None and int(g[1]) >= int(m[1]))
    if want.startswith("enum:"):
        values = want[5:].split(",")
        if not (got in ("text", "varchar") or got.startswith("varchar(")):
            return False
        # every value must be allowed by a CHECK constraint that lists values
        allowed = [set(re.findall(r"'((?:[^']|'')*)'", c)) for c in checks]
        return any(set(values) <= a for a in allowed)
    return got == want


@pytest.fixture(scope="module")
def catalog(django_db_setup, django_db_blocker):  # noqa: ARG001 - needs the migrated db
    tables = list(CONTRACT["tables"])
    with django_db_blocker.unblock(), connection.cursor() as cur:
        cur.execute(COLUMNS_SQL, [tables])
        columns = {(t, c): (_short(f), nn, d, ident) for t, c, f, nn, d, ident in cur.fetchall()}
        cur.execute(CONSTRAINTS_SQL, [tables])
        constraints = cur.fetchall()
        cur.execute(INDEXES_SQL, [tables])
        indexes = cur.fetchall()
        cur.execute(VIEWS_SQL, [list(CONTRACT["views"])])
        views: dict[str, set[str]] = {}
        for v, col in cur.fetchall():
            views.setdefault(v, set()).add(col)
    return columns, constraints, indexes, views


def _table_items():
    for table, spec in CONTRACT["tables"].items():
        for column, col in spec["columns"].items():
            yield pytest.param(table, column, col, id=f"{table}.{column}")


@pytest.mark.parametrize(("table", "column", "col"), list(_table_items()))
def test_column_type_nullability_and_foreign_key(catalog, table, column, col):
    columns, constraints, _indexes, _views = catalog
    assert (table, column) in columns, f"missing column {table}.{column}"
    got, not_null, default, identity = columns[(table, column)]
    checks = [
        d for t, kind, cols, _f, d in constraints if t == table and kind == "c" and cols == [column]
    ]
    assert _type_ok(col["type"], got, default, identity, checks), (
        f"{table}.{column}: want {col['type']} got {got}"
    )
    if col["not_null"]:
        assert not_null, f"{table}.{column} must be NOT NULL"
    target = CONTRACT["tables"][table]["foreign_keys"].get(column)
    if target:
        assert any(
            t == table and kind == "f" and cols == [column] and ft == target
            for t, kind, cols, ft, _d in constraints
        ), f"{table}.{column} must reference {target}"


@pytest.mark.parametrize("table", list(CONTRACT["tables"]))
def test_primary_key_indexes_and_unique_keys(catalog, table):
    _columns, constraints, indexes, _views = catalog
    spec = CONTRACT["tables"][table]
    pk = [cols for t, kind, cols, _f, _d in constraints if t == table and kind == "p"]
    assert pk == [[spec["primary_key"]]]
    table_indexes = [(uniq, partial, cols) for t, uniq, partial, cols in indexes if t == table]
    for name, cols in spec["indexes"].items():
        assert any(ix[: len(cols)] == cols for _u, _p, ix in table_indexes), f"missing {name}"
    for cols in spec["unique"]:
        assert any(u and not p and sorted(ix) == sorted(cols) for u, p, ix in table_indexes)


@pytest.mark.parametrize("view", list(CONTRACT["views"]))
def test_views_expose_the_seed_columns(catalog, view):
    *_rest, views = catalog
    assert view in views, f"missing view {view}"
    assert set(CONTRACT["views"][view]) <= views[view]


def test_every_enumerated_seed_column_has_a_check_constraint(catalog):
    """Each of the seeds' eight ENUM columns is held to its values by a CHECK constraint."""
    enum_columns = [
        (t, c)
        for t, s in CONTRACT["tables"].items()
        for c, col in s["columns"].items()
        if col["type"].startswith("enum:")
    ]
    assert len(enum_columns) == 8
    _columns, constraints, _indexes, _views = catalog
    for table, column in enum_columns:
        assert any(
            t == table and kind == "c" and cols == [column] for t, kind, cols, _f, _d in constraints
        )


DUPLICATE_INDEXES_SQL = """
SELECT c.relname, array_agg(i.relname ORDER BY i.relname)
FROM pg_index x
JOIN pg_class i ON i.oid = x.indexrelid
JOIN pg_class c ON c.oid = x.indrelid
JOIN pg_namespace n ON n.oid = c.relnamespace AND n.nspname = current_schema()
GROUP BY c.relname, x.indkey::text, x.indclass::text,
         pg_get_expr(x.indpred, x.indrelid), pg_get_expr(x.indexprs, x.indrelid)
HAVING count(*) > 1 AND count(*) FILTER (WHERE NOT x.indisunique) > 0
"""


@pytest.mark.django_db
def test_no_table_keeps_two_identical_indexes():
    """Every insert and non-HOT update writes each index of its table: an index identical
    to another (Django's automatic foreign-key index beside the seed's named one, say)
    costs every write and answers no query the other would not. A seed's UNIQUE column
    may keep its separate named index (the seed declares both)."""
    with connection.cursor() as cur:
        cur.execute(DUPLICATE_INDEXES_SQL)
        duplicates = {
            table: names
            for table, names in cur.fetchall()
            if (table, tuple(names)) not in _SEED_UNIQUE_AND_INDEX
        }
    assert duplicates == {}


# (table, index names): a seed UNIQUE key and the seed's own index on the same column
_SEED_UNIQUE_AND_INDEX = {
    ("notification_templates", ("idx_notification_templates_key",
                                "notification_templates_template_key_key")),
    ("real_time_events", ("idx_rt_events_sequence", "real_time_events_sequence_number_key")),
}
