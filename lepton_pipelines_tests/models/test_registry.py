"""Registry: content-derived idempotent versions, aliases, and champion/challenger both ways."""

from __future__ import annotations

import json

import pytest
from upath import UPath

from lepton_pipelines.delivery.images.context import read_model_card
from lepton_pipelines.models.config import PromotionSpec, load_models, model_by_name
from lepton_pipelines.models.registry import (
    ModelRegistry,
    RegistryError,
    build_card,
    content_version,
    decide_promotion,
)
from lepton_pipelines.models.training import library_versions

pytestmark = pytest.mark.timeout(60)

POLICY = PromotionSpec.model_validate(
    {
        "thresholds": {"roc_auc": {"min": 0.6}},
        "compare": {"roc_auc": "higher_is_better", "brier": "lower_is_better"},
        "tolerance": 0.01,
    }
)


def card(roc_auc: float = 0.8, rows: int = 100) -> dict:
    spec = model_by_name("transaction_risk", load_models())
    return build_card(
        spec,
        metrics={"roc_auc": roc_auc, "brier": 0.1},
        sample_input=[
            {"amount": 1.0, "currency": "USD", "merchant_category": "fuel", "channel": "web", "country": "US"}
        ],
        library_versions=library_versions(),
        training={"assets": ["transactions/governed"], "partitions": ["2024-03-01"], "quality": {}, "rows": rows},
    )


@pytest.fixture
def registry(tmp_path) -> ModelRegistry:
    return ModelRegistry(UPath(str(tmp_path / "lake" / "models")), "transaction_risk")


def test_version_is_content_derived_and_ignores_timestamps():
    base = card()
    version = content_version(b"model-bytes", base)
    assert len(version) == 12 and int(version, 16) >= 0
    assert content_version(b"model-bytes", {**base, "created_at": "2030-01-01", "version": "x"}) == version
    assert content_version(b"other-bytes", base) != version
    assert content_version(b"model-bytes", card(rows=101)) != version


def test_registering_identical_content_is_idempotent(registry):
    first = registry.write_version(b"model-bytes", card())
    card_path = registry.version_dir(first.version) / "model_card.json"
    written = card_path.read_text()
    again = registry.write_version(b"model-bytes", card())
    assert first.created and not again.created
    assert again.version == first.version
    assert card_path.read_text() == written  # first registration's card and timestamp are kept
    assert (registry.version_dir(first.version) / "model.joblib").read_bytes() == b"model-bytes"


def test_written_card_satisfies_the_image_builder_contract(registry):
    registered = registry.write_version(b"model-bytes", card())
    parsed = read_model_card(registry.version_dir(registered.version))  # the image builder's own parser
    assert (parsed.name, parsed.version) == ("transaction_risk", registered.version)
    assert parsed.score_method == "predict_proba" and parsed.task == "classification"
    assert set(parsed.library_versions) == {"scikit-learn", "numpy", "scipy", "joblib", "pandas"}


def test_first_candidate_meeting_thresholds_becomes_production(registry):
    registered = registry.write_version(b"v1", card(0.8))
    decision = decide_promotion(registered.version, {"roc_auc": 0.8, "brier": 0.1}, None, None, POLICY)
    index = registry.commit(registered, decision)
    assert decision.promote and "no production version yet" in decision.reason
    assert index["aliases"] == {"candidate": registered.version, "production": registered.version}
    assert [v["version"] for v in index["versions"]] == [registered.version]
    stored = json.loads(registry.index_path.read_text())
    assert stored == index
    assert stored["decisions"][0]["reason"] == decision.reason and stored["decisions"][0]["promote"] is True
    assert not [p for p in registry.folder.iterdir() if p.name.endswith(".tmp")]


def test_better_challenger_is_promoted(registry):
    champion = registry.write_version(b"v1", card(0.7))
    registry.commit(champion, decide_promotion(champion.version, {"roc_auc": 0.7, "brier": 0.2}, None, None, POLICY))
    challenger = registry.write_version(b"v2", card(0.8))
    decision = decide_promotion(
        challenger.version,
        {"roc_auc": 0.8, "brier": 0.15},
        champion.version,
        {"roc_auc": 0.7, "brier": 0.2},
        POLICY,
        production_metrics_basis="re-scored on the candidate's held-out rows",
    )
    index = registry.commit(challenger, decision)
    assert decision.promote
    assert f"not worse than production {champion.version}" in decision.reason and "roc_auc, brier" in decision.reason
    assert [c.verdict for c in decision.comparisons] == ["better", "better"]
    assert index["aliases"] == {"candidate": challenger.version, "production": challenger.version}
    assert index["decisions"][-1]["production_before"] == champion.version
    assert index["decisions"][-1]["production_metrics_basis"] == "re-scored on the candidate's held-out rows"


def test_worse_challenger_is_not_promoted_and_the_reason_is_recorded(registry):
    champion = registry.write_version(b"v1", card(0.8))
    registry.commit(champion, decide_promotion(champion.version, {"roc_auc": 0.8, "brier": 0.1}, None, None, POLICY))
    challenger = registry.write_version(b"v2", card(0.75))
    decision = decide_promotion(
        challenger.version, {"roc_auc": 0.75, "brier": 0.105}, champion.version, {"roc_auc": 0.8, "brier": 0.1}, POLICY
    )
    index = registry.commit(challenger, decision)
    assert not decision.promote
    assert decision.reason == (
        f"candidate {challenger.version} is worse than production {champion.version}: "
        "roc_auc 0.75 vs 0.8 (higher is better)"
    )
    assert [c.verdict for c in decision.comparisons] == ["worse", "within tolerance"]
    assert index["aliases"] == {"candidate": challenger.version, "production": champion.version}
    assert [v["version"] for v in index["versions"]] == [champion.version, challenger.version]
    assert index["decisions"][-1]["reason"] == decision.reason


def test_candidate_below_threshold_is_not_promoted_even_without_production(registry):
    registered = registry.write_version(b"v1", card(0.55))
    decision = decide_promotion(registered.version, {"roc_auc": 0.55}, None, None, POLICY)
    index = registry.commit(registered, decision)
    assert not decision.promote
    assert "fails the promotion thresholds: roc_auc 0.55 is below the minimum 0.6" in decision.reason
    assert index["aliases"] == {"candidate": registered.version}


def test_missing_metrics_count_against_the_candidate_only():
    policy = PromotionSpec.model_validate(
        {"thresholds": {"anomaly_rate": {"max": 0.1}}, "compare": {"roc_auc": "higher_is_better"}}
    )
    unmeasurable = decide_promotion("b", {"anomaly_rate": 0.02}, "a", {"anomaly_rate": 0.03}, policy)
    assert unmeasurable.promote and "no comparable metric" in unmeasurable.reason
    lost = decide_promotion("b", {"anomaly_rate": 0.02}, "a", {"anomaly_rate": 0.03, "roc_auc": 0.9}, policy)
    assert not lost.promote and "roc_auc n/a vs 0.9" in lost.reason
    not_computed = decide_promotion("b", {}, None, None, policy)
    assert not not_computed.promote and "anomaly_rate was not measured" in not_computed.reason


def test_retraining_the_production_version_changes_nothing(registry):
    registered = registry.write_version(b"v1", card())
    registry.commit(registered, decide_promotion(registered.version, {"roc_auc": 0.8}, None, None, POLICY))
    again = registry.write_version(b"v1", card())
    decision = decide_promotion(again.version, {"roc_auc": 0.8}, registered.version, {"roc_auc": 0.8}, POLICY)
    index = registry.commit(again, decision)
    assert not decision.promote and "already the production version" in decision.reason
    assert len(index["versions"]) == 1 and index["aliases"]["production"] == registered.version


def test_manual_alias_moves_are_validated_and_logged(registry):
    first = registry.write_version(b"v1", card(0.8))
    registry.commit(first, decide_promotion(first.version, {"roc_auc": 0.8}, None, None, POLICY))
    second = registry.write_version(b"v2", card(0.9))
    registry.commit(second, decide_promotion(second.version, {"roc_auc": 0.9}, first.version, {"roc_auc": 0.8}, POLICY))
    index = registry.set_alias("production", first.version, reason="rollback: v2 misbehaves in production")
    assert index["aliases"]["production"] == first.version
    assert index["decisions"][-1]["from"] == second.version and "rollback" in index["decisions"][-1]["reason"]
    with pytest.raises(RegistryError, match="has no version 'nope'; registered: "):
        registry.set_alias("production", "nope", reason="typo")
    with pytest.raises(RegistryError, match="alias 'staging' is unknown; allowed: candidate, production"):
        registry.set_alias("staging", first.version, reason="x")


def test_unknown_version_and_corrupt_index_are_reported_with_their_path(registry):
    with pytest.raises(RegistryError, match=r"model_card.json: model 'transaction_risk' has no version 'abc'"):
        registry.read_card("abc")
    registry.index_path.parent.mkdir(parents=True)
    registry.index_path.write_text("{not json")
    with pytest.raises(RegistryError, match=r"registry.json: not valid JSON"):
        registry.index()
