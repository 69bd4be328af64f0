"""The declared schema enforced row by row: what typing, the required flag and event times send to quarantine.

These rules hold for every source whatever its YAML ``cleaning`` list says, because they are the contract
itself: a value that does not parse as its declared type (``on_parse_error``), a required (``nullable:
false``) column without a value, an event time far outside its partition's day (``late_arrival``). Each
returns the rows it removes already in the quarantine schema (``lake.quarantine``), with a reason naming
the column, the landed text and what was expected. No Dagster here.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta

import numpy as np
import pandas as pd

from lepton_pipelines.cleaning.base import REASON_COLUMN, RULE_COLUMN
from lepton_pipelines.cleaning.coerce import PARSE_ERRORS_COLUMN, CoercionResult
from lepton_pipelines.cleaning.support import select_rows
from lepton_pipelines.connectors.base import SOURCE_FILE, SOURCE_LINE
from lepton_pipelines.contract.spec import SourceSpec
from lepton_pipelines.lake.quarantine import as_text, quarantine_frame

PARSE_RULE = "parse"
READ_RULE = "read"
REQUIRED_RULE = "required"
LATE_RULE = "late_arrival"


@dataclass
class Split:
    """Rows kept (``keep`` over the input's rows) and the removed ones in the quarantine schema."""

    keep: np.ndarray
    quarantine: pd.DataFrame

    @property
    def removed(self) -> int:
        return int((~self.keep).sum())


def declared_names(spec: SourceSpec) -> list[str]:
    return [c.name for c in spec.columns]


def parse_rejects(coerced: CoercionResult, spec: SourceSpec) -> Split:
    """Rows with a value that did not parse in a column whose policy is ``quarantine`` — or in a required
    column, where ``null`` would only turn the failure into a missing required value. The quarantined
    row carries the landed text of every failing column (the others rendered from their typed value)."""
    frame = coerced.frame
    required = {c.name for c in spec.columns if not c.nullable}
    reject = coerced.reject_mask(required)
    positions = np.flatnonzero(reject)
    if not len(positions):
        return Split(
            np.ones(len(frame), dtype=bool), quarantine_frame("raw", frame.iloc[0:0], declared_names(spec), reason=[])
        )
    rows = select_rows(frame, reject)
    quarantine = quarantine_frame(
        "raw",
        rows,
        declared_names(spec),
        reason=coerced.reject_reasons(positions),
        rule=PARSE_RULE,
        raw=rows[PARSE_ERRORS_COLUMN].tolist(),
    )
    for column, failed in coerced.failed_masks.items():  # the landed text, not the null it typed to
        hits = failed[positions]
        if hits.any():
            landed = coerced.failed_text[column].loc[positions[hits]]
            quarantine.loc[np.flatnonzero(hits), column] = [
                v if isinstance(v, str) else str(v) for v in landed.tolist()
            ]
    return Split(~reject, quarantine)


def read_rejects(rejects: pd.DataFrame, spec: SourceSpec) -> pd.DataFrame:
    """The connector's rejects (lines/records that are no record at all) in the quarantine schema."""
    rows = pd.DataFrame(
        {
            SOURCE_FILE: rejects.get("source_file", pd.Series(dtype="str")).to_numpy(),
            SOURCE_LINE: pd.to_numeric(
                rejects.get("source_line", pd.Series(dtype="float64")), errors="coerce"
            ).to_numpy(),
        }
    )
    return quarantine_frame(
        "raw",
        rows,
        declared_names(spec),
        reason=rejects.get("reason", pd.Series(dtype="str")).tolist(),
        rule=READ_RULE,
        raw=rejects.get("raw", pd.Series(dtype="str")).tolist(),
    )


def cleaning_quarantine(removed: pd.DataFrame, spec: SourceSpec) -> pd.DataFrame:
    """Rows the cleaning rules removed (superseded duplicates included) in the quarantine schema."""
    return quarantine_frame(
        "clean",
        removed,
        declared_names(spec),
        reason=removed[REASON_COLUMN].tolist(),
        rule=removed[RULE_COLUMN].tolist(),
    )


def required_rejects(frame: pd.DataFrame, spec: SourceSpec) -> Split:
    """``nullable: false`` enforced on every declared column after cleaning (an imputed value counts):
    a row without a required value is quarantined as ``"<column> is required"``."""
    missing: dict[str, np.ndarray] = {}
    for column in spec.columns:
        if not column.nullable and column.name in frame.columns:
            nulls = frame[column.name].isna().to_numpy()
            if nulls.any():
                missing[column.name] = nulls
    if not missing:
        return Split(
            np.ones(len(frame), dtype=bool), quarantine_frame("clean", frame.iloc[0:0], declared_names(spec), reason=[])
        )
    reject = np.logical_or.reduce(list(missing.values()))
    positions = np.flatnonzero(reject)
    reasons = [", ".join(f"{name} is required" for name, nulls in missing.items() if nulls[p]) for p in positions]
    rows = select_rows(frame, reject)
    return Split(~reject, quarantine_frame("clean", rows, declared_names(spec), reason=reasons, rule=REQUIRED_RULE))


def late_arrivals(frame: pd.DataFrame, spec: SourceSpec, partition_key: str | None) -> tuple[np.ndarray, list[str]]:
    """Rows whose ``event_time`` lies outside the partition's day by more than the declared tolerance,
    and a reason for each. Unpartitioned sources and sources without an event time have none."""
    if not partition_key or not spec.event_time or spec.event_time not in frame.columns or not len(frame):
        return np.zeros(len(frame), dtype=bool), []
    tolerance = spec.governance.late_arrival.tolerance_timedelta
    start = datetime.combine(date.fromisoformat(partition_key), datetime.min.time(), tzinfo=UTC)
    low, high = start - tolerance, start + timedelta(days=1) + tolerance
    times = _as_utc(frame[spec.event_time])
    late = (times.notna() & ((times < low) | (times >= high))).to_numpy()
    shown = as_text(frame[spec.event_time][late]) if late.any() else pd.Series(dtype="str")
    reasons = [
        f"{spec.event_time} {t} is outside partition {partition_key} by more than late_arrival.tolerance "
        f"{spec.governance.late_arrival.tolerance}"
        for t in shown.tolist()
    ]
    return late, reasons


def late_rejects(frame: pd.DataFrame, spec: SourceSpec, partition_key: str | None) -> tuple[Split, int, list[str]]:
    """``late_arrival.action: quarantine`` removes late rows; ``flag`` keeps them. Returns the split, the
    number of late rows (removed or flagged) and the first few reasons, for the check."""
    late, reasons = late_arrivals(frame, spec, partition_key)
    count = int(late.sum())
    if not count or spec.governance.late_arrival.action != "quarantine":
        return (
            Split(
                np.ones(len(frame), dtype=bool),
                quarantine_frame("clean", frame.iloc[0:0], declared_names(spec), reason=[]),
            ),
            count,
            reasons[:5],
        )
    rows = select_rows(frame, late)
    return (
        Split(~late, quarantine_frame("clean", rows, declared_names(spec), reason=reasons, rule=LATE_RULE)),
        count,
        reasons[:5],
    )


def _as_utc(values: pd.Series) -> pd.Series:
    if isinstance(values.dtype, pd.DatetimeTZDtype):
        return values.dt.tz_convert("UTC")
    # a date column: its day at midnight UTC
    return pd.to_datetime(values.astype("str"), errors="coerce", utc=True)
