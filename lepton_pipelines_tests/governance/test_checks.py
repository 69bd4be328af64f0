"""Checks, quarantine, blocking and reconciliation on real GX validations, one kind of bad data each."""

from __future__ import annotations

import json

import dagster as dg
import numpy as np
import pandas as pd
import pytest

from lepton_pipelines.governance import certify, clean_check_specs, evaluate_clean, evaluate_raw, raw_check_specs
from lepton_pipelines.governance.checks import RawFindings
from lepton_pipelines.governance.quality_store import quality_dir, read_results
from lepton_pipelines.lake.quarantine import quarantine_frame, write_quarantine
from lepton_pipelines.lake.store import FILE_IDENTITY_ATTR, read_parquet_dir

from .conftest import cleaning_for, good_orders, orders_source

pytestmark = pytest.mark.timeout(120)
PK = "2026-03-01"


def by_name(results: list[dg.AssetCheckResult]) -> dict[str, dg.AssetCheckResult]:
    return {r.check_name: r for r in results}


def meta(result: dg.AssetCheckResult, key: str):
    value = result.metadata[key]
    return getattr(value, "value", value)


def findings(landed: dict[str, str], rows: int = 5, **overrides) -> RawFindings:
    values = dict(
        landed_schema=landed,
        parse_failures={},
        non_null={},
        parse_quarantined=0,
        parse_nulled={},
        empty_inputs=[],
        inputs=1,
        rows=rows,
    )
    values.update(overrides)
    return RawFindings(**values)


def test_clean_sample_passes_every_check_and_keeps_every_row(tmp_path, lake, make_ctx):
    source = orders_source(tmp_path)
    ctx = make_ctx(source)
    frame = good_orders()
    raw_results = evaluate_raw(
        ctx,
        findings(
            {"order_id": "int64", "status": "str", "amount": "float64", "created_at": "str", "_source_file": "str"}
        ),
    )
    assert [r.passed for r in raw_results] == [True, True, True]
    results = evaluate_clean(ctx, frame, cleaning_for(frame))
    assert {r.check_name for r in results} | {"required_values", "late_arrival"} == {
        s.name for s in clean_check_specs(source)
    }  # contract checks: clean step
    assert all(r.passed for r in results), [(r.check_name, r.description) for r in results if not r.passed]
    outcome = certify(ctx, frame, cleaning_for(frame))
    assert outcome.quarantined_rows == 0
    assert list(outcome.frame.columns) == ["order_id", "status", "amount"]
    assert len(outcome.frame) == len(frame)
    assert [r.passed for r in outcome.check_results] == [True, True]
    history = read_results(lake, "orders", PK)
    assert set(history["stage"]) == {"raw", "clean", "governed"} and history["passed"].all()
    gx_json = json.loads((quality_dir(lake, "orders", PK) / "gx_result.json").read_text())
    assert gx_json["statistics"]["evaluated_expectations"] == 5
    assert not (lake.table_dir("quarantine", "orders", PK) / "governed.parquet").exists()


def test_nulls_out_of_range_and_wrong_set_members_are_quarantined_with_reasons(tmp_path, lake, make_ctx):
    source = orders_source(tmp_path)
    ctx = make_ctx(source)
    frame = good_orders(9)
    frame.loc[1, "amount"] = None  # null
    frame.loc[4, "amount"] = 5000.0  # out of range
    frame.loc[4, "status"] = "lost"  # same row: wrong set member too
    frame.loc[7, "status"] = "refunded"  # wrong set member
    cleaning = cleaning_for(frame, duplicates=2, dropped=1)
    removed = pd.DataFrame({"order_id": [1, 1, 2]})
    write_quarantine(
        ctx.lake, "orders", PK, "clean", quarantine_frame("clean", removed, ["order_id"], reason="dropped in cleaning")
    )
    results = by_name(evaluate_clean(ctx, frame, cleaning))

    nulls, between, in_set = (
        results["amount__column_values_to_not_be_null"],
        results["amount__column_values_to_be_between"],
        results["status__column_values_to_be_in_set"],
    )
    for check, count in ((nulls, 1), (between, 1), (in_set, 2)):
        assert not check.passed and check.severity == dg.AssetCheckSeverity.WARN
        assert meta(check, "unexpected_count") == count and meta(check, "quarantined_rows") == count
        assert meta(check, "unexpected_percent") == pytest.approx(100 * count / 9, rel=1e-3) or check is between
    assert sorted(meta(in_set, "unexpected_sample")) == ["lost", "refunded"]
    assert meta(between, "unexpected_sample") == [5000.0]
    assert meta(between, "gx_expectation")["type"] == "expect_column_values_to_be_between"
    assert results["primary_key_unique"].passed and results["table_row_count_to_be_between"].passed

    outcome = certify(ctx, frame, cleaning)
    assert outcome.quarantined_rows == 3
    assert sorted(outcome.frame["order_id"]) == [1, 3, 4, 6, 7, 9]
    quarantine = read_parquet_dir(lake.table_dir("quarantine", "orders", PK) / "governed.parquet")
    row5 = quarantine.set_index("order_id").loc["5"]
    assert row5["_check"] == "amount__column_values_to_be_between, status__column_values_to_be_in_set"
    assert row5["_stage"] == "governed" and row5["amount"] == "5000.0" and row5["status"] == "lost"
    assert "status__column_values_to_be_in_set" in row5["_reason"] and row5["_source_line"] == 6
    reconciliation = outcome.check_results[0]
    assert reconciliation.passed, reconciliation.description
    assert meta(reconciliation, "raw_rows") == 12 == 6 + 2 + 1 + 3


def test_block_policy_makes_row_failures_blocking_and_certify_refuses(tmp_path, make_ctx):
    source = orders_source(tmp_path, row_failures="block")
    specs = {s.name: s for s in clean_check_specs(source)}
    assert specs["amount__column_values_to_be_between"].blocking
    assert not specs["amount__column_mean_to_be_between"].blocking  # severity warn never blocks
    ctx = make_ctx(source)
    frame = good_orders()
    frame.loc[2, "amount"] = -1.0
    results = by_name(evaluate_clean(ctx, frame, cleaning_for(frame)))
    failed = results["amount__column_values_to_be_between"]
    assert (
        not failed.passed and failed.severity == dg.AssetCheckSeverity.ERROR and meta(failed, "unexpected_count") == 1
    )
    with pytest.raises(dg.Failure, match="amount__column_values_to_be_between"):
        certify(ctx, frame, cleaning_for(frame))


def test_duplicate_keys_fail_primary_key_check_and_block(tmp_path, make_ctx):
    source = orders_source(tmp_path)
    ctx = make_ctx(source)
    frame = pd.concat([good_orders(), good_orders().iloc[[0, 2]]], ignore_index=True)
    pk = by_name(evaluate_clean(ctx, frame, cleaning_for(frame)))["primary_key_unique"]
    assert not pk.passed and pk.severity == dg.AssetCheckSeverity.ERROR
    assert meta(pk, "unexpected_count") == 2
    assert meta(pk, "unexpected_sample") == [{"order_id": "1"}, {"order_id": "3"}]
    with pytest.raises(dg.Failure, match="primary_key_unique"):
        certify(ctx, frame, cleaning_for(frame))


def test_table_level_failures_block_even_under_quarantine_policy(tmp_path, make_ctx):
    source = orders_source(tmp_path)
    assert {s.name: s for s in clean_check_specs(source)}["table_row_count_to_be_between"].blocking
    ctx = make_ctx(source)
    frame = good_orders(2)
    frame["amount"] = [900.0, 800.0]
    results = by_name(evaluate_clean(ctx, frame, cleaning_for(frame)))
    rows = results["table_row_count_to_be_between"]
    assert not rows.passed and rows.severity == dg.AssetCheckSeverity.ERROR and meta(rows, "observed_value") == 2
    mean = results["amount__column_mean_to_be_between"]
    assert not mean.passed and mean.severity == dg.AssetCheckSeverity.WARN and meta(mean, "observed_value") == 850.0
    with pytest.raises(dg.Failure, match="table_row_count_to_be_between"):
        certify(ctx, frame, cleaning_for(frame))


def test_certify_revalidates_when_clean_changed_since_validation(tmp_path, make_ctx):
    ctx = make_ctx(orders_source(tmp_path))
    validated = good_orders()
    evaluate_clean(ctx, validated, cleaning_for(validated))
    changed = validated.copy()
    changed.loc[0, "status"] = "bogus"
    outcome = certify(ctx, changed, cleaning_for(changed))
    assert outcome.quarantined_rows == 1 and 1 not in set(outcome.frame["order_id"])


def test_reconciliation_fails_when_rows_are_unaccounted_for(tmp_path, make_ctx):
    ctx = make_ctx(orders_source(tmp_path))
    frame = good_orders()
    cleaning = cleaning_for(frame) | {"landed": len(frame) + 4}
    evaluate_clean(ctx, frame, cleaning)
    outcome = certify(ctx, frame, cleaning)
    check = outcome.check_results[0]
    assert not check.passed and check.severity == dg.AssetCheckSeverity.ERROR
    assert meta(check, "unaccounted_rows") == 4 and "4 landed record(s) unaccounted for" in check.description
    assert outcome.refused and "unaccounted" in outcome.refused


@pytest.mark.parametrize(
    "policy, severity, blocking",
    [("warn", dg.AssetCheckSeverity.WARN, False), ("error", dg.AssetCheckSeverity.ERROR, True)],
)
def test_schema_drift_reports_added_removed_renamed_and_retyped_columns(tmp_path, make_ctx, policy, severity, blocking):
    source = orders_source(tmp_path, schema_drift=policy)
    assert raw_check_specs(source)[0].blocking is blocking
    landed = {
        "Order_ID": "string",
        "amount": "string",
        "coupon": "string",
        "created_at": "string",
        "_source_file": "string",
    }
    result = evaluate_raw(make_ctx(source), findings(landed, parse_failures={"amount": 8}, non_null={"amount": 10}))[0]
    assert not result.passed and result.severity == severity
    assert meta(result, "added_columns") == ["coupon"] and meta(result, "removed_columns") == ["status"]
    assert meta(result, "renamed_columns") == {"order_id": "Order_ID"}
    assert meta(result, "retyped_columns") == {"amount": {"declared": "float", "failed": 8, "of": 10}}
    assert [c.name for c in meta(result, "landed_schema").columns] == list(landed)


def test_text_formats_landing_strings_are_not_drift(tmp_path, make_ctx):
    result = evaluate_raw(
        make_ctx(orders_source(tmp_path)),
        findings({"order_id": "string", "status": "string", "amount": "string", "created_at": "string"}),
    )[0]
    assert result.passed, result.description


def test_a_few_unparsable_values_are_not_drift_but_fail_the_parse_check(tmp_path, make_ctx):
    landed = {"order_id": "string", "status": "string", "amount": "string", "created_at": "string"}
    results = by_name(
        evaluate_raw(
            make_ctx(orders_source(tmp_path)),
            findings(landed, parse_failures={"amount": 1}, non_null={"amount": 10}, parse_quarantined=1),
        )
    )
    assert results["schema_drift"].passed
    parse = results["parse_errors"]
    assert not parse.passed and parse.severity == dg.AssetCheckSeverity.WARN and meta(parse, "quarantined_rows") == 1


def test_empty_inputs_are_named_not_drift(tmp_path, make_ctx):
    results = by_name(
        evaluate_raw(
            make_ctx(orders_source(tmp_path)),
            findings({}, rows=0, empty_inputs=["landing/orders/date=2026-03-01/empty.csv"], inputs=1),
        )
    )
    assert results["schema_drift"].passed, results["schema_drift"].description
    empty = results["empty_input"]
    assert not empty.passed and empty.severity == dg.AssetCheckSeverity.WARN and "empty.csv" in empty.description


def test_large_quarantine_positions_match_rows(tmp_path, make_ctx):
    ctx = make_ctx(orders_source(tmp_path))
    frame = good_orders(3000)
    frame["amount"] = 10.0
    bad = np.arange(5, 3000, 7)
    frame.loc[bad, "amount"] = 2000.0
    outcome = certify(ctx, frame, cleaning_for(frame))
    assert outcome.quarantined_rows == len(bad)
    assert (outcome.frame["amount"] <= 1000).all() and len(outcome.frame) == 3000 - len(bad)


def test_declared_underscore_columns_are_compared_like_any_other():
    """The MQTT collector lands `_topic`/`_received_at` and the source declares them: present is no drift,
    absent is a removed column — while undeclared lineage columns (`_source_file`) are never drift."""
    from lepton_pipelines.governance.drift import compare_schemas

    declared = {"device_id": "string", "_topic": "string"}
    present = compare_schemas(declared, ["device_id", "_topic", "_source_file"])
    assert (present.added, present.removed) == ([], [])
    absent = compare_schemas(declared, ["device_id", "_source_file"])
    assert absent.removed == ["_topic"]


def test_validation_leaves_the_callers_frame_whole(tmp_path, make_ctx, gx_resource):
    """The validated copy is emptied after GX runs (GX's batch objects keep it in reference cycles);
    the caller's frame must keep every column and value."""
    from lepton_pipelines.governance.checks import check_plans

    source = orders_source(tmp_path)
    frame = good_orders()
    before = frame.copy()
    suite = gx_resource.validate(source.name, frame, check_plans(source))
    assert suite.outcomes and all(o.passed for o in suite.outcomes)
    pd.testing.assert_frame_equal(frame, before)
    assert not certify(make_ctx(source), frame, cleaning_for(frame)).frame.empty


def test_gx_batch_fingerprint_is_skipped_only_while_our_batches_are_built(tmp_path, gx_resource):
    """GX has no setting for its batch fingerprint, only a module global: ours is applied around building
    a batch and GX's own value is back afterwards, for every other GX use in the process."""
    from great_expectations.execution_engine import pandas_execution_engine

    from lepton_pipelines.governance.checks import check_plans
    from lepton_pipelines.governance.resource import GreatExpectationsResource
    from lepton_pipelines.governance.validation import batch_fingerprint_limit

    gx_default = pandas_execution_engine.HASH_THRESHOLD
    context = gx_resource.get_context()
    whole = (
        context.data_sources.add_or_update_pandas(name="fingerprint")
        .add_dataframe_asset(name="t")
        .add_batch_definition_whole_dataframe("whole")
    )
    try:
        with batch_fingerprint_limit(0):
            assert (
                "pandas_data_fingerprint"
                not in whole.get_batch(batch_parameters={"dataframe": good_orders()}).batch_markers
            )
        assert pandas_execution_engine.HASH_THRESHOLD == gx_default
        assert "pandas_data_fingerprint" in whole.get_batch(batch_parameters={"dataframe": good_orders()}).batch_markers
    finally:
        context.data_sources.delete("fingerprint")
    source = orders_source(tmp_path)
    assert gx_resource.batch_fingerprint_max_bytes == 0
    suite = gx_resource.validate(source.name, good_orders(), check_plans(source))
    assert (
        all(o.passed for o in suite.outcomes)
        and "pandas_data_fingerprint" not in suite.gx_result["meta"]["batch_markers"]
    )
    assert pandas_execution_engine.HASH_THRESHOLD == gx_default
    hashed = GreatExpectationsResource(batch_fingerprint_max_bytes=10**9).validate(
        source.name, good_orders(), check_plans(source)
    )
    assert "pandas_data_fingerprint" in hashed.gx_result["meta"]["batch_markers"]


# -- row failures filed under the clean partition file's identity ---------------------------------------
def _clean_validated_at(ctx) -> pd.Series:
    results = read_results(ctx.lake, ctx.source.name, ctx.partition_key)
    return results.loc[results["stage"] == "clean", "validated_at"].reset_index(drop=True)


def _with_bad_status(frame: pd.DataFrame, position: int) -> pd.DataFrame:
    changed = frame.copy()
    changed.loc[position, "status"] = "bogus"
    return changed


def test_certify_applies_failures_filed_under_the_clean_file_it_read_without_revalidating(tmp_path, make_ctx):
    ctx = make_ctx(orders_source(tmp_path))
    clean = _with_bad_status(good_orders(), 0)
    written = ctx.lake.write_table("clean", ctx.source.name, PK, clean)
    evaluate_clean(ctx, clean, cleaning_for(clean), clean_file=written.identity)
    before = _clean_validated_at(ctx)
    read = read_parquet_dir(ctx.lake.table_dir("clean", ctx.source.name, PK))
    outcome = certify(ctx, read, cleaning_for(read), clean_file=read.attrs[FILE_IDENTITY_ATTR])
    assert outcome.quarantined_rows == 1 and clean.loc[0, "order_id"] not in set(outcome.frame["order_id"])
    assert _clean_validated_at(ctx).equals(before)  # the stored verdict was used, not a new validation


def test_certify_revalidates_when_the_clean_file_was_rewritten_since_validation(tmp_path, make_ctx):
    ctx = make_ctx(orders_source(tmp_path))
    first = _with_bad_status(good_orders(), 0)
    written = ctx.lake.write_table("clean", ctx.source.name, PK, first)
    evaluate_clean(ctx, first, cleaning_for(first), clean_file=written.identity)
    second = _with_bad_status(good_orders(), 2)  # same size on disk is possible: identity still differs
    rewritten = ctx.lake.write_table("clean", ctx.source.name, PK, second)
    assert rewritten.identity != written.identity
    outcome = certify(ctx, second, cleaning_for(second), clean_file=rewritten.identity)
    kept = set(outcome.frame["order_id"])
    assert second.loc[2, "order_id"] not in kept and second.loc[0, "order_id"] in kept


def test_certify_without_a_file_identity_never_uses_failures_filed_under_a_file(tmp_path, make_ctx):
    ctx = make_ctx(orders_source(tmp_path))
    first = _with_bad_status(good_orders(), 0)
    written = ctx.lake.write_table("clean", ctx.source.name, PK, first)
    evaluate_clean(ctx, first, cleaning_for(first), clean_file=written.identity)
    other = _with_bad_status(good_orders(), 1)
    outcome = certify(ctx, other, cleaning_for(other))
    kept = set(outcome.frame["order_id"])
    assert other.loc[1, "order_id"] not in kept and other.loc[0, "order_id"] in kept


def test_certification_decisions_are_plain_functions_of_the_counts():
    """certify.py decides from numbers alone (no Dagster, no lake): the row positions to quarantine, the
    reconciliation and the row-loss guard."""
    from lepton_pipelines.governance.certify import clean_ledger, quarantine_positions, reconcile, retention

    assert quarantine_positions({"a": [4, 1], "b": [1, 7]}).tolist() == [1, 4, 7]
    assert quarantine_positions({}).tolist() == []
    ledger = clean_ledger(
        raw_rows=10,
        raw_quarantined=2,
        required_removed=1,
        late_removed=0,
        cleaning={"duplicates_removed": 1, "rows_dropped": 0, "output_rows": 9},
    )
    assert ledger["landed"] == 12 and ledger["clean_rows"] == 8 and ledger["clean_quarantined"] == 2
    files = {"raw": 2, "clean": 2, "governed": 3}
    balanced = reconcile(ledger, clean_rows=8, governed_rows=5, governed_quarantined=3, quarantined_files=files)
    assert balanced.passed and balanced.unaccounted == 0
    short = reconcile(ledger, clean_rows=8, governed_rows=4, governed_quarantined=3, quarantined_files=files)
    assert not short.passed and short.unaccounted == 1 and "1 landed record(s) unaccounted for" in short.description
    assert retention(ledger, governed_rows=5, minimum=0.45).passed  # 5 of 11 (a re-sent duplicate is no loss)
    low = retention(ledger, governed_rows=5, minimum=0.5)
    assert not low.passed and "below min_retained_fraction 50%" in low.description and low.basis == 11
    assert not retention(ledger, governed_rows=0, minimum=0.0).passed
