"""Per-message anomaly flags for ``device_health``, from the ``device_anomaly`` champion. No Dagster.

The mart's anomaly rate is the share of a device's messages that the champion model flags — the same
model the model service runs — rather than a second, hand-written definition of "anomalous".
scikit-learn loads only here, when a device_health partition is computed.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import pandas as pd

from lepton_pipelines.analytics.engine import parquet_scan, table_files
from lepton_pipelines.lake.store import Lake
from lepton_pipelines.models.registry import MODELS_ROOT, ModelRegistry
from lepton_pipelines.models.scoring import ScoringError, champion_version, feature_frame, load_estimator

if TYPE_CHECKING:  # duckdb is imported by the step that queries (engine.connect), not at definitions load
    import duckdb

FLAGS_COLUMNS = ["device_id", "seq", "is_anomaly"]


def device_anomaly_flags(
    con: duckdb.DuckDBPyConnection, lake: Lake, partition: str, model: str
) -> tuple[pd.DataFrame | None, str]:
    """``(flags, note)``: flags per (device_id, seq) of the day, or ``None`` with the reason when the
    model has no champion yet (the mart then shows a NULL anomaly rate, and says why in metadata)."""
    registry = ModelRegistry(lake.path(MODELS_ROOT), model)
    try:
        version, _alias = champion_version(registry)
        estimator, card = load_estimator(registry, version)
    except ScoringError as error:
        return None, str(error)
    files = table_files(lake, "governed", "device_telemetry").files([partition])
    telemetry = con.execute(f"SELECT * FROM {parquet_scan(files)}").df()
    if telemetry.empty:
        return pd.DataFrame(
            {c: pd.Series(dtype=t) for c, t in zip(FLAGS_COLUMNS, ("object", "int64", "bool"), strict=True)}
        ), f"{model} {version}"
    flagged = estimator.predict(feature_frame(card, telemetry)) == -1
    return pd.DataFrame(
        {"device_id": telemetry["device_id"], "seq": telemetry["seq"], "is_anomaly": flagged}
    ), f"{model} {version}"
