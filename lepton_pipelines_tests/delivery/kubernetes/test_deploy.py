"""The Kubernetes target against a fake API server over HTTP, with the real kubernetes client."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC
from typing import Any

import pytest
import yaml

from lepton_pipelines.delivery.kubernetes import DeployConfigError, KubernetesTarget
from lepton_pipelines.delivery.targets import DEPLOY_TARGETS, DeployFailed, DeployResult

from .conftest import SAMPLE_ROWS, deployer_role, image_for, make_request
from .fake_api_server import FakeKubernetes

pytestmark = pytest.mark.timeout(60)

NS = "lepton-models"
GO_TRUE_STRINGS = {"1", "t", "T", "TRUE", "true", "True"}
NO_HPA = {"hpa": {"enabled": False}, "replicas": 2}
TargetFor = Callable[..., KubernetesTarget]


def _deploy(target: KubernetesTarget, version: str, config: dict[str, Any] | None = None) -> DeployResult:
    messages: list[str] = []
    result = target.deploy(make_request(version, config), log=messages.append)
    result.details["log"] = messages
    return result


def _live_image(fake: FakeKubernetes, name: str = "model-churn") -> str | None:
    deployment = fake.deployment(NS, name)
    return deployment["spec"]["template"]["spec"]["containers"][0]["image"] if deployment else None


def _deployed_v6(fake: FakeKubernetes, target_for: TargetFor, config: dict[str, Any] | None = None) -> None:
    assert _deploy(target_for(), "6", config).ok
    fake.requests.clear()


def test_target_is_registered_under_its_name() -> None:
    assert DEPLOY_TARGETS["kubernetes"] is KubernetesTarget


def test_first_deploy_applies_everything_server_side_and_smoke_tests_through_the_service(
    fake_k8s: FakeKubernetes, target_for: TargetFor
) -> None:
    fake_k8s.enforce_role(deployer_role())  # the shipped Role is enough for a whole deploy
    result = _deploy(target_for(), "7")

    assert result.ok and result.serving_image == image_for("7") and result.previous_image is None
    assert _live_image(fake_k8s) == image_for("7")
    kinds = sorted(obj["kind"] for obj in fake_k8s.objects.values())
    assert kinds == ["Deployment", "HorizontalPodAutoscaler", "Ingress", "NetworkPolicy", "Service"]
    patches = [r for r in fake_k8s.requests if r.method == "PATCH"]
    assert len(patches) == 5
    for patch in patches:
        assert patch.content_type == "application/apply-patch+yaml"
        assert patch.query["fieldManager"] == ["lepton-deployer"]
        # The official client sends force=True; the API server parses it with Go's strconv.ParseBool.
        assert patch.query["force"][0] in GO_TRUE_STRINGS
    health = fake_k8s.requests_matching("GET", "/services/model-churn:80/proxy/health")
    predict = fake_k8s.requests_matching("POST", "/services/model-churn:80/proxy/predict")
    assert len(health) == 1 and len(predict) == 1 and predict[0].body == {"rows": SAMPLE_ROWS}
    # The Ingress only exposes the model after the smoke test passed.
    order = [(r.method, r.path) for r in fake_k8s.requests]
    assert order.index(("POST", predict[0].path)) < order.index(
        ("PATCH", f"/apis/networking.k8s.io/v1/namespaces/{NS}/ingresses/model-churn")
    )
    deployment = fake_k8s.deployment(NS, "model-churn")
    assert deployment["metadata"]["annotations"]["org.lepton.dagster/run-id"] == "run-0f1e2d"
    assert "kind: Deployment" in result.details["manifests_yaml"]
    assert result.details["smoke_tests"] == [{"deployment": "model-churn", "health": "ok", "predict_rows": 2}]


def test_update_changes_the_image_and_keeps_the_autoscaled_replica_count(
    fake_k8s: FakeKubernetes, target_for: TargetFor
) -> None:
    fake_k8s.enforce_role(deployer_role())
    _deployed_v6(fake_k8s, target_for)
    fake_k8s.deployment(NS, "model-churn")["spec"]["replicas"] = 5  # the HPA scaled out meanwhile

    result = _deploy(target_for(), "7")

    assert result.ok and result.previous_image == image_for("6") and result.serving_image == image_for("7")
    assert "replaced " + image_for("6") in result.message
    live = fake_k8s.deployment(NS, "model-churn")
    assert _live_image(fake_k8s) == image_for("7") and live["metadata"]["generation"] == 2
    assert live["metadata"]["labels"]["org.lepton.model.version"] == "7"
    assert live["spec"]["replicas"] == 5  # not reset by the deploy


def test_progress_deadline_exceeded_rolls_back_to_the_previous_image(
    fake_k8s: FakeKubernetes, target_for: TargetFor
) -> None:
    fake_k8s.enforce_role(deployer_role())
    _deployed_v6(fake_k8s, target_for, NO_HPA)
    fake_k8s.scenario.stuck_images = {image_for("7")}

    with pytest.raises(DeployFailed) as caught:
        _deploy(target_for(), "7", NO_HPA)

    message = str(caught.value)
    assert "ProgressDeadlineExceeded" in message and 'model-churn-new" has timed out progressing' in message
    assert f"the previous image {image_for('6')} is serving" in message
    result = caught.value.result
    assert (result.ok, result.rolled_back, result.serving_image) == (False, True, image_for("6"))
    live = fake_k8s.deployment(NS, "model-churn")
    assert _live_image(fake_k8s) == image_for("6") and live["metadata"]["generation"] == 3
    assert live["metadata"]["labels"]["org.lepton.model.version"] == "6"
    assert live["status"]["readyReplicas"] == 2  # the rollback rollout was waited for
    assert not fake_k8s.requests_matching("GET", "/proxy/")  # no smoke test of a failed rollout


def test_rollout_that_never_finishes_times_out_and_rolls_back(fake_k8s: FakeKubernetes, target_for: TargetFor) -> None:
    config = {**NO_HPA, "rollout": {"timeout_seconds": 1}}
    _deployed_v6(fake_k8s, target_for, config)
    fake_k8s.scenario.rollout_polls = 10**6  # pods never become ready

    with pytest.raises(DeployFailed, match=r"did not finish within 1s: 1 of 2 replicas updated") as caught:
        _deploy(target_for(), "7", config)
    assert "Rollback failed too" in str(caught.value)  # the rollback cannot finish either
    assert caught.value.result.serving_image is None  # honest: unknown


def test_failed_smoke_test_rolls_back(fake_k8s: FakeKubernetes, target_for: TargetFor) -> None:
    _deployed_v6(fake_k8s, target_for)
    fake_k8s.scenario.unhealthy_images = {image_for("7")}

    with pytest.raises(DeployFailed) as caught:
        _deploy(target_for(), "7")

    message = str(caught.value)
    assert "smoke test GET /health through Service lepton-models/model-churn failed: " in message
    assert "HTTP 500" in message and f"{image_for('6')} is serving" in message
    assert _live_image(fake_k8s) == image_for("6")
    # 5xx from the proxy were retried before giving up.
    assert len(fake_k8s.requests_matching("GET", "/proxy/health")) == 4


def test_failed_predict_on_first_deploy_removes_the_deployment(fake_k8s: FakeKubernetes, target_for: TargetFor) -> None:
    fake_k8s.enforce_role(deployer_role())
    fake_k8s.scenario.failing_predict_images = {image_for("7")}

    with pytest.raises(DeployFailed) as caught:
        _deploy(target_for(), "7")

    message = str(caught.value)
    assert "smoke test POST /predict" in message
    assert "first deploy of churn: deleted Deployment lepton-models/model-churn; nothing is serving" in message
    assert caught.value.result.serving_image is None and caught.value.result.rolled_back
    assert fake_k8s.deployment(NS, "model-churn") is None
    assert not any(obj["kind"] in ("HorizontalPodAutoscaler", "Ingress") for obj in fake_k8s.objects.values())


def test_conflict_is_re_read_and_applied_again(fake_k8s: FakeKubernetes, target_for: TargetFor) -> None:
    fake_k8s.inject("PATCH", "/deployments/model-churn", 409)

    result = _deploy(target_for(), "7")

    assert result.ok and _live_image(fake_k8s) == image_for("7")
    calls = [(r.method, r.path.endswith("/deployments/model-churn")) for r in fake_k8s.requests]
    first_patch = calls.index(("PATCH", True))
    assert calls[first_patch : first_patch + 3] == [("PATCH", True), ("GET", True), ("PATCH", True)]
    assert any("conflict applying Deployment lepton-models/model-churn" in line for line in result.details["log"])


def test_forbidden_fails_at_once_naming_verb_resource_and_rbac_file(
    fake_k8s: FakeKubernetes, target_for: TargetFor
) -> None:
    role = deployer_role()
    for rule in role["rules"]:
        if rule["resources"] == ["deployments"]:
            rule["verbs"] = [verb for verb in rule["verbs"] if verb != "patch"]
    fake_k8s.enforce_role(role)

    with pytest.raises(DeployFailed) as caught:
        _deploy(target_for(), "7")

    message = str(caught.value)
    assert "forbidden: the deployer may not patch deployments.apps in namespace 'lepton-models'" in message
    assert "deployments/kubernetes/deployer-rbac.yaml" in message
    assert "Deployment lepton-models/model-churn was never created; nothing is serving" in message
    assert len(fake_k8s.requests_matching("PATCH", "/deployments/")) == 1  # not retried


def test_server_errors_and_throttling_are_retried(fake_k8s: FakeKubernetes, target_for: TargetFor) -> None:
    fake_k8s.inject("GET", "/deployments/model-churn", 503, times=2)
    fake_k8s.inject("PATCH", "/services/model-churn", 500)
    fake_k8s.inject("PATCH", "/ingresses/model-churn", 429, **{"Retry-After": "0"})

    result = _deploy(target_for(), "7")

    assert result.ok and _live_image(fake_k8s) == image_for("7")
    assert len(fake_k8s.requests_matching("PATCH", "/services/model-churn")) == 2
    assert len(fake_k8s.requests_matching("PATCH", "/ingresses/model-churn")) == 2
    assert sum("HTTP 503" in line for line in result.details["log"]) == 2


def test_persistent_server_errors_give_up_with_the_status(fake_k8s: FakeKubernetes, target_for: TargetFor) -> None:
    fake_k8s.inject("GET", "/deployments/model-churn", 503, times=100)
    with pytest.raises(DeployFailed, match=r"failed before any change: .*HTTP 503.*Nothing was changed"):
        _deploy(target_for(), "7")
    assert len(fake_k8s.requests) == 4 and not fake_k8s.requests_matching("PATCH", "/")


def test_canary_is_promoted_then_removed(fake_k8s: FakeKubernetes, target_for: TargetFor) -> None:
    fake_k8s.enforce_role(deployer_role())
    canary = {"canary": {"enabled": True, "replicas": 1}}
    _deployed_v6(fake_k8s, target_for, canary)

    result = _deploy(target_for(), "7", canary)

    assert result.ok and _live_image(fake_k8s) == image_for("7")
    assert fake_k8s.deployment(NS, "model-churn-canary") is None
    patched = [
        r.path.rsplit("/", 1)[-1] for r in fake_k8s.requests if r.method == "PATCH" and "/deployments/" in r.path
    ]
    assert patched == ["model-churn-canary", "model-churn"]
    assert [t["deployment"] for t in result.details["smoke_tests"]] == ["model-churn-canary", "model-churn"]


def test_failing_canary_leaves_the_main_deployment_untouched(fake_k8s: FakeKubernetes, target_for: TargetFor) -> None:
    fake_k8s.enforce_role(deployer_role())
    canary = {"canary": {"enabled": True, "replicas": 1}}
    _deployed_v6(fake_k8s, target_for, canary)
    fake_k8s.scenario.stuck_images = {image_for("7")}

    with pytest.raises(DeployFailed) as caught:
        _deploy(target_for(), "7", canary)

    message = str(caught.value)
    assert "rollout of Deployment lepton-models/model-churn-canary failed: ProgressDeadlineExceeded" in message
    assert (
        "Removed canary Deployment lepton-models/model-churn-canary. Deployment lepton-models/model-churn was not "
        f"changed; {image_for('6')} is still serving." in message
    )
    assert fake_k8s.deployment(NS, "model-churn-canary") is None
    assert not [r for r in fake_k8s.requests if r.method == "PATCH" and r.path.endswith("/deployments/model-churn")]
    assert caught.value.result.serving_image == image_for("6")


@pytest.mark.parametrize(
    ("overrides", "expected"),
    [
        ({"config": {"replicas": -1}}, "replicas: Input should be greater than or equal to 0"),
        ({"config": {"replicaz": 3}}, "replicaz: unknown field"),
        (
            {"config": {"resources": {"requests": {"memory": "256MB"}}}},
            "resources.requests.memory: '256MB' is not a Kubernetes quantity",
        ),
        ({"image": "127.0.0.1:5000/lepton/model-churn"}, "has no tag"),
        ({"image": "127.0.0.1:5000/lepton/model-churn:latest"}, "'latest' is not pinned"),
    ],
)
def test_bad_config_fails_before_any_request(
    fake_k8s: FakeKubernetes, target_for: TargetFor, overrides: dict[str, Any], expected: str
) -> None:
    with pytest.raises(DeployConfigError) as caught:
        target_for().deploy(make_request("7", **overrides), log=lambda _: None)
    assert expected in str(caught.value)
    assert fake_k8s.requests == []


def test_dry_run_renders_and_validates_without_a_cluster(fake_k8s: FakeKubernetes, target_for: TargetFor) -> None:
    result = target_for(dry_run=True, kubernetes_version="1.29").deploy(make_request("7"), log=lambda _: None)
    assert result.ok and result.serving_image is None and "nothing was applied" in result.message
    assert "valid for Kubernetes 1.29" in result.message
    kinds = [doc["kind"] for doc in yaml.safe_load_all(result.details["manifests_yaml"])]
    assert kinds == ["NetworkPolicy", "Service", "Deployment", "HorizontalPodAutoscaler", "Ingress"]
    assert fake_k8s.requests == []


@pytest.mark.parametrize(
    ("scenario_field", "reason"),
    [
        ("pull_error_images", "image pull error (ImagePullBackOff"),
        ("crashloop_images", "crash loop (CrashLoopBackOff, 4 restarts"),
        ("load_failed_images", "model failed to load: model.joblib: invalid load key"),
    ],
)
def test_terminal_pod_states_end_the_rollout_at_once_and_roll_back(
    fake_k8s: FakeKubernetes, target_for: TargetFor, scenario_field: str, reason: str
) -> None:
    fake_k8s.enforce_role(deployer_role())  # the shipped Role allows reading pods and their /ready
    _deployed_v6(fake_k8s, target_for, NO_HPA)
    getattr(fake_k8s.scenario, scenario_field).add(image_for("7"))
    # A rollout timeout the test could never wait out: only a terminal verdict ends it.
    config = {**NO_HPA, "rollout": {"timeout_seconds": 100000}}

    with pytest.raises(DeployFailed) as failure:
        target_for(poll_interval_seconds=0.05).deploy(make_request("7", config), log=lambda _: None)

    message = str(failure.value)
    assert reason in message and "not waiting for the rollout timeout" in message
    assert failure.value.result.rolled_back and failure.value.result.serving_image == image_for("6")
    assert _live_image(fake_k8s) == image_for("6")
    assert fake_k8s.requests_matching("GET", "/pods")


def test_api_retry_reads_retry_after_as_seconds_or_an_http_date():
    import email.utils
    from datetime import datetime, timedelta

    from lepton_pipelines.delivery.kubernetes import ApiRetry

    retry = ApiRetry(attempts=3, initial_delay_seconds=0.5, max_delay_seconds=8.0)
    assert retry.delay(1, "3") == 3.0 and retry.delay(1, "120") == 8.0  # capped at max_delay_seconds
    soon = email.utils.format_datetime(datetime.now(UTC) + timedelta(seconds=5), usegmt=True)
    assert 3.0 <= retry.delay(1, soon) <= 5.0
    assert 0.4 <= retry.delay(1, "whenever") <= 0.6  # unreadable: the jittered backoff (0.5 s ± 20%)
