"""No SQL of the PostgreSQL package is built with string formatting around values: every
statement is a constant (at most the schema name goes in, through ``psycopg.sql``), and values
travel as parameters. This reads the package's source and fails on any f-string, ``%`` or
``.format`` formatting, or concatenation of a variable into text that looks like SQL."""

from __future__ import annotations

import ast
import re
from pathlib import Path

import tela_memory_postgres

PACKAGE = Path(tela_memory_postgres.__file__).parent
SQL_SHAPES = [
    re.compile(p, re.S)
    for p in (
        r"\bSELECT\b.*\bFROM\b",
        r"\bINSERT\s+INTO\b",
        r"\bUPDATE\b.*\bSET\b",
        r"\bDELETE\s+FROM\b",
        r"\bWHERE\b",
        r"\bVALUES\s*\(",
        r"^\s*(SELECT|VACUUM|CREATE|DROP|ALTER|TRUNCATE|GRANT|SET)\b",
    )
]


def _looks_like_sql(text: str) -> bool:
    return any(shape.search(text) for shape in SQL_SHAPES)


def _constant_texts(node: ast.AST) -> list[str]:
    return [
        n.value for n in ast.walk(node) if isinstance(n, ast.Constant) and isinstance(n.value, str)
    ]


def _offences(path: Path) -> list[str]:
    tree = ast.parse(path.read_text(), filename=str(path))
    found: list[str] = []
    for node in ast.walk(tree):
        where = f"{path.name}:{getattr(node, 'lineno', '?')}"
        if isinstance(node, ast.JoinedStr) and any(
            _looks_like_sql(t) for t in _constant_texts(node)
        ):
            if any(isinstance(v, ast.FormattedValue) for v in node.values):
                found.append(f"{where}: f-string SQL")
        elif isinstance(node, ast.BinOp) and isinstance(node.op, ast.Mod):
            if isinstance(node.left, ast.Constant) and _looks_like_sql(str(node.left.value)):
                found.append(f"{where}: %-formatted SQL")
        elif (
            isinstance(node, ast.Call)
            and isinstance(node.func, ast.Attribute)
            and node.func.attr == "format"
            and isinstance(node.func.value, ast.Constant)
            and _looks_like_sql(str(node.func.value.value))
        ):
            found.append(f"{where}: str.format SQL (use psycopg.sql.SQL(...).format)")
        elif isinstance(node, ast.BinOp) and isinstance(node.op, ast.Add):
            parts = [node.left, node.right]
            texts = [p for p in parts if isinstance(p, ast.Constant) and isinstance(p.value, str)]
            others = [p for p in parts if not isinstance(p, ast.Constant | ast.BinOp)]
            if any(_looks_like_sql(str(t.value)) for t in texts) and any(
                not (isinstance(o, ast.Name) and o.id.isupper()) for o in others
            ):
                # a constant SQL fragment named in capitals (MESSAGE_COLS) is fine; a variable
                # is not
                found.append(f"{where}: SQL concatenated with a variable")
    return found


def test_no_sql_is_built_by_formatting_values() -> None:
    files = sorted(PACKAGE.glob("*.py"))
    assert files, PACKAGE
    assert [o for p in files for o in _offences(p)] == []


def test_the_checker_catches_what_it_should(tmp_path: Path) -> None:
    bad = tmp_path / "bad.py"
    bad.write_text(
        "user = 'x'\n"
        "a = f\"SELECT * FROM t WHERE id = '{user}'\"\n"
        "b = \"DELETE FROM t WHERE id = '%s'\" % user\n"
        'c = "UPDATE t SET v = {}".format(user)\n'
        'd = "SELECT * FROM t WHERE id = \'" + user\n'
    )
    assert len(_offences(bad)) == 4
    good = tmp_path / "good.py"
    good.write_text(
        "COLS = 'a, b'\n"
        "q = 'SELECT ' + COLS + ' FROM {s}.t WHERE id = %s'\n"
        "msg = f'no thread {q!r}'\n"
    )
    assert _offences(good) == []
