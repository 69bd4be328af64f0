"""Batch scoring with a known model version: the champion's own artifact, loaded independently, gives
the same probabilities; the version is stored with every score; other versions only when asked."""

from __future__ import annotations

import io

import dagster as dg
import joblib
import numpy as np
import pandas as pd
import pytest

from lepton_pipelines.models.config import load_models, model_by_name
from lepton_pipelines.models.registry import ModelRegistry
from lepton_pipelines.models.scoring import ScoringError, build_scores_asset, score_partition
from lepton_pipelines.models.training import serialize, train_model
from lepton_pipelines_tests.analytics.test_hand_fixtures import DAY
from lepton_pipelines_tests.models import synthetic
from lepton_pipelines_tests.models.helpers import register


@pytest.fixture
def two_versions(tmp_lake):
    spec = model_by_name("transaction_risk", load_models())
    strong = train_model(spec, synthetic.transactions("2026-03-01", 3000, seed=1))
    weak = train_model(spec, synthetic.transactions("2026-03-02", 3000, seed=2, signal=False))
    first = register(tmp_lake, "transaction_risk", serialize(strong.estimator), roc_auc=0.9)
    second = register(tmp_lake, "transaction_risk", serialize(weak.estimator), roc_auc=0.5)  # stays a candidate
    governed = synthetic.transactions(DAY, 500, seed=3)
    synthetic.write_governed(tmp_lake, "transactions", {DAY: governed})
    return {"first": first, "second": second, "governed": tmp_lake.read_table("governed", "transactions", DAY)}


def test_champion_scores_equal_its_artifact_probabilities(tmp_lake, two_versions):
    registry = ModelRegistry(tmp_lake.path("models"), "transaction_risk")
    assert registry.alias("production") == two_versions["first"] != registry.alias("candidate")
    scored = score_partition(registry, two_versions["governed"], threshold=0.6)
    assert scored.model_version == two_versions["first"] and scored.alias == "production"
    estimator = joblib.load(
        io.BytesIO((tmp_lake.path("models", "transaction_risk", two_versions["first"], "model.joblib")).read_bytes())
    )
    features = two_versions["governed"][["amount", "currency", "merchant_category", "channel", "country"]]
    expected = estimator.predict_proba(features)[:, list(estimator.classes_).index(True)]
    np.testing.assert_allclose(scored.frame["risk_score"], expected, rtol=1e-12)
    assert (scored.frame["is_high_risk"] == (expected >= 0.6)).all()
    assert set(scored.frame["model_version"]) == {two_versions["first"]}
    assert list(scored.frame["txn_id"]) == list(two_versions["governed"]["txn_id"])


def test_scores_asset_stores_the_version_and_rescores_only_when_asked(tmp_lake, two_versions):
    from lepton_pipelines.analytics.assets import AnalyticsIOManager
    from lepton_pipelines.lake.resource import LakeResource

    spec = model_by_name("transaction_risk", load_models())
    asset = build_scores_asset(spec, dg.DailyPartitionsDefinition(start_date="2026-01-01"), "analytics_io")
    resources = {
        "lake": LakeResource(url=tmp_lake.url),
        "analytics_io": AnalyticsIOManager(lake=LakeResource(url=tmp_lake.url)),
    }
    first = dg.materialize([asset], partition_key=DAY, resources=resources)
    path = tmp_lake.path("models", "transaction_risk", "scores", f"date={DAY}", "data.parquet")
    stored = pd.read_parquet(path.path)
    assert set(stored["model_version"]) == {two_versions["first"]} and len(stored) == len(two_versions["governed"])
    checks = {
        e.asset_check_evaluation_data.check_name: e.asset_check_evaluation_data.passed
        for e in first.all_events
        if e.event_type_value == "ASSET_CHECK_EVALUATION"
    }
    assert checks == {"one_score_per_governed_row": True, "scores_in_range": True, "scored_by_champion": True}

    # A new champion changes nothing on disk until the partition is re-scored on purpose.
    ModelRegistry(tmp_lake.path("models"), "transaction_risk").set_alias("production", two_versions["second"], "test")
    assert set(pd.read_parquet(path.path)["model_version"]) == {two_versions["first"]}
    # Reproducing the old version by run config is flagged as not the champion's (WARN), not refused.
    pinned = dg.materialize(
        [asset],
        partition_key=DAY,
        resources=resources,
        run_config={"ops": {"models__transaction_risk__scores": {"config": {"model_version": two_versions["first"]}}}},
    )
    flagged = [
        e.asset_check_evaluation_data
        for e in pinned.all_events
        if e.event_type_value == "ASSET_CHECK_EVALUATION"
        and e.asset_check_evaluation_data.check_name == "scored_by_champion"
    ][0]
    assert not flagged.passed and two_versions["second"] in flagged.description
    dg.materialize([asset], partition_key=DAY, resources=resources)
    assert set(pd.read_parquet(path.path)["model_version"]) == {two_versions["second"]}


def test_no_champion_is_a_named_error(tmp_lake):
    registry = ModelRegistry(tmp_lake.path("models"), "transaction_risk")
    with pytest.raises(ScoringError, match="has no champion .* materialize models/transaction_risk"):
        score_partition(registry, pd.DataFrame({"txn_id": ["T1"]}))
