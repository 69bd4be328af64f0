"""The quality scorecard: pass rates per source and per partition day, from the quality history.

Pure pandas/matplotlib; the asset in ``definitions`` only reads the history and publishes the result.
"""
from __future__ import annotations

import base64
import io

import pandas as pd


def pass_rates(history: pd.DataFrame) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(per source, per source and day). A check counts once per partition: its latest result."""
    columns = ["source", "checks", "passed", "failed", "pass_rate", "blocking_failures", "quarantined_rows", "last_validated"]
    if history.empty:
        return pd.DataFrame(columns=columns), pd.DataFrame(columns=["source", "partition", "checks", "passed", "pass_rate"])
    latest = (history.sort_values("validated_at")
              .drop_duplicates(subset=["source", "partition", "stage", "check_name"], keep="last")
              .assign(failed_blocking=lambda d: d["blocking"].astype(bool) & ~d["passed"].astype(bool),
                      # rows actually removed are counted once, by certification (stage governed)
                      quarantined=lambda d: d["quarantined"].fillna(0).astype("int64").where(d["stage"] == "governed", 0)))
    per_source = (latest.groupby("source")
                  .agg(checks=("passed", "size"), passed=("passed", "sum"), blocking_failures=("failed_blocking", "sum"),
                       quarantined_rows=("quarantined", "sum"), last_validated=("validated_at", "max"))
                  .reset_index())
    per_source["failed"] = per_source["checks"] - per_source["passed"]
    per_source["pass_rate"] = per_source["passed"] / per_source["checks"]
    per_day = latest.groupby(["source", "partition"]).agg(checks=("passed", "size"), passed=("passed", "sum")).reset_index()
    per_day["pass_rate"] = per_day["passed"] / per_day["checks"]
    return per_source[columns], per_day.sort_values(["source", "partition"]).reset_index(drop=True)


def plot_pass_rates(per_day: pd.DataFrame) -> str:
    """A PNG line chart of pass rate over partitions per source, as a base64 data URI for Markdown."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(8, 3.2), dpi=100)
    for source, group in per_day.groupby("source"):
        labels = group["partition"].replace("", "(unpartitioned)")
        ax.plot(labels, group["pass_rate"] * 100, marker="o", label=source)
    ax.set_ylim(0, 105)
    ax.set_ylabel("checks passed (%)")
    ax.set_title("Quality pass rate per partition")
    ax.tick_params(axis="x", labelrotation=45, labelsize=7)
    if not per_day.empty:
        ax.legend(fontsize=7, loc="lower left")
    fig.tight_layout()
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png")
    plt.close(fig)
    return "data:image/png;base64," + base64.b64encode(buffer.getvalue()).decode("ascii")


def scorecard_markdown(per_source: pd.DataFrame, image_uri: str) -> str:
    lines = ["| source | checks | passed | failed | pass rate | blocking failures | quarantined rows | last validated |",
             "|---|---:|---:|---:|---:|---:|---:|---|"]
    for row in per_source.itertuples():
        lines.append(f"| {row.source} | {row.checks} | {row.passed} | {row.failed} | {row.pass_rate:.1%} | "
                     f"{row.blocking_failures} | {row.quarantined_rows} | {row.last_validated} |")
    if per_source.empty:
        lines.append("| (no validations yet) | | | | | | | |")
    return "\n".join(lines) + f"\n\n![pass rate over time]({image_uri})\n"
