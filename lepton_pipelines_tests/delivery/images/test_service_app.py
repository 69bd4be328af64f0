"""The model-service app in-process (the code that runs inside the image), without Docker:
validation messages, the Prometheus text, and the `smoke` entrypoint's pass/fail."""

from __future__ import annotations

import sys

import pytest

from .conftest import REPO_ROOT, write_model_artifact

sys.path.insert(0, str(REPO_ROOT / "deployments" / "model-service" / "app"))

from lepton_model_service.__main__ import smoke  # noqa: E402
from lepton_model_service.metrics import ServiceMetrics  # noqa: E402
from lepton_model_service.schema import InvalidRequest, extract_rows, parse_feature_schema, validate_rows  # noqa: E402
from lepton_model_service.server import ServiceSettings  # noqa: E402

FEATURES = parse_feature_schema(
    [
        {"name": "t", "type": "float"},
        {"name": "n", "type": "integer", "nullable": True},
        {"name": "ok", "type": "boolean"},
    ]
)


def test_validation_reports_every_problem_with_row_and_field():
    rows = [{"t": 1.5, "n": None, "ok": True}, {"t": True, "n": 2.0, "extra": 1}, "not a row"]
    with pytest.raises(InvalidRequest) as caught:
        validate_rows(rows, FEATURES)
    described = [problem.describe() for problem in caught.value.problems]
    assert caught.value.status == 422
    assert described == [
        "row 1, field 't': expected float, got boolean True",
        "row 1, field 'n': expected integer, got float 2.0",
        "row 1, field 'ok': is missing; expected boolean",
        "row 1, field 'extra': is not a model feature; allowed: n, ok, t",
        "row 2: must be an object of feature values, got string",
    ]


def test_row_count_limits_and_envelope():
    with pytest.raises(InvalidRequest, match="at most 2 per request") as caught:
        extract_rows({"rows": [{}, {}, {}]}, max_rows=2)
    assert caught.value.status == 413
    assert extract_rows([{"t": 1.0}], max_rows=2) == [{"t": 1.0}]


def test_metrics_text_has_cumulative_buckets_and_escaped_labels():
    metrics = ServiceMetrics({"name": 'a"b', "version": "1"})
    metrics.observe_request("/predict", "POST", 200, 0.003)
    metrics.observe_request("/predict", "POST", 200, 0.2)
    text = metrics.render()
    assert 'lepton_model_info{name="a\\"b",version="1"} 1.0' in text
    assert 'lepton_model_request_duration_seconds_bucket{endpoint="/predict",le="0.005"} 1.0' in text
    assert 'lepton_model_request_duration_seconds_bucket{endpoint="/predict",le="0.25"} 2.0' in text
    assert 'lepton_model_request_duration_seconds_bucket{endpoint="/predict",le="+Inf"} 2.0' in text
    assert 'lepton_model_requests_total{endpoint="/predict",method="POST",status="200"} 2.0' in text


def test_smoke_entrypoint_passes_for_a_good_model_and_fails_for_a_corrupt_one(tmp_path, capsys):
    good = tmp_path / "good"
    write_model_artifact(good, "pumps", "v1", task="classification")
    settings = ServiceSettings.from_env({"LEPTON_MODEL_DIR": str(good)})
    assert smoke(settings, ready_timeout=60) == 0
    assert '"smoke": "passed"' in capsys.readouterr().out

    bad = tmp_path / "bad"
    write_model_artifact(bad, "pumps", "v1")
    (bad / "model.joblib").write_bytes(b"\x00corrupt")
    assert smoke(ServiceSettings.from_env({"LEPTON_MODEL_DIR": str(bad)}), ready_timeout=60) == 1
    assert "unpickling" in capsys.readouterr().out
