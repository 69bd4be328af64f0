"""Parsing and validation of device telemetry payloads — pure functions, no MQTT, no I/O.

Why here and not in the raw asset: the collector must decide *before acknowledging* whether a
message is a telemetry record (→ landing) or bad input (→ quarantine with its raw bytes). Both are
committed before the ack, so nothing the broker handed us can vanish. The raw asset later applies
the declared schema types; this module only guarantees the fields the lake layout depends on
(``device_id`` for per-device logic, ``ts`` for the ``date=`` partition, ``seq`` for dedup).
"""
from __future__ import annotations

import json
import math
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any

TELEMETRY_TOPIC_PREFIX = "lepton/devices/"
TELEMETRY_TOPIC_SUFFIX = "/telemetry"
REQUIRED_FIELDS = ("device_id", "ts", "seq")
# Readings with a known meaning: when present they must be numbers (or null for "sensor gave nothing").
NUMERIC_READINGS = ("temperature", "humidity", "vibration", "battery")
DEFAULT_MAX_PAYLOAD_BYTES = 64 * 1024
# Epoch-second timestamps outside this window are almost always milliseconds or garbage.
_MIN_EPOCH, _MAX_EPOCH = 946_684_800, 4_102_444_800  # 2000-01-01 .. 2100-01-01

# Lineage columns the collector adds to every landed record.
TOPIC_FIELD = "_topic"
RECEIVED_AT_FIELD = "_received_at"
_UTC_SUFFIXES = ("Z", "+00:00")


@dataclass(frozen=True)
class Telemetry:
    """A valid message: the record to land (payload fields, ``ts`` normalised to UTC ISO-8601)."""

    record: dict[str, Any]
    event_date: str  # YYYY-MM-DD of ``ts`` in UTC: the landing partition


@dataclass(frozen=True)
class Rejected:
    """Bad input: why, plus the device id guessed from the topic (for per-device error counts)."""

    reason: str
    topic_device_id: str | None


def device_id_from_topic(topic: str) -> str | None:
    """``lepton/devices/<id>/telemetry`` → ``<id>``; None for any other topic shape."""
    if topic.startswith(TELEMETRY_TOPIC_PREFIX) and topic.endswith(TELEMETRY_TOPIC_SUFFIX):
        device_id = topic[len(TELEMETRY_TOPIC_PREFIX) : -len(TELEMETRY_TOPIC_SUFFIX)]
        if device_id and "/" not in device_id:
            return device_id
    return None


def telemetry_topic(device_id: str) -> str:
    return f"{TELEMETRY_TOPIC_PREFIX}{device_id}{TELEMETRY_TOPIC_SUFFIX}"


def parse_timestamp(value: Any) -> datetime:
    """ISO-8601 string (naive means UTC) or epoch seconds → aware UTC datetime; ValueError says why."""
    if isinstance(value, bool):
        raise ValueError(f"ts must be an ISO-8601 string or epoch seconds, got boolean {value!r}")
    if isinstance(value, (int, float)):
        if not math.isfinite(value) or not _MIN_EPOCH <= value <= _MAX_EPOCH:
            raise ValueError(
                f"ts {value!r} is not epoch seconds between 2000 and 2100 (milliseconds must be divided by 1000)"
            )
        return datetime.fromtimestamp(value, tz=timezone.utc)
    if isinstance(value, str):
        try:
            parsed = datetime.fromisoformat(value)
        except ValueError:
            raise ValueError(f"ts {value[:64]!r} is not ISO-8601 (e.g. 2026-01-05T10:11:12Z)") from None
        return parsed.replace(tzinfo=timezone.utc) if parsed.tzinfo is None else parsed.astimezone(timezone.utc)
    raise ValueError(f"ts must be an ISO-8601 string or epoch seconds, got {type(value).__name__}")


def format_timestamp(moment: datetime) -> str:
    return moment.astimezone(timezone.utc).isoformat(timespec="microseconds")


def parse_telemetry(
    topic: str,
    payload: bytes,
    received_at: datetime | str,
    max_payload_bytes: int = DEFAULT_MAX_PAYLOAD_BYTES,
) -> Telemetry | Rejected:
    """Validate one MQTT message. Never raises: every failure becomes a ``Rejected`` with a reason
    a device owner can act on (which field, what was found, what is allowed).

    ``received_at`` may be given pre-formatted (ISO-8601 UTC) so a receive loop formats it once per
    millisecond rather than once per message."""
    topic_device = device_id_from_topic(topic)

    def reject(reason: str) -> Rejected:
        return Rejected(reason=reason, topic_device_id=topic_device)

    if topic_device is None:
        return reject(f"topic {topic!r} is not of the form lepton/devices/<device_id>/telemetry")
    if len(payload) > max_payload_bytes:
        return reject(f"payload is {len(payload)} bytes; at most {max_payload_bytes} bytes are accepted")
    try:
        body = json.loads(payload)
    except (UnicodeDecodeError, ValueError) as exc:
        return reject(f"payload is not JSON: {exc}")
    if not isinstance(body, dict):
        return reject(f"payload must be a JSON object, got {type(body).__name__}")
    missing = [name for name in REQUIRED_FIELDS if body.get(name) is None]
    if missing:
        return reject(f"missing required field(s): {', '.join(missing)} (required: {', '.join(REQUIRED_FIELDS)})")
    device_id, seq, ts = body["device_id"], body["seq"], body["ts"]
    if not isinstance(device_id, str) or not device_id:
        return reject(f"device_id must be a non-empty string, got {device_id!r}")
    if device_id != topic_device:
        return reject(f"device_id {device_id!r} does not match the topic's device {topic_device!r}")
    if isinstance(seq, bool) or not isinstance(seq, int) or seq < 0:
        return reject(f"seq must be a non-negative integer, got {seq!r}")
    try:
        moment = parse_timestamp(ts)
    except ValueError as exc:
        return reject(str(exc))
    reserved = [name for name in body if name[:1] == "_"]
    if reserved:
        return reject(f"field {reserved[0]!r}: names starting with '_' are reserved for lineage columns")
    for name in NUMERIC_READINGS:
        value = body.get(name)
        if value is not None and (isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value)):
            return reject(f"field {name!r} must be a finite number or null, got {value!r}")
    # Hot path (tens of thousands a second): keep an ISO string that already names UTC as it came.
    if not (isinstance(ts, str) and ts.endswith(_UTC_SUFFIXES)):
        body["ts"] = format_timestamp(moment)
    body[TOPIC_FIELD] = topic
    body[RECEIVED_AT_FIELD] = received_at if isinstance(received_at, str) else format_timestamp(received_at)
    return Telemetry(record=body, event_date=moment.date().isoformat())
