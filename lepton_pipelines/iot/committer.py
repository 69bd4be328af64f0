"""Micro-batch commits: the one place where MQTT messages become durable lake files.

Shared by the always-on collector and the in-run drain so both keep the same promise: a message is
acknowledged only after the file holding it is committed. A batch is written as

* ``<lake>/landing/<source>/date=<event date>/<batch-id>.jsonl`` — valid telemetry, one JSON object a
  line, grouped by the UTC date of the message ``ts``;
* ``<lake>/quarantine/<source>/date=<event date>/landing-<batch-id>.parquet`` — bad messages in the
  unified quarantine schema (``_stage`` = ``landing``, ``_reason``, ``_raw`` = the payload bytes as
  text, or ``base64:…`` when they are not UTF-8, then the source's columns as landed text), under the
  date of the payload's ``ts`` when it has a usable one, else the receive date. One file per batch
  and partition (``landing-<batch-id>``): the collector commits every second, and appending to one
  ``landing.parquet`` would rewrite it each time.

Each file is published by ``lake.atomic.write_atomic`` with ``fsync``: a hidden temporary name
(starting with ``.``, which file-drop readers and the landing sensor ignore), fsync'ed, renamed into
place and the folder fsync'ed; on S3 a single PUT publishes the object atomically. Only then does the caller
get the acknowledgement tokens back. A crash anywhere before that leaves the messages unacknowledged,
so the broker redelivers them — duplicates are possible, loss is not (the clean step dedups by
``(device_id, seq, ts)``).
"""

from __future__ import annotations

import io
import time
import uuid
from collections.abc import Hashable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import pyarrow.parquet as pq

from lepton_pipelines.iot.payloads import (
    PARTITION_KEY,
    QUARANTINE_STAGE,
    Rejected,
    Telemetry,
    quarantine_record,
    quarantine_table,
)
from lepton_pipelines.lake.atomic import write_atomic

DEFAULT_COLUMNS = ("device_id", "ts", "seq", "boot_id", "temperature", "humidity", "vibration", "battery", "firmware")


@dataclass(frozen=True)
class BatchPolicy:
    """When a micro-batch is committed: whichever of count, bytes or age is reached first.

    ``max_messages`` must stay below the broker's in-flight window (our MQTT v5 Receive Maximum):
    the broker stops sending once that many messages are unacknowledged, so a larger batch could
    only ever be closed by its age limit.
    """

    max_messages: int = 1000
    max_bytes: int = 8 * 1024 * 1024
    max_age_seconds: float = 1.0

    def __post_init__(self) -> None:
        if self.max_messages < 1 or self.max_bytes < 1 or self.max_age_seconds <= 0:
            raise ValueError(f"batch policy limits must be positive, got {self}")


@dataclass
class PendingBatch:
    """Messages received but not yet committed, with the tokens that acknowledge them.

    ``ack_tokens`` may be shorter than the batch: tokens of a lost connection are forgotten
    (``forget_acks``) — the messages are still committed, but acknowledging their packet ids on a new
    connection could acknowledge other messages that reuse the ids.
    """

    telemetry_lines: dict[str, list[bytes]] = field(default_factory=dict)  # event date → JSONL lines
    quarantine_rows: list[dict[str, Any]] = field(default_factory=list)
    ack_tokens: list[Hashable] = field(default_factory=list)
    messages: int = 0  # telemetry + quarantined + control messages held
    payload_bytes: int = 0
    opened_at: float | None = None  # time.monotonic() of the first message

    def __len__(self) -> int:
        return self.messages

    def add(
        self, parsed: Telemetry | Rejected, topic: str, payload: bytes, received_at: datetime | str, token: Hashable
    ) -> None:
        """``received_at`` (a datetime or UTC ISO-8601 text) is only used for rejected messages: good
        records carry it already, inside their line."""
        if self.opened_at is None:
            self.opened_at = time.monotonic()
        if type(parsed) is Telemetry:
            lines = self.telemetry_lines.get(parsed.event_date)
            if lines is None:
                lines = self.telemetry_lines[parsed.event_date] = []
            lines.append(parsed.line)
        else:
            received = received_at if isinstance(received_at, str) else received_at.astimezone(UTC).isoformat()
            self.quarantine_rows.append(quarantine_record(topic, payload, parsed, received))
        self.messages += 1
        self.payload_bytes += len(payload)
        self.ack_tokens.append(token)

    def add_control(self, token: Hashable) -> None:
        """A message that carries no data (a retained-message clear): acknowledged with the batch."""
        if self.opened_at is None:
            self.opened_at = time.monotonic()
        self.messages += 1
        self.ack_tokens.append(token)

    def forget_acks(self) -> int:
        """Drop the acknowledgement tokens of a lost connection; returns how many were dropped."""
        dropped, self.ack_tokens = len(self.ack_tokens), []
        return dropped

    def is_full(self, policy: BatchPolicy) -> bool:
        return self.messages >= policy.max_messages or self.payload_bytes >= policy.max_bytes

    def is_due(self, policy: BatchPolicy, now: float | None = None) -> bool:
        if self.opened_at is None:
            return False
        return (
            self.is_full(policy)
            or (now if now is not None else time.monotonic()) - self.opened_at >= policy.max_age_seconds
        )

    def age_seconds(self, now: float | None = None) -> float:
        return 0.0 if self.opened_at is None else (now if now is not None else time.monotonic()) - self.opened_at


@dataclass(frozen=True)
class CommitResult:
    batch_id: str
    files: list[str]
    telemetry_count: int
    quarantined_count: int
    ack_tokens: list[Hashable]


def new_batch_id(now: datetime | None = None) -> str:
    """Sortable by commit time, unique across collectors and drains writing the same folder."""
    moment = (now or datetime.now(UTC)).astimezone(UTC)
    return f"{moment:%Y%m%dT%H%M%S%f}Z-{uuid.uuid4().hex[:12]}"


class LandingCommitter:
    """Writes pending batches into a lake (``lepton_pipelines.lake.store.Lake``) for one source."""

    def __init__(
        self,
        lake: Any,
        source: str = "device_telemetry",
        fsync: bool = True,
        columns: tuple[str, ...] = DEFAULT_COLUMNS,
    ):
        self.lake = lake
        self.source = source
        self.fsync = fsync
        self.columns = tuple(columns)  # the source's declared columns: the quarantine keeps them as text

    def commit(self, batch: PendingBatch) -> CommitResult:
        """Publish every file of the batch; raise (and publish nothing further) on the first failure.

        A failure after some files were published is safe: the batch stays unacknowledged and is
        committed again on redelivery, so at worst those rows appear twice.
        """
        batch_id = new_batch_id()
        files: list[str] = []
        telemetry_count = 0
        for event_date, lines in sorted(batch.telemetry_lines.items()):
            directory = self.lake.table_dir("landing", self.source, event_date)
            files.append(write_atomic(directory / f"{batch_id}.jsonl", b"".join(lines), fsync=self.fsync))
            telemetry_count += len(lines)
        by_partition: dict[str, list[dict[str, Any]]] = {}
        for row in batch.quarantine_rows:
            by_partition.setdefault(row[PARTITION_KEY], []).append(row)
        for partition, rows in sorted(by_partition.items()):
            buffer = io.BytesIO()
            pq.write_table(quarantine_table(rows, self.columns), buffer, compression="zstd")
            directory = self.lake.table_dir("quarantine", self.source, partition)
            name = f"{QUARANTINE_STAGE}-{batch_id}.parquet"
            files.append(write_atomic(directory / name, buffer.getvalue(), fsync=self.fsync))
        return CommitResult(
            batch_id=batch_id,
            files=files,
            telemetry_count=telemetry_count,
            quarantined_count=len(batch.quarantine_rows),
            ack_tokens=list(batch.ack_tokens),
        )
