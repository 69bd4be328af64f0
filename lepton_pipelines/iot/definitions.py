"""Dagster wiring of the IoT platform: in-run drain, broker drop check, seq gap check, device registry and status.

Thin on purpose — the logic is in ``drain.py``, ``broker_stats.py``, ``sequence.py`` and ``devices.py``.
"""

import warnings
from datetime import UTC, datetime, timedelta

import dagster as dg
import pandas as pd

from lepton_pipelines.contract.documents import shipped_source_file
from lepton_pipelines.iot import broker_stats, sequence
from lepton_pipelines.iot import devices as device_logic
from lepton_pipelines.iot.collector import declared_columns, read_mqtt_source
from lepton_pipelines.iot.drain import drain
from lepton_pipelines.iot.lease import LeaseHeld
from lepton_pipelines.iot.resource import MqttBrokerResource
from lepton_pipelines.iot.sessions import session_events
from lepton_pipelines.lake.resource import LakeResource
from lepton_pipelines.lake.store import Lake

SOURCE = "device_telemetry"
SOURCE_FILE = shipped_source_file(SOURCE)
LANDING_KEY = dg.AssetKey([SOURCE, "landing"])
CLEAN_KEY = dg.AssetKey([SOURCE, "clean"])
GOVERNED_KEY = dg.AssetKey([SOURCE, "governed"])
DEVICES_KEY = dg.AssetKey(["iot", "devices"])
STATUS_KEY = dg.AssetKey(["iot", "device_status"])
MQTT_CLIENT_TAG = "lepton/mqtt-client"
REGISTRY_CANDIDATES = (("landing", "devices", "registry.yaml"), ("landing", "devices", "registry.csv"))


# Read through the source contract's loader, as the collector and the registry read it (one set of messages).
SPEC, SETTINGS = read_mqtt_source(SOURCE_FILE)
COLUMNS = declared_columns(SPEC)
LOSS_POLICY = SETTINGS.loss_check
# The governed asset's partitions (sources.factory.partitions_for: daily from start_date, today open for MQTT).
PARTITIONS = dg.DailyPartitionsDefinition(start_date=SPEC.start_date, timezone="UTC", end_offset=1)


class DrainConfig(dg.Config):
    max_messages: int = SETTINGS.drain_max_messages
    max_seconds: float = SETTINGS.drain_max_seconds
    idle_seconds: float = SETTINGS.drain_idle_seconds


@dg.asset(
    key=LANDING_KEY,
    group_name=SOURCE,
    op_tags={MQTT_CLIENT_TAG: SETTINGS.client_id},
    kinds={"mqtt"},
    description=(
        "Fallback for sites without the always-on collector: drains the broker's queued telemetry for the "
        f"persistent session {SETTINGS.client_id!r} into committed landing files, acknowledging after each "
        "commit. Bounded by max messages / seconds; stops early when the queue is empty. Runs never overlap "
        f"(tag {MQTT_CLIENT_TAG} for a tag concurrency limit of 1, plus a lease on the client id)."
    ),
)
def device_telemetry_landing(
    context: dg.AssetExecutionContext, config: DrainConfig, lake: LakeResource, mqtt: MqttBrokerResource
) -> dg.MaterializeResult:
    address = mqtt.address()
    try:
        result = drain(
            lake.get(), address, SETTINGS, SOURCE, config.max_messages, config.max_seconds, config.idle_seconds, COLUMNS
        )
    except LeaseHeld as exc:
        context.log.warning(f"skipped: {exc}")
        return dg.MaterializeResult(metadata={"skipped": str(exc), "broker": address.display})
    c = result.counters
    if c.sessions_lost:
        context.log.error(
            f"{address.display} had lost the session of {SETTINGS.client_id!r} ({c.sessions_lost} time(s)): messages "
            "published while it was gone were dropped by the broker; the device_seq_gaps check names them"
        )
    context.log.info(
        f"drained {c.received} message(s) from {address.display} in {result.seconds:.1f}s ({result.stopped_by})"
    )
    return dg.MaterializeResult(
        metadata={
            "broker": address.display,
            "client_id": SETTINGS.client_id,
            "received": c.received,
            "committed": c.committed,
            "quarantined": c.quarantined,
            "acked": c.acked,
            "batches": c.batches,
            "stopped_by": result.stopped_by,
            "sessions_lost": c.sessions_lost,
            "session_present": c.session_present if c.session_present is not None else "never connected",
            "committed_without_ack": c.committed_without_ack,
            "retained_cleared": c.retained_cleared,
            "seconds": round(result.seconds, 3),
            "broker_dropped_counter": -1 if result.broker_dropped is None else result.broker_dropped,
            "files": dg.MetadataValue.json(c.files[-20:]),
        }
    )


@dg.asset_check(
    asset=LANDING_KEY,
    name="broker_dropped_messages",
    blocking=False,
    description=(
        "Fails when the broker's $SYS dropped-publish counter rose since the previous check: an offline "
        "session's queue or an in-flight limit overflowed and telemetry was lost at the broker."
    ),
)
def broker_dropped_messages(lake: LakeResource, mqtt: MqttBrokerResource) -> dg.AssetCheckResult:
    the_lake = lake.get()
    address = mqtt.address()
    note = "fresh observation"
    try:
        broker_stats.record_observation(the_lake, broker_stats.observe_broker(address, f"{SETTINGS.client_id}-stats"))
    except ConnectionError as exc:
        note = f"broker unreachable, judged on recorded observations only: {exc}"
    outcome = broker_stats.evaluate_drop_check(the_lake, broker_stats.broker_key(address))
    return dg.AssetCheckResult(
        passed=outcome.passed,
        severity=dg.AssetCheckSeverity.ERROR,
        description=outcome.description,
        metadata={
            "broker": address.display,
            "dropped_since_last_check": outcome.dropped_since_last_check,
            "dropped_counter": -1 if outcome.latest is None else outcome.latest.dropped,
            "observations_considered": outcome.observations_considered,
            "note": note,
        },
    )


def _loss_report(
    the_lake: Lake, days: list[str], history_before: str | None, lookback_days: int
) -> sequence.SequenceReport:
    """Gaps in ``seq`` over the governed partitions ``days``, continuing from each device's last
    message in the ``lookback_days`` partitions before ``history_before``."""
    columns = ["device_id", "seq", "ts", *([LOSS_POLICY.boot_field] if LOSS_POLICY.boot_field else [])]
    current = the_lake.read_partitions("governed", SOURCE, days, columns)
    previous = None
    if history_before is not None and lookback_days and not current.empty:
        earlier = [p for p in the_lake.partitions("governed", SOURCE) if p < history_before][-lookback_days:]
        previous = sequence.last_message_per_device(
            the_lake.read_partitions("governed", SOURCE, earlier, columns), LOSS_POLICY.boot_field
        )
    quarantined = the_lake.read_partitions(
        "quarantine", SOURCE, days, ["device_id", "seq"]
    )  # not lost: set aside with a reason
    return sequence.find_gaps(
        current,
        previous,
        LOSS_POLICY.boot_field,
        LOSS_POLICY.restart_max_seq,
        LOSS_POLICY.first_seq_after_restart,
        quarantined,
    )


# A partitioned check (preview in dagster 1.13.27, pinned and tested): each evaluation records its day.
warnings.filterwarnings(
    "ignore", message="Specifying a partitions_def on an AssetCheckSpec", category=dg.PreviewWarning
)


@dg.asset_check(
    asset=GOVERNED_KEY,
    name="device_seq_gaps",
    partitions_def=PARTITIONS,
    blocking=False,
    description=(
        "End-to-end loss: holes in each device's `seq` in this governed partition (continuing from the device's "
        "last earlier message), with device restarts recognised by boot id or seq reset; quarantined messages are "
        "accounted for, not missing. Fails per "
        "`connector.loss_check` (default: any missing message) — whoever lost it: broker, network or collector."
    ),
)
def device_seq_gaps(context: dg.AssetCheckExecutionContext, lake: LakeResource) -> dg.AssetCheckResult:
    the_lake = lake.get()
    partition = context.partition_key
    report = _loss_report(the_lake, [partition], partition, LOSS_POLICY.lookback_days)
    verdict = sequence.judge(report, LOSS_POLICY.max_missing_messages, LOSS_POLICY.max_missing_fraction)
    lossy = report.devices_with_loss()
    lost_sessions = [e for e in session_events(the_lake, SETTINGS.client_id) if e["at"][:10] <= partition]
    return dg.AssetCheckResult(
        passed=verdict.passed,
        severity=dg.AssetCheckSeverity.ERROR if LOSS_POLICY.severity == "error" else dg.AssetCheckSeverity.WARN,
        description=verdict.description,
        metadata={
            "missing_messages": verdict.missing,
            "expected_messages": verdict.expected,
            "devices": len(report.devices),
            "devices_with_loss": len(lossy),
            "missing_ranges": dg.MetadataValue.json(
                dict(zip(lossy["device_id"].head(100), lossy["missing_ranges"].head(100), strict=True))
            ),
            "broker_session_lost_events": dg.MetadataValue.json([e["at"] for e in lost_sessions[-20:]]),
            "policy": dg.MetadataValue.json(LOSS_POLICY.model_dump()),
        },
    )


class DeviceStatusConfig(dg.Config):
    offline_after_minutes: float = 15.0
    rate_window_minutes: float = 60.0
    lookback_days: int = 2


def _load_registry(lake: Lake) -> tuple[pd.DataFrame, str]:
    for parts in REGISTRY_CANDIDATES:
        path = lake.path(*parts)
        if path.exists():
            return device_logic.parse_registry(path.read_text(encoding="utf-8"), str(path)), str(path)
    return pd.DataFrame(columns=list(device_logic.REGISTRY_FIELDS)), "none"


@dg.asset(
    key=DEVICES_KEY,
    group_name="iot",
    deps=[CLEAN_KEY],
    io_manager_key="lake_io",
    kinds={"pandas"},
    description=(
        "Every device: declared in <lake>/landing/devices/registry.yaml (or .csv) and/or discovered from clean "
        "telemetry, with first/last seen. `registered` is False for devices sending telemetry without being declared."
    ),
)
def devices(context: dg.AssetExecutionContext, lake: LakeResource) -> pd.DataFrame:
    the_lake = lake.get()
    registry, origin = _load_registry(the_lake)
    telemetry = the_lake.read_partitions("clean", SOURCE, None, ["device_id", "ts", "firmware"])
    table = device_logic.build_devices(registry, device_logic.summarize_sightings(telemetry))
    unknown = table.loc[~table["registered"], "device_id"].tolist()
    if unknown:
        context.log.warning(f"{len(unknown)} device(s) send telemetry but are not in the registry: {unknown[:20]}")
    context.add_output_metadata(
        {
            "registry_file": origin,
            "devices": len(table),
            "unregistered": len(unknown),
            "unregistered_sample": dg.MetadataValue.json(unknown[:20]),
        }
    )
    return table


@dg.asset_check(
    asset=DEVICES_KEY,
    name="all_devices_registered",
    description=("Warns about devices that send telemetry but are missing from the registry (their data is kept)."),
)
def all_devices_registered(devices: pd.DataFrame) -> dg.AssetCheckResult:
    unknown = devices.loc[~devices["registered"].astype(bool), "device_id"].tolist()
    return dg.AssetCheckResult(
        passed=not unknown,
        severity=dg.AssetCheckSeverity.WARN,
        metadata={"unregistered": len(unknown), "sample": dg.MetadataValue.json(unknown[:20])},
    )


@dg.asset(
    key=STATUS_KEY,
    group_name="iot",
    io_manager_key="lake_io",
    kinds={"pandas"},
    description=(
        "Per device: online/offline by last-seen threshold, message rate, latest battery, quarantined messages, "
        "missing readings."
    ),
)
def device_status(
    context: dg.AssetExecutionContext, config: DeviceStatusConfig, lake: LakeResource, devices: pd.DataFrame
) -> pd.DataFrame:
    the_lake = lake.get()
    today = datetime.now(UTC).date()
    days = [(today - timedelta(days=n)).isoformat() for n in range(config.lookback_days, -1, -1)]
    telemetry = the_lake.read_partitions("clean", SOURCE, days, ["device_id", "ts", *device_logic.READINGS])
    quarantine = the_lake.read_partitions("quarantine", SOURCE, days, ["device_id"])
    loss = _loss_report(the_lake, days, days[0], LOSS_POLICY.lookback_days)
    status = device_logic.device_status(
        devices,
        telemetry,
        device_logic.quarantined_per_device(quarantine),
        datetime.now(UTC),
        timedelta(minutes=config.offline_after_minutes),
        timedelta(minutes=config.rate_window_minutes),
        loss.devices,
    )
    counts = status["status"].value_counts().to_dict()
    context.add_output_metadata(
        {
            **{f"devices_{name}": int(n) for name, n in counts.items()},
            "missing_messages": loss.missing,
            "devices_with_loss": len(loss.devices_with_loss()),
        }
    )
    return status


iot_job = dg.define_asset_job(
    "iot_drain_and_devices",
    selection=dg.AssetSelection.assets(LANDING_KEY, DEVICES_KEY, STATUS_KEY),
    tags={MQTT_CLIENT_TAG: SETTINGS.client_id},
    description="Drain queued telemetry (fallback), check broker drops, refresh the device registry and status.",
)

defs = dg.Definitions(
    assets=[device_telemetry_landing, devices, device_status],
    asset_checks=[broker_dropped_messages, device_seq_gaps, all_devices_registered],
    jobs=[iot_job],
)
