"""``lepton-lake sql "select ..."``: query the lake like an analyst, local or S3, from a shell.

Every table of every zone is a view named ``<zone>.<table>`` — ``raw.transactions``,
``governed.customers``, ``quarantine.fx_rates``, ``marts.daily_kpis`` — and batch scores are
``scores.<model>``; partitioned tables carry their ``date`` as a DATE column. DuckDB runs the
query where the files are (S3 through the lake's s3fs client; nothing is downloaded first) and the
result prints as a table, CSV, JSON or Markdown.

``main`` is the ``lepton-lake`` command: the lake's backup commands (``lake.backup_cli``) plus ``sql``.
It lives in analytics, which depends on the lake, so the lake package depends on nothing of ours.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence

from lepton_pipelines.lake import backup_cli

FORMATS = ("table", "csv", "json", "markdown")


def add_sql_command(commands) -> None:
    """Register ``sql`` on ``lepton-lake``'s sub-command parser."""
    sql = commands.add_parser(
        "sql", help="run a SQL query over every zone and mart (DuckDB)", description=__doc__.split("\n\n")[1]
    )
    sql.add_argument("query", nargs="?", help="SQL text, or '-' to read it from standard input")
    sql.add_argument("--format", choices=FORMATS, default="table", help="output format (default: table)")
    sql.add_argument("--max-rows", type=int, default=40, help="rows printed by the table format (default: 40)")
    sql.add_argument("--tables", action="store_true", help="list the views a query can use, with their columns")


def run_sql(args: argparse.Namespace, out=sys.stdout) -> int:
    import duckdb

    from lepton_pipelines.analytics.engine import connect, register_lake_views
    from lepton_pipelines.lake.store import Lake

    lake = Lake(args.lake, args.s3_endpoint_url)
    con = connect(lake)
    views = register_lake_views(con, lake)
    if args.tables or not args.query:
        if not views:
            print(f"lepton-lake: no published tables under {lake.url}", file=sys.stderr)
            return 2 if not args.tables else 0
        for name in views:
            schema, table = name.split(".")
            columns = con.execute(
                "SELECT string_agg(column_name || ' ' || data_type, ', ' ORDER BY ordinal_position) FROM "
                "information_schema.columns "
                "WHERE table_schema = ? AND table_name = ?",
                [schema, table],
            ).fetchone()[0]
            print(f"{name}: {columns}", file=out)
        return 0
    query = sys.stdin.read() if args.query == "-" else args.query
    try:
        relation = con.sql(query)
    except duckdb.Error as error:
        print(
            f"lepton-lake sql: {error}\n(tables: {', '.join(views) or 'none'}; list them with --tables)",
            file=sys.stderr,
        )
        return 2
    if relation is None:  # a statement without a result (SET, CREATE VIEW ...)
        return 0
    fmt = "json" if getattr(args, "json", False) else args.format
    if fmt == "table":
        print(relation.__str__() if args.max_rows <= 0 else _table(relation, args.max_rows), file=out)
    elif fmt == "csv":
        relation.df().to_csv(out, index=False)
    elif fmt == "markdown":
        print(relation.df().to_markdown(index=False), file=out)
    else:
        print(json.dumps(json.loads(relation.df().to_json(orient="records", date_format="iso")), indent=1), file=out)
    return 0


def _table(relation, max_rows: int) -> str:
    import io
    from contextlib import redirect_stdout

    buffer = io.StringIO()
    with redirect_stdout(buffer):
        relation.show(max_rows=max_rows, max_width=10_000)
    return buffer.getvalue().rstrip("\n")


def main(argv: Sequence[str] | None = None) -> int:
    """``lepton-lake``: backup, list, verify, restore (``lake.backup_cli``) and ``sql``."""
    args = backup_cli.build_parser(add_sql_command).parse_args(argv)
    return run_sql(args) if args.command == "sql" else backup_cli.run(args)


if __name__ == "__main__":
    raise SystemExit(main())
