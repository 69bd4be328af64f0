"""The bad-input corpus's harness: one source declared in YAML, files landed as a real export would drop
them, the source's raw → clean → governed assets materialized through Dagster, and everything a user
could look at collected — the run's failure, every check evaluation, governed and every quarantine file.

Each case in ``test_bad_input_corpus`` states its exact outcome: the certified value, the quarantine
reason, or the named error. The base source below is what a finance export looks like; a case changes
only what it is about.
"""

from __future__ import annotations

import copy
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import dagster as dg
import pandas as pd

from lepton_pipelines.governance import GreatExpectationsResource
from lepton_pipelines.lake.io_manager import LakeIOManager
from lepton_pipelines.lake.quarantine import QUARANTINE_COLUMNS
from lepton_pipelines.lake.resource import LakeResource
from lepton_pipelines.lake.store import Lake, read_parquet_dir
from lepton_pipelines.sources.factory import build_source_assets
from lepton_pipelines.sources.registry import load_source_file

PARTITION = "2026-11-25"
HEADER = ("id", "amount", "qty", "ts", "day", "ok", "currency")
BASE: dict[str, Any] = {
    "name": "corpus",
    "description": "A finance export as the corpus's cases land it",
    "owner": "team:quality",
    "start_date": "2026-01-01",
    "connector": {"type": "file", "format": "csv"},
    "schema": [
        {"name": "id", "type": "string", "nullable": False, "description": "Record id"},
        {"name": "amount", "type": "float", "nullable": False, "description": "Amount"},
        {"name": "qty", "type": "integer", "description": "Quantity"},
        {"name": "ts", "type": "timestamp", "nullable": False, "description": "Event time"},
        {"name": "day", "type": "date", "description": "Business day"},
        {"name": "ok", "type": "boolean", "description": "Approved"},
        {"name": "currency", "type": "string", "nullable": False, "description": "ISO currency"},
    ],
    "primary_key": ["id"],
    "event_time": "ts",
    "partitioning": "daily",
    "expectations": [
        {
            "expectation": "expect_column_values_to_be_in_set",
            "kwargs": {"column": "currency", "value_set": ["USD", "EUR"]},
        },
    ],
    "governance": {"schema_drift": "error"},
}
GOOD = {
    "id": "A1",
    "amount": "10.5",
    "qty": "1",
    "ts": f"{PARTITION}T10:00:00Z",
    "day": PARTITION,
    "ok": "true",
    "currency": "USD",
}


def row(**values: str) -> dict[str, str]:
    """A landed record: the good one with ``values`` changed (id defaults to B1, the case's row)."""
    return {**GOOD, "id": "B1", **values}


def good_rows(n: int = 3) -> list[dict[str, str]]:
    return [{**GOOD, "id": f"A{i}"} for i in range(1, n + 1)]


def csv_bytes(
    rows: list[dict[str, str]], header: tuple[str, ...] = HEADER, sep: str = ",", newline: str = "\n"
) -> bytes:
    """A CSV export as a real exporter writes it: fields holding the delimiter or a quote are quoted."""

    def field(value: str) -> str:
        return '"' + value.replace('"', '""') + '"' if sep in value or '"' in value or "\n" in value else value

    lines = [sep.join(header)] + [sep.join(field(r.get(c, "")) for c in header) for r in rows]
    return (newline.join(lines) + newline).encode()


def jsonl_bytes(records: list[dict[str, Any]]) -> bytes:
    return ("\n".join(json.dumps(r) for r in records) + "\n").encode()


def merged(base: dict[str, Any], change: dict[str, Any]) -> dict[str, Any]:
    """``change`` deep-merged into a copy of ``base``; ``schema`` entries change by column name."""
    out = copy.deepcopy(base)
    for key, value in change.items():
        if key == "schema" and isinstance(value, dict):
            columns = {c["name"]: c for c in out["schema"]}
            for name, column in value.items():
                if column is None:
                    out["schema"] = [c for c in out["schema"] if c["name"] != name]
                elif name in columns:
                    columns[name].update(column)
                else:
                    out["schema"].append({"name": name, **column})
        elif isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = merged(out[key], value)
        else:
            out[key] = value
    return out


@dataclass
class Outcome:
    success: bool
    failure: str  # every step failure's message and description, joined
    checks: dict[str, dg.AssetCheckEvaluation] = field(default_factory=dict)  # "<zone>.<check>" → evaluation
    governed: pd.DataFrame | None = None
    quarantine: pd.DataFrame = field(default_factory=lambda: pd.DataFrame(columns=list(QUARANTINE_COLUMNS)))

    def governed_row(self, record_id: str) -> dict[str, Any]:
        assert self.governed is not None, f"nothing governed; failure: {self.failure}"
        rows = self.governed[self.governed["id"] == record_id]
        assert len(rows) == 1, (
            f"{record_id} is not governed once: {self.governed['id'].tolist()}; quarantine: "
            f"{self.quarantine[['_reason']].values.tolist()}"
        )
        return rows.iloc[0].to_dict()

    def quarantined(self, record_id: str | None = None) -> pd.DataFrame:
        if record_id is None:
            return self.quarantine
        return self.quarantine[self.quarantine["id"] == record_id]

    def passed(self, check: str) -> bool:
        assert check in self.checks, (
            f"{check} was not evaluated; evaluated: {sorted(self.checks)}; failure: {self.failure}"
        )
        return self.checks[check].passed


def run_source(
    tmp_path: Path,
    spec: dict[str, Any],
    files: dict[str, bytes],
    gx: GreatExpectationsResource,
    partition: str | None = PARTITION,
) -> Outcome:
    """Declare ``spec``, land ``files`` under its partition and materialize raw → clean → governed."""
    folder = tmp_path / "registry"
    folder.mkdir(exist_ok=True)
    path = folder / f"{spec['name']}.yaml"
    path.write_text(json.dumps(spec))  # JSON is YAML
    source, problems = load_source_file(path)
    assert source is not None, problems
    lake = Lake(str(tmp_path / "lake"))
    landing = (
        lake.path("landing", spec["name"], f"date={partition}") if partition else lake.path("landing", spec["name"])
    )
    landing.mkdir(parents=True, exist_ok=True)
    for name, data in files.items():
        with landing.joinpath(name).open("wb") as handle:
            handle.write(data)
    result = dg.materialize(
        build_source_assets(source),
        partition_key=partition,
        raise_on_error=False,
        instance=dg.DagsterInstance.ephemeral(),
        resources={
            "lake": LakeResource(url=lake.url),
            "lake_io": LakeIOManager(lake=LakeResource(url=lake.url)),
            "gx": gx,
        },
    )
    failure = "\n".join(
        f"{e.step_failure_data.error.message if e.step_failure_data.error else ''} "
        f"{e.step_failure_data.user_failure_data.description if e.step_failure_data.user_failure_data else ''}"
        for e in result.all_events
        if e.event_type == dg.DagsterEventType.STEP_FAILURE
    )
    checks = {f"{e.asset_key.path[-1]}.{e.check_name}": e for e in result.get_asset_check_evaluations()}
    governed_dir = lake.table_dir("governed", spec["name"], partition)
    governed = read_parquet_dir(governed_dir) if governed_dir.exists() and any(governed_dir.glob("*.parquet")) else None
    quarantine_dir = lake.table_dir("quarantine", spec["name"], partition)
    files_q = sorted(quarantine_dir.glob("*.parquet")) if quarantine_dir.exists() else []
    quarantine = (
        pd.concat([read_parquet_dir(f) for f in files_q], ignore_index=True)
        if files_q
        else pd.DataFrame(columns=list(QUARANTINE_COLUMNS))
    )
    return Outcome(success=result.success, failure=failure, checks=checks, governed=governed, quarantine=quarantine)
