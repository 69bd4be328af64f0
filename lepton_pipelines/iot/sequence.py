"""End-to-end loss detection from the devices' own ``seq`` counters — pure pandas, no Dagster, no I/O.

Why: every other loss signal depends on the part that lost the data. A broker killed before its first
save forgets the collector's session, and whatever devices publish until the collector subscribes
again is dropped without touching the broker's drop counter. Devices number their messages, so a
hole in a device's ``seq`` is loss whoever caused it.

The rules (documented in ``deployments/README.md``, declared per source in ``connector.loss_check``):

* A device's messages are read in event-time order (``ts``, then ``seq``).
* **Restarts** reset ``seq``. A restart is a change of the boot id (``boot_field``, when the payload
  carries one) or — the reset rule for devices without one — ``seq`` falling to at most
  ``restart_max_seq`` below the previous value. Each run between restarts is an *epoch*.
* Within an epoch every ``seq`` between the lowest and the highest must be present; a hole
  ``a..b`` is reported as a missing range. An epoch that begins with a restart must start at
  ``first_seq_after_restart``: a later first ``seq`` means its first messages were lost.
* **Across partitions**: each device's last message before the partition (from earlier partitions)
  is put in front, so a hole at midnight is found by the later partition's check.
* Duplicates (redelivery) are not gaps; ``seq`` values lower than an epoch's last one (late
  arrivals) only close holes.
* Messages in quarantine (a bad payload, a row a rule or check removed) are not lost: a hole's
  ``seq`` values found in the partition's quarantine for that device are accounted for, not missing.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

RESULT_COLUMNS = ("device_id", "received", "restarts", "missing", "missing_ranges")
_CONTEXT = "_context"
_EPOCH = "_epoch"


@dataclass(frozen=True)
class MissingRange:
    device_id: str
    first: int
    last: int
    boot: str | None = None

    @property
    def count(self) -> int:
        return self.last - self.first + 1

    def text(self) -> str:
        span = str(self.first) if self.first == self.last else f"{self.first}-{self.last}"
        return f"{span} (boot {self.boot})" if self.boot else span


@dataclass
class SequenceReport:
    devices: pd.DataFrame  # RESULT_COLUMNS, one row per device seen in the partition
    ranges: list[MissingRange] = field(default_factory=list)

    @property
    def missing(self) -> int:
        return int(self.devices["missing"].sum()) if len(self.devices) else 0

    @property
    def received(self) -> int:
        return int(self.devices["received"].sum()) if len(self.devices) else 0

    def devices_with_loss(self) -> pd.DataFrame:
        return self.devices[self.devices["missing"] > 0]

    def summary(self, limit: int = 20) -> str:
        """``dev-1: 100-299; dev-2: 7, 40-41`` for the devices with loss (at most ``limit``)."""
        lossy = self.devices_with_loss()
        parts = [f"{row.device_id}: {row.missing_ranges}" for row in lossy.head(limit).itertuples(index=False)]
        more = f"; … and {len(lossy) - limit} more device(s)" if len(lossy) > limit else ""
        return "; ".join(parts) + more


def last_message_per_device(frame: pd.DataFrame, boot_field: str | None = None) -> pd.DataFrame:
    """Each device's latest message (by ``ts``, then ``seq``): the context a later partition starts from."""
    columns = _columns(frame, boot_field)
    if frame.empty:
        return pd.DataFrame(columns=columns)
    ordered = frame[columns].dropna(subset=["device_id", "seq"]).sort_values(["device_id", "ts", "seq"], kind="stable")
    return ordered.groupby("device_id", sort=False).tail(1).reset_index(drop=True)


def find_gaps(
    current: pd.DataFrame,
    previous: pd.DataFrame | None = None,
    boot_field: str | None = "boot_id",
    restart_max_seq: int = 1,
    first_seq_after_restart: int = 0,
    quarantined: pd.DataFrame | None = None,
) -> SequenceReport:
    """Holes in each device's ``seq`` in ``current`` (one partition), continuing from ``previous``
    (each device's last earlier message, see ``last_message_per_device``), less the ``(device_id, seq)``
    of ``quarantined`` messages (their ``seq`` may be text, as quarantine keeps landed values)."""
    boot = boot_field if boot_field and boot_field in current.columns else None
    columns = _columns(current, boot)
    rows = current[columns].dropna(subset=["device_id", "seq"]).assign(**{_CONTEXT: False})
    if previous is not None and len(previous):
        context = previous[[c for c in columns if c in previous.columns]]
        context = context[context["device_id"].isin(rows["device_id"].unique())].assign(**{_CONTEXT: True})
        rows = pd.concat([context, rows], ignore_index=True)
    if rows.empty:
        return SequenceReport(pd.DataFrame(columns=list(RESULT_COLUMNS)))
    rows["seq"] = rows["seq"].astype("int64")
    # Context rows first: they happened before the partition whatever their clocks say.
    rows = rows.sort_values(["device_id", _CONTEXT, "ts", "seq"], ascending=[True, False, True, True], kind="stable")
    rows = rows.reset_index(drop=True)
    by_device = rows.groupby("device_id", sort=False)
    previous_seq = by_device["seq"].shift(1)
    restart = (previous_seq.notna() & (rows["seq"] < previous_seq) & (rows["seq"] <= restart_max_seq)).to_numpy(
        dtype=bool
    )
    if boot is not None:
        previous_boot = by_device[boot].shift(1)
        changed = rows[boot].notna() & previous_boot.notna() & (rows[boot] != previous_boot)
        restart = restart | changed.to_numpy(dtype=bool)
    rows[_EPOCH] = pd.Series(restart, index=rows.index).groupby(rows["device_id"], sort=False).cumsum()
    rows["_restart"] = restart

    ranges = _holes_within_epochs(rows, boot) + _lost_epoch_starts(rows, boot, first_seq_after_restart)
    ranges = _without_quarantined(ranges, quarantined)
    ranges.sort(key=lambda r: (r.device_id, r.boot or "", r.first))
    current_rows = rows[~rows[_CONTEXT]]
    per_device = pd.DataFrame(
        {
            "received": current_rows.groupby("device_id", sort=True).size(),
            "restarts": current_rows.groupby("device_id", sort=True)["_restart"].sum().astype("int64"),
        }
    )
    missing: dict[str, int] = {}
    texts: dict[str, list[str]] = {}
    for hole in ranges:
        missing[hole.device_id] = missing.get(hole.device_id, 0) + hole.count
        texts.setdefault(hole.device_id, []).append(hole.text())
    per_device["missing"] = pd.Series(missing, dtype="int64").reindex(per_device.index).fillna(0).astype("int64")
    per_device["missing_ranges"] = pd.Series({d: ", ".join(t) for d, t in texts.items()}, dtype=object).reindex(
        per_device.index
    )
    per_device = per_device.rename_axis("device_id").reset_index()
    return SequenceReport(per_device[list(RESULT_COLUMNS)], ranges)


@dataclass(frozen=True)
class LossVerdict:
    passed: bool
    missing: int
    expected: int
    description: str


def judge(report: SequenceReport, max_missing_messages: int = 0, max_missing_fraction: float = 0.0) -> LossVerdict:
    """Pass when the missing messages are within either tolerance (both 0: nothing may be missing)."""
    missing = report.missing
    expected = report.received + missing
    fraction = missing / expected if expected else 0.0
    passed = missing <= max_missing_messages or (max_missing_fraction > 0 and fraction <= max_missing_fraction)
    if missing == 0:
        description = f"no gaps in seq: {report.received} message(s) from {len(report.devices)} device(s)"
    else:
        lossy = report.devices_with_loss()
        description = (
            f"{missing} message(s) missing ({fraction:.4%} of {expected} expected) from {len(lossy)} device(s) — "
            f"{report.summary()}. Tolerance: {max_missing_messages} message(s) or {max_missing_fraction:.4%}."
        )
        if not passed:
            description += (
                " Lost between device and lake: check the collector's session_lost events and the broker's "
                "restarts/drops for this period."
            )
    return LossVerdict(passed, missing, expected, description)


# -- internals --------------------------------------------------------------------------------------
def _columns(frame: pd.DataFrame, boot_field: str | None) -> list[str]:
    columns = ["device_id", "seq", "ts"]
    if boot_field and boot_field in frame.columns:
        columns.append(boot_field)
    return columns


def _holes_within_epochs(rows: pd.DataFrame, boot: str | None) -> list[MissingRange]:
    """Consecutive distinct seqs of an epoch more than one apart, where the later one is in the partition
    (or the earlier one is, for a hole just after the context message)."""
    distinct = rows.sort_values(["device_id", _EPOCH, "seq", _CONTEXT], ascending=[True, True, True, False])
    distinct = distinct.drop_duplicates(["device_id", _EPOCH, "seq"])
    same_epoch = distinct.groupby(["device_id", _EPOCH], sort=False)
    next_seq = same_epoch["seq"].shift(-1)
    next_is_context = same_epoch[_CONTEXT].shift(-1, fill_value=True).astype(bool)
    hole = (next_seq - distinct["seq"] > 1) & ~(distinct[_CONTEXT] & next_is_context)
    found = distinct[hole.to_numpy()]
    following = next_seq[hole.to_numpy()].astype("int64").to_numpy()
    return [
        MissingRange(device, int(seq) + 1, int(after) - 1, _boot_text(row_boot))
        for device, seq, after, row_boot in zip(
            found["device_id"], found["seq"], following, found[boot] if boot else [None] * len(found), strict=True
        )
    ]


def _lost_epoch_starts(rows: pd.DataFrame, boot: str | None, first_seq: int) -> list[MissingRange]:
    """Epochs that begin with a restart inside the partition but not at ``first_seq``."""
    started = rows[rows["_restart"].to_numpy() & ~rows[_CONTEXT].to_numpy()]
    if started.empty:
        return []
    lowest = rows.groupby(["device_id", _EPOCH], sort=False)["seq"].min()
    ranges = []
    for device, epoch, row_boot in zip(
        started["device_id"], started[_EPOCH], started[boot] if boot else [None] * len(started), strict=True
    ):
        low = int(lowest[(device, epoch)])
        if low > first_seq:
            ranges.append(MissingRange(device, first_seq, low - 1, _boot_text(row_boot)))
    return ranges


def _without_quarantined(ranges: list[MissingRange], quarantined: pd.DataFrame | None) -> list[MissingRange]:
    """Split holes around the seqs that are in quarantine for the same device."""
    if not ranges or quarantined is None or quarantined.empty or not {"device_id", "seq"} <= set(quarantined.columns):
        return ranges
    seqs = pd.to_numeric(quarantined["seq"].astype("string").str.strip('"'), errors="coerce")
    known = pd.DataFrame({"device_id": quarantined["device_id"].astype("string"), "seq": seqs}).dropna()
    by_device = {
        device: np.unique(group["seq"].to_numpy(dtype=np.int64)) for device, group in known.groupby("device_id")
    }
    kept: list[MissingRange] = []
    for hole in ranges:
        inside = by_device.get(hole.device_id, np.empty(0, dtype=np.int64))
        inside = inside[(inside >= hole.first) & (inside <= hole.last)]
        start = hole.first
        for seq in inside.tolist():
            if seq > start:
                kept.append(MissingRange(hole.device_id, start, seq - 1, hole.boot))
            start = seq + 1
        if start <= hole.last:
            kept.append(MissingRange(hole.device_id, start, hole.last, hole.boot))
    return kept


def _boot_text(value: Any) -> str | None:
    return None if value is None or (isinstance(value, float) and np.isnan(value)) or value is pd.NA else str(value)
