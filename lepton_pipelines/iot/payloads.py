"""Parsing and validation of device telemetry payloads — pure functions, no MQTT, no I/O.

Why here and not in the raw asset: the collector must decide *before acknowledging* whether a
message is a telemetry record (→ landing) or bad input (→ quarantine with its raw bytes). Both are
committed before the ack, so nothing the broker handed us can vanish. The raw asset later applies
the declared schema types; this module only guarantees the fields the lake layout depends on
(``device_id`` for per-device logic, ``ts`` for the ``date=`` partition, ``seq`` for dedup).

Why bytes in, bytes out: this runs for every message (tens of thousands a second) on the
collector's single receive thread, so its cost is the collector's throughput. A payload is validated
with ``orjson`` (strict RFC 8259: no NaN/Infinity, no raw control characters in strings, valid UTF-8)
and landed *as received* — never re-encoded: the lineage members ``_topic`` and ``_received_at`` are
spliced in before the closing brace, and the whitespace newlines a pretty-printed payload may carry
become spaces so the record stays one JSON Lines line. ``ts`` therefore lands in the form the device
sent (ISO-8601 or epoch seconds); the raw asset's schema coercion turns both into UTC timestamps.
"""

from __future__ import annotations

import base64
import math
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import lru_cache
from typing import Any, NamedTuple

import orjson
import pyarrow as pa

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

# The unified quarantine schema's leading columns (every stage and source), then the source's columns as text.
QUARANTINE_META_COLUMNS = ("_stage", "_reason", "_rule", "_check", "_source_file", "_source_line", "_raw")
QUARANTINE_STAGE = "landing"
PARTITION_KEY = "_partition"  # internal: the date= folder a quarantine record goes to
RAW_BASE64_PREFIX = "base64:"


class Telemetry(NamedTuple):
    """A valid message, ready to land: one JSON Lines line (payload + lineage members + newline).

    A NamedTuple, not a dataclass: one is built per message on the hot path."""

    line: bytes
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


def event_date(ts: Any) -> str:
    """The UTC date (``YYYY-MM-DD``, the landing partition) of an ISO-8601 string (naive means UTC)
    or epoch seconds; ValueError says why ``ts`` is neither."""
    if type(ts) is str:
        try:
            moment = datetime.fromisoformat(ts)
        except ValueError:
            raise ValueError(f"ts {ts[:64]!r} is not ISO-8601 (e.g. 2026-01-05T10:11:12Z)") from None
        if moment.tzinfo is not None and not ts.endswith(_UTC_SUFFIXES):
            try:
                moment = moment.astimezone(UTC)
            except OverflowError:
                raise ValueError(f"ts {ts[:64]!r} is out of range once converted to UTC") from None
        return moment.date().isoformat()
    if type(ts) is int or type(ts) is float:
        if not math.isfinite(ts) or not _MIN_EPOCH <= ts <= _MAX_EPOCH:
            raise ValueError(
                f"ts {ts!r} is not epoch seconds between 2000 and 2100 (milliseconds must be divided by 1000)"
            )
        return _epoch_day(int(ts // 86400))
    raise ValueError(f"ts must be an ISO-8601 string or epoch seconds, got {_json_type_name(ts)}")


@lru_cache(maxsize=1024)
def _epoch_day(day: int) -> str:
    """Days since 1970-01-01 → ``YYYY-MM-DD``: one ``datetime`` per day seen, not per message."""
    return datetime.fromtimestamp(day * 86400, UTC).date().isoformat()


def format_timestamp(moment: datetime) -> str:
    return moment.astimezone(UTC).isoformat(timespec="microseconds")


@lru_cache(maxsize=4096)
def _lineage_tail(topic: str, received_at: str) -> bytes:
    """``,"_topic":…,"_received_at":…}`` + newline. Cached: a receive loop passes one received_at
    per network read, so consecutive messages of a device share one tail."""
    return (
        b',"'
        + TOPIC_FIELD.encode()
        + b'":'
        + orjson.dumps(topic)
        + b',"'
        + RECEIVED_AT_FIELD.encode()
        + b'":'
        + orjson.dumps(received_at)
        + b"}\n"
    )


def parse_telemetry(
    topic: str,
    payload: bytes,
    received_at: datetime | str,
    max_payload_bytes: int = DEFAULT_MAX_PAYLOAD_BYTES,
) -> Telemetry | Rejected:
    """Validate one MQTT message. Never raises: every failure becomes a ``Rejected`` with a reason
    a device owner can act on (which field, what was found, what is allowed).

    ``received_at`` may be given pre-formatted (ISO-8601 UTC) so a receive loop formats it once per
    network read rather than once per message."""
    topic_device = _device_id_of_topic(topic)
    if topic_device is None:
        return Rejected(f"topic {topic!r} is not of the form lepton/devices/<device_id>/telemetry", None)
    try:
        date = _landing_date(payload, topic_device, max_payload_bytes)
    except ValueError as exc:
        return Rejected(str(exc), topic_device)
    received_text = received_at if isinstance(received_at, str) else format_timestamp(received_at)
    return Telemetry(_splice_lineage(payload, topic, received_text), date)


@lru_cache(maxsize=65536)
def _device_id_of_topic(topic: str) -> str | None:
    return device_id_from_topic(topic)


def _landing_date(payload: bytes, topic_device: str, max_payload_bytes: int) -> str:
    """The UTC date partition of a payload that can land; ValueError with a reason people can act on
    (which field, what was found, what is allowed) when it cannot."""
    if not payload:
        raise ValueError(
            "payload is empty (0 bytes): only a retained message may be empty (it clears the retained value); "
            "a telemetry message needs a JSON object"
        )
    if len(payload) > max_payload_bytes:
        raise ValueError(f"payload is {len(payload)} bytes; at most {max_payload_bytes} bytes are accepted")
    try:
        body = orjson.loads(payload)
    except orjson.JSONDecodeError as exc:
        raise ValueError(f"payload is not JSON: {exc}") from None
    if type(body) is not dict:
        raise ValueError(f"payload must be a JSON object, got {_json_type_name(body)}")
    device_id, seq, ts = body.get("device_id"), body.get("seq"), body.get("ts")
    if device_id is None or seq is None or ts is None:
        missing = [name for name in REQUIRED_FIELDS if body.get(name) is None]
        raise ValueError(f"missing required field(s): {', '.join(missing)} (required: {', '.join(REQUIRED_FIELDS)})")
    if type(device_id) is not str or not device_id:
        raise ValueError(f"device_id must be a non-empty string, got {device_id!r}")
    if device_id != topic_device:
        raise ValueError(f"device_id {device_id!r} does not match the topic's device {topic_device!r}")
    if type(seq) is not int or seq < 0:
        raise ValueError(f"seq must be a non-negative integer, got {seq!r}")
    # A key starting with "_" shows in the raw bytes as '"_' or, escaped, as '\u005f': skip the key
    # scan for the (usual) payloads that contain neither.
    if b'"_' in payload or b"\\" in payload:
        for name in body:
            if name[:1] == "_":
                raise ValueError(f"field {name!r}: names starting with '_' are reserved for lineage columns")
    for name in NUMERIC_READINGS:
        value = body.get(name)
        if value is not None and type(value) is not float and type(value) is not int:
            raise ValueError(f"field {name!r} must be a finite number or null, got {value!r}")  # orjson refuses NaN
    return event_date(ts)


def _splice_lineage(payload: bytes, topic: str, received_at: str) -> bytes:
    """The payload's own bytes with the lineage members inserted before its closing brace.

    Only for payloads ``orjson`` accepted as an object with the required fields, so: the last
    non-whitespace byte is ``}``, the object is not empty (a ``,`` may precede our members), and a
    CR or LF byte can only be whitespace between tokens (raw control characters are invalid inside
    JSON strings, and UTF-8 never uses those bytes inside a multi-byte character) — so turning them
    into spaces keeps the JSON identical while making it one line."""
    body = payload.rstrip(b" \t\r\n")
    if b"\n" in body or b"\r" in body:
        body = body.replace(b"\n", b" ").replace(b"\r", b" ")
    return body[:-1] + _lineage_tail(topic, received_at)


def _json_type_name(value: Any) -> str:
    """The JSON name of a parsed value, for reasons people read (``array``, not ``list``)."""
    names = {dict: "object", list: "array", str: "string", int: "number", float: "number", bool: "boolean"}
    return "null" if value is None else names.get(type(value), type(value).__name__)


# -- quarantine records (rare path: built only for rejected messages) --------------------------------
def raw_text(payload: bytes) -> str:
    """The payload as text when it is UTF-8, else ``base64:<base64>`` (also for UTF-8 text that itself
    starts with the prefix, so the prefix always means base64)."""
    try:
        text = payload.decode("utf-8")
    except UnicodeDecodeError:
        text = None
    if text is None or text.startswith(RAW_BASE64_PREFIX):
        return RAW_BASE64_PREFIX + base64.b64encode(payload).decode("ascii")
    return text


def decode_raw(raw: str) -> bytes:
    """The payload bytes back from ``_raw``."""
    if raw.startswith(RAW_BASE64_PREFIX):
        return base64.b64decode(raw[len(RAW_BASE64_PREFIX) :])
    return raw.encode("utf-8")


def quarantine_record(topic: str, payload: bytes, rejected: Rejected, received_at: str) -> dict[str, Any]:
    """One rejected message as a quarantine row: reason, raw bytes, the payload's fields as landed text,
    and the data partition — the UTC date of its ``ts`` when that is usable, else the receive date."""
    body: Any = None
    try:
        body = orjson.loads(payload)
    except orjson.JSONDecodeError:
        pass
    fields: dict[str, str | None] = {}
    if type(body) is dict:
        fields = {
            str(k): (v if type(v) is str else None if v is None else orjson.dumps(v).decode()) for k, v in body.items()
        }
    if fields.get("device_id") is None:
        fields["device_id"] = rejected.topic_device_id  # the topic names the device when the payload cannot
    fields[TOPIC_FIELD], fields[RECEIVED_AT_FIELD] = topic, received_at
    try:
        partition = event_date(body["ts"]) if type(body) is dict and "ts" in body else received_at[:10]
    except ValueError:
        partition = received_at[:10]
    return {
        PARTITION_KEY: partition,
        "_reason": rejected.reason,
        "_raw": raw_text(payload),
        "_source_file": f"mqtt:{topic}",
        "fields": fields,
    }


def quarantine_table(rows: list[dict[str, Any]], columns: tuple[str, ...]) -> pa.Table:
    """Rows from ``quarantine_record`` in the lake's unified quarantine schema (``lake.quarantine``):
    the fixed columns, then ``columns`` (the source's declared columns, lineage columns always
    included) as text — built by the same ``quarantine_frame`` as every other stage, so every file of a
    source's quarantine has identical column types."""
    import pandas as pd

    from lepton_pipelines.lake.quarantine import quarantine_frame
    from lepton_pipelines.lake.store import to_arrow

    names = list(dict.fromkeys([*columns, TOPIC_FIELD, RECEIVED_AT_FIELD]))
    landed = pd.DataFrame(
        {"_source_file": [r["_source_file"] for r in rows], **{n: [r["fields"].get(n) for r in rows] for n in names}},
        dtype=object,
    )
    frame = quarantine_frame(
        QUARANTINE_STAGE, landed, names, reason=[r["_reason"] for r in rows], raw=[r["_raw"] for r in rows]
    )
    return to_arrow(frame)
