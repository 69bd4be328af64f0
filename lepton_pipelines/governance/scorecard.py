"""The quality scorecard: pass rates per source and per partition day, from the quality history.

Pure pandas/matplotlib; the asset in ``definitions`` only reads the history and publishes the result:
per source a pass-rate sparkline the asset page draws inline, the scorecard as a table, numbers the UI
plots across materializations, and a chart with one panel per source.
"""

from __future__ import annotations

import base64
import io
from typing import TYPE_CHECKING, Any
from urllib.parse import quote

import pandas as pd

if TYPE_CHECKING:
    from lepton_pipelines.lake.store import Lake


def pass_rates(history: pd.DataFrame) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(per source, per source and day). A check counts once per partition: its latest result."""
    columns = [
        "source",
        "checks",
        "passed",
        "failed",
        "pass_rate",
        "blocking_failures",
        "quarantined_rows",
        "last_validated",
    ]
    if history.empty:
        return pd.DataFrame(columns=columns), pd.DataFrame(
            columns=["source", "partition", "checks", "passed", "pass_rate"]
        )
    latest = (
        history.sort_values("validated_at")
        .drop_duplicates(subset=["source", "partition", "stage", "check_name"], keep="last")
        .assign(
            failed_blocking=lambda d: d["blocking"].astype(bool) & ~d["passed"].astype(bool),
            # rows actually removed are counted once, by certification (stage governed)
            quarantined=lambda d: d["quarantined"].fillna(0).astype("int64").where(d["stage"] == "governed", 0),
        )
    )
    per_source = (
        latest.groupby("source")
        .agg(
            checks=("passed", "size"),
            passed=("passed", "sum"),
            blocking_failures=("failed_blocking", "sum"),
            quarantined_rows=("quarantined", "sum"),
            last_validated=("validated_at", "max"),
        )
        .reset_index()
    )
    per_source["failed"] = per_source["checks"] - per_source["passed"]
    per_source["pass_rate"] = per_source["passed"] / per_source["checks"]
    per_day = (
        latest.groupby(["source", "partition"]).agg(checks=("passed", "size"), passed=("passed", "sum")).reset_index()
    )
    per_day["pass_rate"] = per_day["passed"] / per_day["checks"]
    return per_source[columns], per_day.sort_values(["source", "partition"]).reset_index(drop=True)


# One colour per source, the same in the sparklines and the chart (matplotlib's tab10, colour-blind friendly).
PALETTE = ("#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2", "#7f7f7f", "#bcbd22", "#17becf")
SPARKLINE_POINTS = 30  # the newest partitions a sparkline draws
MARKDOWN_INLINE_LIMIT = 1000  # the asset page renders Markdown metadata inline only below this length


def source_colors(sources: list[str]) -> dict[str, str]:
    return {source: PALETTE[i % len(PALETTE)] for i, source in enumerate(sorted(sources))}


def sparkline_svg(rates: list[float], color: str, width: int = 180, height: int = 36) -> str:
    """Pass rate (0..1) per partition, oldest first, as a compact SVG data URI for Markdown.

    Compact on purpose: the asset page shows a Markdown metadata value inline only when it is shorter
    than 1,000 characters (longer ones hide behind "[Show Markdown]"), so a source's chart must fit."""
    rates = [max(0.0, min(1.0, float(r))) for r in rates[-SPARKLINE_POINTS:]] or [0.0]
    step = (width - 8) / max(1, len(rates) - 1)
    points = [(4 + round(i * step), 4 + round((1 - r) * (height - 8))) for i, r in enumerate(rates)]
    if len(points) == 1:
        points.append((width - 4, points[0][1]))  # one partition: a flat line across, not a lone dot
    line = " ".join(f"{x},{y}" for x, y in points)
    last_x, last_y = points[-1]
    svg = (
        f"<svg xmlns='http://www.w3.org/2000/svg' width='{width}' height='{height}'>"
        f"<rect width='{width}' height='{height}' fill='#f6f7f9'/>"
        f"<line x1='0' y1='4' x2='{width}' y2='4' stroke='#ccc' stroke-dasharray='3'/>"
        f"<polyline points='{line}' fill='none' stroke='{color}' stroke-width='2'/>"
        f"<circle cx='{last_x}' cy='{last_y}' r='3' fill='{color}'/></svg>"
    )
    return "data:image/svg+xml," + quote(svg, safe="/:=,.'")


def sparkline_markdown(source: str, per_day: pd.DataFrame, color: str, governed_rows: int | None) -> str:
    """``![chart](svg) latest% over N partitions``: one source's trend, short enough to render inline."""
    days = per_day[per_day["source"] == source].sort_values("partition")
    rates = days["pass_rate"].astype(float).tolist()
    latest = f"{rates[-1]:.0%}" if rates else "n/a"
    rows = f" · {governed_rows:,} rows" if governed_rows is not None else ""
    span = f"{len(rates)} partition{'s' if len(rates) != 1 else ''}"
    return f"![{source} pass rate]({sparkline_svg(rates, color)}) **{latest}** · {span}{rows}"


def scorecard_metadata(
    per_source: pd.DataFrame, per_day: pd.DataFrame, governed_rows: dict[str, int]
) -> dict[str, Any]:
    """Metadata of one scorecard materialization, in the order the asset page lists it:

    * per source, a pass-rate sparkline (Markdown short enough to be drawn inline on the asset page);
    * the scorecard as a table (drawn inline);
    * per source, numbers the UI plots across materializations (the asset's Plots tab):
      ``<source> pass rate %``, ``<source> checks failed``, ``<source> governed rows``;
    * the full chart, every source in its own panel and colour."""
    import dagster as dg

    colors = source_colors(per_source["source"].tolist())
    metadata: dict[str, Any] = {}
    for row in per_source.itertuples():
        metadata[f"{row.source} pass rate"] = dg.MetadataValue.md(
            sparkline_markdown(row.source, per_day, colors[row.source], governed_rows.get(row.source))
        )
    metadata["scorecard"] = dg.MetadataValue.table(
        records=[
            dg.TableRecord(
                {
                    "source": row.source,
                    "checks": int(row.checks),
                    "passed": int(row.passed),
                    "failed": int(row.failed),
                    "pass_rate": f"{row.pass_rate:.1%}",
                    "blocking_failures": int(row.blocking_failures),
                    "quarantined_rows": int(row.quarantined_rows),
                    "governed_rows": int(governed_rows.get(row.source, 0)),
                    "last_validated": str(row.last_validated)[:19],
                }
            )
            for row in per_source.itertuples()
        ],
        schema=dg.TableSchema(
            columns=[
                dg.TableColumn("source", "string"),
                dg.TableColumn("checks", "int"),
                dg.TableColumn("passed", "int"),
                dg.TableColumn("failed", "int"),
                dg.TableColumn("pass_rate", "string"),
                dg.TableColumn("blocking_failures", "int"),
                dg.TableColumn("quarantined_rows", "int", description="rows removed at certification (governed stage)"),
                dg.TableColumn("governed_rows", "int", description="rows in the newest governed partition"),
                dg.TableColumn("last_validated", "string"),
            ]
        ),
    )
    for row in per_source.itertuples():
        metadata[f"{row.source} pass rate %"] = dg.MetadataValue.float(round(float(row.pass_rate) * 100, 2))
        metadata[f"{row.source} checks failed"] = dg.MetadataValue.int(int(row.failed))
        if row.source in governed_rows:
            metadata[f"{row.source} governed rows"] = dg.MetadataValue.int(int(governed_rows[row.source]))
    metadata["chart"] = dg.MetadataValue.md(scorecard_markdown(per_source, plot_pass_rates(per_day)))
    return metadata


def governed_row_counts(lake: Lake, per_day: pd.DataFrame) -> dict[str, int]:
    """Rows in each source's newest validated governed partition, from Parquet footers only."""
    import pyarrow.parquet as pq

    counts: dict[str, int] = {}
    for source, days in per_day.groupby("source"):
        newest = max(days["partition"])
        folder = lake.path("governed", source, f"date={newest}") if newest else lake.path("governed", source)
        if not folder.exists():
            continue
        total = 0
        for part in folder.glob("*.parquet"):
            if part.name.startswith((".", "_")):
                continue
            with part.fs.open(part.path, "rb") as handle:
                total += pq.ParquetFile(handle).metadata.num_rows
        counts[str(source)] = total
    return counts


def plot_pass_rates(per_day: pd.DataFrame) -> str:
    """A PNG of pass rate over partitions, one panel and colour per source (three sources at 100% on
    one axis would hide each other), as a base64 data URI for Markdown."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    sources = sorted(per_day["source"].unique()) if not per_day.empty else []
    colors = source_colors(list(sources))
    fig, axes = plt.subplots(
        max(1, len(sources)), 1, figsize=(8, 0.9 + 1.1 * max(1, len(sources))), dpi=100, sharex=True, squeeze=False
    )
    partitions = sorted(per_day["partition"].replace("", "(unpartitioned)").unique()) if sources else []
    for ax, source in zip(axes[:, 0], sources, strict=False):
        group = per_day[per_day["source"] == source]
        labels = group["partition"].replace("", "(unpartitioned)")
        x = [partitions.index(label) for label in labels]
        ax.plot(x, group["pass_rate"] * 100, marker="o", color=colors[source], linewidth=2)
        ax.set_ylim(-5, 105)
        ax.set_yticks([0, 50, 100])
        ax.set_ylabel(source, rotation=0, ha="right", va="center", fontsize=8, color=colors[source])
        ax.grid(axis="y", alpha=0.3)
    axes[0, 0].set_title("Checks passed (%) per partition, by source")
    if partitions:
        axes[-1, 0].set_xticks(range(len(partitions)))
        axes[-1, 0].set_xticklabels(partitions, rotation=45, fontsize=7, ha="right")
    fig.tight_layout()
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png")
    plt.close(fig)
    return "data:image/png;base64," + base64.b64encode(buffer.getvalue()).decode("ascii")


def scorecard_markdown(per_source: pd.DataFrame, image_uri: str) -> str:
    lines = [
        "| source | checks | passed | failed | pass rate | blocking failures | quarantined rows | last validated |",
        "|---|---:|---:|---:|---:|---:|---:|---|",
    ]
    for row in per_source.itertuples():
        lines.append(
            f"| {row.source} | {row.checks} | {row.passed} | {row.failed} | {row.pass_rate:.1%} | "
            f"{row.blocking_failures} | {row.quarantined_rows} | {row.last_validated} |"
        )
    if per_source.empty:
        lines.append("| (no validations yet) | | | | | | | |")
    return "\n".join(lines) + f"\n\n![pass rate over time]({image_uri})\n"
