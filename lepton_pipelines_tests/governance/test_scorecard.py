"""The quality scorecard's metadata: charts the asset page draws inline, one per source, and numbers
per source the Plots tab draws across materializations."""

from __future__ import annotations

import base64
from datetime import date, timedelta
from urllib.parse import unquote

import dagster as dg
import pandas as pd

from lepton_pipelines.governance.scorecard import (
    MARKDOWN_INLINE_LIMIT,
    SPARKLINE_POINTS,
    governed_row_counts,
    pass_rates,
    scorecard_metadata,
    sparkline_svg,
)
from lepton_pipelines.lake.store import Lake, write_parquet_atomic


def history(days: int) -> pd.DataFrame:
    """Three sources always at 100% (they would sit on one dot of a shared chart) and one at 50%."""
    rows = []
    start = date(2026, 1, 1)
    for n in range(days):
        partition = (start + timedelta(days=n)).isoformat()
        for source in ("alpha", "beta", "gamma", "delta"):
            for check in ("not_null", "in_set"):
                passed = not (source == "delta" and check == "in_set")
                rows.append(
                    {
                        "source": source,
                        "partition": partition,
                        "stage": "clean",
                        "check_name": check,
                        "blocking": check == "not_null",
                        "passed": passed,
                        "quarantined": 0,
                        "validated_at": pd.Timestamp("2026-02-01", tz="UTC") + pd.Timedelta(minutes=n),
                    }
                )
    return pd.DataFrame(rows)


def test_each_source_gets_its_own_inline_chart_and_plotted_numbers(tmp_path):
    lake = Lake(str(tmp_path / "lake"))
    per_source, per_day = pass_rates(history(days=45))
    write_parquet_atomic(lake.path("governed", "alpha", "date=2026-02-14"), pd.DataFrame({"x": range(7)}))
    rows = governed_row_counts(lake, per_day)
    assert rows == {"alpha": 7}  # the newest partition only; sources without a governed table are left out

    metadata = scorecard_metadata(per_source, per_day, rows)
    charts = {k.removesuffix(" pass rate"): v for k, v in metadata.items() if k.endswith(" pass rate")}
    assert sorted(charts) == ["alpha", "beta", "delta", "gamma"]
    colors = set()
    for source, value in charts.items():
        assert isinstance(value, dg.MarkdownMetadataValue)
        # below the length the asset page renders inline (longer Markdown hides behind "[Show Markdown]")
        assert len(value.value) < MARKDOWN_INLINE_LIMIT, (source, len(value.value))
        assert value.value.startswith(f"![{source} pass rate](data:image/svg+xml,")
        svg = unquote(value.value.split("(", 1)[1].split(")", 1)[0])
        colors.add(svg.split("stroke='", 3)[2].split("'", 1)[0])  # the polyline's colour
        points = svg.split("points='", 1)[1].split("'", 1)[0].split()
        assert len(points) == SPARKLINE_POINTS  # the newest 30 partitions, not all 45
    assert len(colors) == 4  # every source distinguishable
    assert (
        "**50%**" in charts["delta"].value and "**100%**" in charts["alpha"].value and "7 rows" in charts["alpha"].value
    )

    assert metadata["delta pass rate %"] == dg.MetadataValue.float(50.0)
    assert metadata["alpha pass rate %"] == dg.MetadataValue.float(100.0)
    assert metadata["delta checks failed"] == dg.MetadataValue.int(45)
    assert metadata["alpha governed rows"] == dg.MetadataValue.int(7)
    table = metadata["scorecard"]
    assert isinstance(table, dg.TableMetadataValue) and [r.data["source"] for r in table.records] == [
        "alpha",
        "beta",
        "delta",
        "gamma",
    ]
    chart = metadata["chart"].value
    png = base64.b64decode(chart.split("data:image/png;base64,", 1)[1].split(")", 1)[0])
    assert png[:8] == b"\x89PNG\r\n\x1a\n"


def test_a_single_partition_draws_a_line_not_a_lone_dot():
    svg = unquote(sparkline_svg([0.9], "#123456"))
    points = svg.split("points='", 1)[1].split("'", 1)[0].split()
    assert len(points) == 2 and points[0].split(",")[1] == points[1].split(",")[1]
