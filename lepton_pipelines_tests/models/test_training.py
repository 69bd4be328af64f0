"""Training: held-out metrics that track the planted signal, determinism, and clear data errors."""

from __future__ import annotations

import pandas as pd
import pytest

from lepton_pipelines.models.config import ModelConfigError, load_models, model_by_name, parse_models
from lepton_pipelines.models.training import (
    TrainingDataError,
    deserialize,
    prepare_frame,
    serialize,
    split,
    train_model,
)
from lepton_pipelines_tests.models import synthetic

pytestmark = pytest.mark.timeout(120)


@pytest.fixture(scope="module")
def specs():
    return load_models()


@pytest.fixture(scope="module")
def transactions() -> pd.DataFrame:
    return pd.concat([synthetic.transactions(f"2024-03-0{d}", 300, seed=d) for d in (1, 2, 3)], ignore_index=True)


@pytest.fixture(scope="module")
def telemetry() -> pd.DataFrame:
    return pd.concat(
        [synthetic.telemetry(f"2024-03-0{d}", 400, seed=d, anomaly_share=0.015) for d in (1, 2, 3)], ignore_index=True
    )


def test_shipped_models_are_declared(specs):
    by_name = {s.name: s for s in specs}
    assert set(by_name) == {"device_anomaly", "transaction_risk"}
    assert by_name["device_anomaly"].task == "anomaly" and by_name["device_anomaly"].source == "device_telemetry"
    assert by_name["transaction_risk"].task == "classification" and by_name["transaction_risk"].label == "is_fraud"
    assert by_name["transaction_risk"].promotion.thresholds["roc_auc"].min == 0.6


def test_risk_model_learns_the_planted_signal(specs, transactions):
    spec = model_by_name("transaction_risk", specs)
    trained = train_model(spec, transactions)
    assert trained.metrics["roc_auc"] > 0.75
    assert trained.metrics["test_rows"] == trained.test_rows == 225  # 25% of 900, stratified
    assert trained.train_rows + trained.test_rows == len(transactions)
    for metric in ("average_precision", "precision", "recall", "f1", "accuracy", "brier", "positive_rate"):
        assert 0.0 <= trained.metrics[metric] <= 1.0
    # the sample input is what /predict accepts: exactly the declared features, JSON values
    assert len(trained.sample_input) == 3
    assert set(trained.sample_input[0]) == set(spec.feature_names)
    scores = trained.estimator.predict_proba(pd.DataFrame(trained.sample_input))[:, 1]
    assert ((scores >= 0) & (scores <= 1)).all()


def test_risk_model_without_signal_scores_near_chance(specs, transactions):
    spec = model_by_name("transaction_risk", specs)
    noise = pd.concat([synthetic.transactions(f"2024-03-0{d}", 300, seed=d, signal=False) for d in (1, 2, 3)])
    chance = train_model(spec, noise).metrics["roc_auc"]
    assert abs(chance - 0.5) < 0.15
    assert chance < train_model(spec, transactions).metrics["roc_auc"] - 0.15


def test_training_is_deterministic(specs, transactions):
    spec = model_by_name("transaction_risk", specs)
    first, second = train_model(spec, transactions), train_model(spec, transactions)
    assert serialize(first.estimator) == serialize(second.estimator)
    assert first.metrics == second.metrics


def test_gradient_boosting_estimator_round_trips(specs, transactions):
    spec = model_by_name("transaction_risk", specs).model_copy(
        update={"estimator": "hist_gradient_boosting", "params": {"max_iter": 15, "early_stopping": False}}
    )
    trained = train_model(spec, transactions)
    restored = deserialize(serialize(trained.estimator))
    rows = pd.DataFrame(trained.sample_input)
    assert (restored.predict_proba(rows) == trained.estimator.predict_proba(rows)).all()
    assert trained.metrics["roc_auc"] > 0.7


def test_anomaly_model_finds_injected_faults(specs, telemetry):
    spec = model_by_name("device_anomaly", specs)
    trained = train_model(spec, telemetry)
    metrics = trained.metrics
    assert 0.0 < metrics["anomaly_rate"] < 0.1
    assert metrics["anomaly_rate_shift"] == pytest.approx(
        abs(metrics["anomaly_rate"] - metrics["training_anomaly_rate"]), abs=1e-6
    )
    assert metrics["recall"] >= 0.8 and metrics["roc_auc"] >= 0.95
    # the time split holds out the latest readings
    assert trained.held_out["ts"].min() >= telemetry["ts"].sort_values().iloc[-trained.test_rows]


def test_anomaly_model_without_labels_records_no_label_metrics(specs):
    spec = model_by_name("device_anomaly", specs)
    frame = pd.concat([synthetic.telemetry(f"2024-03-0{d}", 300, seed=d, labelled=False) for d in (1, 2)])
    metrics = train_model(spec, frame).metrics
    assert "anomaly_rate" in metrics and "recall" not in metrics and "roc_auc" not in metrics


def test_missing_column_is_named(specs, transactions):
    spec = model_by_name("transaction_risk", specs)
    with pytest.raises(TrainingDataError, match=r"transaction_risk.*lacks column\(s\) channel"):
        prepare_frame(spec, transactions.drop(columns=["channel"]))


def test_non_numeric_feature_is_named(specs, transactions):
    spec = model_by_name("transaction_risk", specs)
    bad = transactions.astype({"amount": "object"})
    bad.loc[5, "amount"] = "twelve"
    with pytest.raises(TrainingDataError, match="feature 'amount' is declared float"):
        prepare_frame(spec, bad)


def test_unlabelled_rows_are_left_out_and_too_few_rows_fail(specs, transactions):
    spec = model_by_name("transaction_risk", specs)
    partly = transactions.copy()
    partly.loc[:99, "is_fraud"] = pd.NA
    assert len(prepare_frame(spec, partly)) == len(transactions) - 100
    with pytest.raises(TrainingDataError, match="only 50 usable row.*min_rows is 200"):
        train_model(spec, transactions.head(50))


def test_single_class_label_fails_clearly(specs, transactions):
    spec = model_by_name("transaction_risk", specs)
    honest = transactions.assign(is_fraud=False)
    with pytest.raises(TrainingDataError, match="only one class of 'is_fraud'"):
        train_model(spec, honest)


def test_time_split_cuts_by_event_time(specs, telemetry):
    spec = model_by_name("device_anomaly", specs)
    shuffled = telemetry.sample(frac=1.0, random_state=1)
    train, held_out = split(spec, prepare_frame(spec, shuffled))
    assert train["ts"].max() <= held_out["ts"].min()
    assert len(held_out) == round(len(telemetry) * 0.25)


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (
            {"estimator": "random_forest"},
            r"model 'transaction_risk': estimator 'random_forest' is unknown; allowed: hist_gradient_boosting, "
            r"isolation_forest, logistic_regression",
        ),
        ({"label": None}, "a classification model needs 'label'"),
        ({"colour": "blue"}, r"model 'transaction_risk': colour: unknown field"),
        ({"estimator": "isolation_forest"}, "is for task 'anomaly', model task is 'classification'"),
        ({"features": [{"name": "is_fraud", "type": "boolean"}]}, "'is_fraud' is both a feature and a label"),
    ],
)
def test_config_errors_name_the_model_and_field(change, message):
    entry = {
        "name": "transaction_risk",
        "task": "classification",
        "source": "transactions",
        "features": [{"name": "amount", "type": "float"}],
        "label": "is_fraud",
        "estimator": "logistic_regression",
    }
    entry.update(change)
    with pytest.raises(ModelConfigError, match=message) as raised:
        parse_models({"models": [entry]}, "extra/models.yaml")
    assert str(raised.value).startswith("extra/models.yaml: ")


def test_duplicate_model_names_are_rejected():
    entry = {
        "name": "m",
        "task": "anomaly",
        "source": "s",
        "features": [{"name": "x", "type": "float"}],
        "estimator": "isolation_forest",
    }
    with pytest.raises(ModelConfigError, match="duplicated: m"):
        parse_models({"models": [entry, entry]}, "models.yaml")
