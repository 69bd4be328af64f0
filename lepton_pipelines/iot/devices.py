"""Device management: the declared registry, devices discovered from telemetry, and their status.

Pure pandas (no Dagster, no I/O besides parsing given text) so the rules — what counts as online,
how the rate is measured, what is "unknown" — read and test on their own.

Unknown devices (sending telemetry but absent from the registry) are *flagged* (``registered`` is
False), never dropped: a new device in the field is information, not noise.
"""

from __future__ import annotations

import csv
import io
from datetime import datetime, timedelta

import pandas as pd
import yaml

REGISTRY_FIELDS = ("device_id", "type", "site", "owner", "firmware")
DEVICE_COLUMNS = ("device_id", "type", "site", "owner", "firmware", "first_seen", "last_seen", "messages", "registered")
STATUS_COLUMNS = (
    "device_id",
    "registered",
    "status",
    "last_seen",
    "seconds_since_last_seen",
    "messages_in_window",
    "messages_per_minute",
    "battery",
    "quarantined_messages",
    "missing_readings",
    "missing_messages",
    "missing_ranges",
)
READINGS = ("temperature", "humidity", "vibration", "battery")


class RegistryError(ValueError):
    """A registry file problem naming the file, the entry and the field."""


def parse_registry(text: str, origin: str) -> pd.DataFrame:
    """Registry YAML (``devices: [{device_id, type, site, owner, firmware}, …]``) or CSV with those
    columns (chosen by ``origin``'s extension). ``id`` is accepted as an alias of ``device_id``."""
    if origin.endswith(".csv"):
        entries = list(csv.DictReader(io.StringIO(text)))
    else:
        loaded = yaml.safe_load(text) or {}
        if not isinstance(loaded, dict) or not isinstance(loaded.get("devices", []), list):
            raise RegistryError(f"{origin}: expected a mapping with a `devices:` list of device entries")
        entries = loaded.get("devices", [])
    rows, seen = [], set()
    for index, entry in enumerate(entries):
        where = f"{origin}: devices[{index}]"
        if not isinstance(entry, dict):
            raise RegistryError(f"{where}: expected a mapping with {', '.join(REGISTRY_FIELDS)}")
        entry = dict(entry)
        if "id" in entry and "device_id" not in entry:
            entry["device_id"] = entry.pop("id")
        unknown = sorted(set(entry) - set(REGISTRY_FIELDS))
        if unknown:
            raise RegistryError(
                f"{where}: unknown field(s) {', '.join(unknown)}; allowed: {', '.join(REGISTRY_FIELDS)}"
            )
        device_id = str(entry.get("device_id") or "").strip()
        if not device_id:
            raise RegistryError(f"{where}: device_id is required")
        if device_id in seen:
            raise RegistryError(f"{where}: device_id {device_id!r} is declared twice")
        seen.add(device_id)
        rows.append({name: (None if entry.get(name) in (None, "") else str(entry[name])) for name in REGISTRY_FIELDS})
    return pd.DataFrame(rows, columns=list(REGISTRY_FIELDS), dtype=object)


def summarize_sightings(telemetry: pd.DataFrame) -> pd.DataFrame:
    """Per device: first/last event time, message count and the latest reported firmware."""
    columns = ["device_id", "first_seen", "last_seen", "messages", "firmware_seen"]
    if telemetry.empty:
        return pd.DataFrame(columns=columns)
    ordered = telemetry.sort_values("ts")
    grouped = ordered.groupby("device_id", sort=True)
    summary = grouped["ts"].agg(first_seen="min", last_seen="max", messages="size").reset_index()
    if "firmware" in ordered.columns:
        latest = ordered.dropna(subset=["firmware"]).groupby("device_id")["firmware"].last().rename("firmware_seen")
        summary = summary.merge(latest, on="device_id", how="left")
    else:
        summary["firmware_seen"] = None
    return summary[columns]


def build_devices(registry: pd.DataFrame, sightings: pd.DataFrame) -> pd.DataFrame:
    """Registry ∪ discovered devices. Declared firmware wins; otherwise the firmware devices report."""
    merged = registry.merge(sightings, on="device_id", how="outer", indicator=True)
    merged["registered"] = merged["_merge"].isin(["both", "left_only"])
    merged["firmware"] = merged["firmware"].where(merged["firmware"].notna(), merged["firmware_seen"])
    merged["messages"] = merged["messages"].fillna(0).astype("int64")
    return merged[list(DEVICE_COLUMNS)].sort_values("device_id").reset_index(drop=True)


def device_status(
    devices: pd.DataFrame,
    telemetry: pd.DataFrame,
    quarantined_per_device: pd.Series,
    now: datetime,
    offline_after: timedelta,
    rate_window: timedelta,
    loss: pd.DataFrame | None = None,
) -> pd.DataFrame:
    """Online when the last message is at most ``offline_after`` old; ``never_seen`` for declared
    devices that never sent anything. Rate = messages in the trailing ``rate_window`` per minute.
    ``loss``: ``sequence.find_gaps(...).devices`` — messages missing from each device's ``seq``."""
    lost = (
        loss.set_index("device_id")
        if loss is not None and len(loss)
        else pd.DataFrame(columns=["missing", "missing_ranges"])
    )
    now_ts = pd.Timestamp(now)
    recent = telemetry[telemetry["ts"] > now_ts - rate_window] if not telemetry.empty else telemetry
    in_window = recent.groupby("device_id").size() if not recent.empty else pd.Series(dtype="int64")
    latest = telemetry.sort_values("ts").groupby("device_id").last() if not telemetry.empty else pd.DataFrame()
    missing = (
        telemetry.assign(_missing=telemetry[[c for c in READINGS if c in telemetry.columns]].isna().sum(axis=1))
        .groupby("device_id")["_missing"]
        .sum()
        if not telemetry.empty
        else pd.Series(dtype="int64")
    )
    rows = []
    for device in devices.itertuples(index=False):
        last_seen = device.last_seen if pd.notna(device.last_seen) else None
        age = (now_ts - pd.Timestamp(last_seen)).total_seconds() if last_seen is not None else None
        status = "never_seen" if age is None else ("online" if age <= offline_after.total_seconds() else "offline")
        count = int(in_window.get(device.device_id, 0))
        battery = latest["battery"].get(device.device_id) if "battery" in latest.columns else None
        rows.append(
            {
                "device_id": device.device_id,
                "registered": bool(device.registered),
                "status": status,
                "last_seen": last_seen,
                "seconds_since_last_seen": age,
                "messages_in_window": count,
                "messages_per_minute": count / (rate_window.total_seconds() / 60),
                "battery": None if battery is None or pd.isna(battery) else float(battery),
                "quarantined_messages": int(quarantined_per_device.get(device.device_id, 0)),
                "missing_readings": int(missing.get(device.device_id, 0)),
                "missing_messages": int(lost["missing"].get(device.device_id, 0)),
                "missing_ranges": lost["missing_ranges"].get(device.device_id),
            }
        )
    return pd.DataFrame(rows, columns=list(STATUS_COLUMNS))


def quarantined_per_device(quarantine: pd.DataFrame) -> pd.Series:
    """Bad messages per device id (taken from the topic, since the payload may be unreadable)."""
    if quarantine.empty or "device_id" not in quarantine.columns:
        return pd.Series(dtype="int64")
    return quarantine.dropna(subset=["device_id"]).groupby("device_id").size()
