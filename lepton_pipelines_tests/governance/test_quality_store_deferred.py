"""``deferred_results``: a stage's checks recorded in several calls rewrite the partition's results file
once, and the file is the one the calls would have left one by one."""

from __future__ import annotations

from datetime import UTC, datetime

import pandas as pd
import pytest

from lepton_pipelines.governance import quality_store as store
from lepton_pipelines.lake.store import Lake

DAY = "2026-03-01"
AT = datetime(2026, 3, 2, tzinfo=UTC)


def _row(stage: str, check: str, passed: bool, count: int | None = None) -> dict:
    row = store.result_row(
        "orders",
        DAY,
        stage,
        check_name=check,
        expectation=check,
        severity="WARN",
        blocking=False,
        passed=passed,
        observed={"n": count},
        unexpected_count=count,
        description=f"{check} {passed}",
    )
    row["validated_at"] = AT  # the only field that differs between two recordings of the same checks
    return row


def _record_a_partition(lake: Lake) -> None:
    """What a raw, a clean and a governed step record for one partition (clean replaces an earlier run's rows)."""
    store.write_results(lake, "orders", DAY, "raw", [_row("raw", "parse_errors", False, 2)])
    store.write_results(lake, "orders", DAY, "clean", [_row("clean", "stale", True)])
    store.write_results(lake, "orders", DAY, "clean", [_row("clean", "in_set", False, 1), _row("clean", "pk", True, 0)])
    store.append_results(lake, "orders", DAY, "clean", [_row("clean", "required_values", True, 0)])
    store.write_results(lake, "orders", DAY, "governed", [_row("governed", "reconciliation", True)])
    store.append_results(lake, "orders", DAY, "governed", [_row("governed", "row_retention", True)])


def test_deferred_results_write_the_file_the_calls_would_have_written(tmp_path):
    direct, deferred = Lake(str(tmp_path / "direct")), Lake(str(tmp_path / "deferred"))
    _record_a_partition(direct)
    results_file = store.quality_dir(deferred, "orders", DAY) / store.RESULTS_FILE
    with store.deferred_results():
        _record_a_partition(deferred)
        assert not results_file.exists()  # nothing written yet ...
        seen = store.read_results(deferred, "orders", DAY)  # ... but reads see what was recorded
        assert seen["check_name"].tolist() == [
            "parse_errors",
            "in_set",
            "pk",
            "required_values",
            "reconciliation",
            "row_retention",
        ]
    assert results_file.exists()
    written, expected = store.read_results(deferred, "orders", DAY), store.read_results(direct, "orders", DAY)
    pd.testing.assert_frame_equal(written, expected)
    assert written.dtypes.to_dict() == expected.dtypes.to_dict()


def test_deferred_results_are_written_when_the_block_fails(tmp_path):
    """A step that fails after recording its checks (a refused certification) leaves them, as without deferral."""
    lake = Lake(str(tmp_path / "lake"))
    with pytest.raises(RuntimeError):
        with store.deferred_results():
            store.write_results(lake, "orders", DAY, "governed", [_row("governed", "row_retention", False)])
            raise RuntimeError("certification refused")
    assert store.read_results(lake, "orders", DAY)["passed"].tolist() == [False]
