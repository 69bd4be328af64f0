"""MQTT telemetry: the broker session's settings, and reading what the collector committed.

MQTT is a stream, a partition is a day: the collector (always on) or the in-run drain (fallback)
turns the stream into committed JSON Lines files under ``<lake>/landing/<source>/date=YYYY-MM-DD/``,
acknowledging messages only after that. So ``fetch`` never talks to the broker — it reads those files
through the file connector, with the same lineage columns and rejects as any file-drop source.
The settings here are the single place where the session (client id, topic filter, window, batch
limits, drain bounds) is declared; the collector and the drain asset both read them from the YAML.
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from lepton_pipelines.connectors.base import (
    Connector,
    ConnectorError,
    ConnectorSettings,
    FetchRequest,
    FetchResult,
    register_connector,
)
from lepton_pipelines.connectors.files import FileConnector, FileSettings

_CLIENT_ID = r"^[A-Za-z0-9_.\-]{1,128}$"


class SequenceLossPolicy(BaseModel):
    """``connector.loss_check``: end-to-end loss detection from the devices' own ``seq`` counters.

    Independent of the broker: whatever a broker, network or collector loses shows as a hole in a
    device's ``seq``. A device restart resets ``seq``; it is recognised by a change of ``boot_field``
    (when the payload carries it) or, without one, by ``seq`` falling back to at most ``restart_max_seq``
    (the reset rule: counters restart at 0 or 1). After a restart a first ``seq`` above
    ``first_seq_after_restart`` means the messages before it were lost.
    """

    model_config = ConfigDict(extra="forbid")
    boot_field: str | None = "boot_id"
    restart_max_seq: int = Field(default=1, ge=0)
    first_seq_after_restart: int = Field(default=0, ge=0)
    max_missing_messages: int = Field(default=0, ge=0, description="fail when more messages than this are missing")
    max_missing_fraction: float = Field(
        default=0.0, ge=0, le=1, description="... or more than this fraction of expected"
    )
    severity: Literal["error", "warn"] = "error"
    lookback_days: int = Field(
        default=7, ge=0, description="earlier partitions searched for each device's previous message"
    )


class MqttSettings(ConnectorSettings):
    """``connector:`` block of an MQTT source.

    ``receive_maximum`` is the in-flight window the broker may fill before we acknowledge; the
    micro-batch (``batch_max_messages``) is capped at it. ``session_expiry_seconds`` is how long the
    broker keeps queueing for us while neither the collector nor a drain is connected.
    """

    type: Literal["mqtt"] = "mqtt"
    topic_filter: str = "lepton/devices/+/telemetry"
    client_id: str = Field(default="lepton-device-telemetry", pattern=_CLIENT_ID)
    qos: Literal[1] = 1  # QoS 0 has no acknowledgement, so it could never promise "nothing lost"
    receive_maximum: int = Field(default=1000, ge=1, le=65535)
    session_expiry_seconds: int = Field(default=7 * 24 * 3600, ge=60)
    batch_max_messages: int = Field(default=500, ge=1)
    batch_max_bytes: int = Field(default=8 * 1024 * 1024, ge=1024)
    batch_max_age_seconds: float = Field(default=1.0, gt=0)
    max_payload_bytes: int = Field(default=64 * 1024, ge=64)
    drain_max_messages: int = Field(default=100_000, ge=1)
    drain_max_seconds: float = Field(default=300.0, gt=0)
    drain_idle_seconds: float = Field(default=2.0, gt=0, description="stop a drain once the queue is quiet this long")
    loss_check: SequenceLossPolicy = Field(default_factory=SequenceLossPolicy)

    @model_validator(mode="after")
    def _batch_fits_window(self) -> MqttSettings:
        if self.batch_max_messages > self.receive_maximum:
            raise ValueError(
                f"batch_max_messages ({self.batch_max_messages}) must not exceed receive_maximum "
                f"({self.receive_maximum}): the broker stops sending at receive_maximum unacknowledged messages"
            )
        if "#" in self.topic_filter.rstrip("#") or not self.topic_filter:
            raise ValueError(f"topic_filter {self.topic_filter!r}: '#' is only allowed as the last level")
        return self


@register_connector
class MqttConnector(Connector):
    type = "mqtt"
    Settings = MqttSettings
    settings: MqttSettings

    landing_runs = "partition"  # the collector commits many micro-batches a day: one run per partition and tick

    def landing_settings(self) -> FileSettings:
        return FileSettings(type="file", format="jsonl")

    def upstream_assets(self, source: str) -> list[list[str]]:
        return [[source, "landing"]]  # the in-run drain asset (lepton_pipelines.iot.definitions)

    def fetch(self, request: FetchRequest) -> FetchResult:
        files = FileConnector(self.landing_settings())
        try:
            return files.fetch(request)
        except ConnectorError as exc:
            raise ConnectorError(
                f"{exc} — for MQTT source {request.source!r} these files are written by the collector "
                f"(lepton-collector, client id {self.settings.client_id!r}) or the in-run drain asset "
                f"[{request.source}, landing]; check that one of them is running and the broker has telemetry"
            ) from exc
