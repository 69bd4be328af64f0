"""The service catalog finds model services on Kubernetes through the API server (Services,
EndpointSlices, the Deployment's image, /health through the Service proxy), with the deployer's own
RBAC Role enforced, against the fake API server over HTTP."""

from __future__ import annotations

import copy

import pytest

from lepton_pipelines.delivery.service_catalog import (
    DEGRADED,
    HEALTHY,
    UNHEALTHY,
    CatalogTarget,
    discover,
)

from .conftest import deployer_role, image_for, make_request

pytestmark = pytest.mark.timeout(60)


def catalog_target(fake_k8s, namespace: str = "lepton-models") -> CatalogTarget:
    return CatalogTarget("kubernetes", namespace=namespace, options={"host": fake_k8s.url})


def test_deployed_service_is_listed_with_endpoint_image_version_and_health(fake_k8s, target_for):
    fake_k8s.enforce_role(deployer_role())  # the catalog needs nothing the deployer's Role does not grant
    target_for().deploy(make_request("7"), log=lambda _: None)

    found = discover([catalog_target(fake_k8s)])

    assert found.errors == {}
    (record,) = found.services
    assert (record.target, record.model, record.version) == ("kubernetes", "churn", "7")
    assert record.image == image_for("7")
    assert record.endpoint == "http://model-churn.lepton-models.svc:80"
    assert record.health == HEALTHY and record.ready_replicas == record.replicas >= 1
    assert record.replica_endpoints[0] == "http://192.0.2.10:8080"
    assert record.probed_at.endswith("+00:00")
    listed = [r.path for r in fake_k8s.requests if r.method == "GET"]
    assert "/api/v1/namespaces/lepton-models/services" in listed
    assert "/apis/discovery.k8s.io/v1/namespaces/lepton-models/endpointslices" in listed
    assert any(r.path.endswith("/proxy/health") for r in fake_k8s.requests)


def test_a_new_version_and_a_failing_health_probe_show_up(fake_k8s, target_for):
    target_for().deploy(make_request("7"), log=lambda _: None)
    target_for().deploy(make_request("8"), log=lambda _: None)
    (record,) = discover([catalog_target(fake_k8s)]).services
    assert record.version == "8" and record.image == image_for("8") and record.health == HEALTHY

    fake_k8s.scenario.unhealthy_images.add(image_for("8"))
    (record,) = discover([catalog_target(fake_k8s)]).services
    assert record.health == UNHEALTHY and record.ready_replicas == 0
    assert "/health through the Service" in record.detail


def test_some_endpoints_not_ready_is_degraded(fake_k8s, target_for):
    target_for().deploy(make_request("7"), log=lambda _: None)
    # A second Deployment behind the same Service selector whose pods never get ready (model failed to load).
    broken = copy.deepcopy(fake_k8s.deployment("lepton-models", "model-churn"))
    broken["metadata"]["name"] = "model-churn-extra"
    broken["spec"]["template"]["spec"]["containers"][0]["image"] = image_for("9")
    fake_k8s.scenario.load_failed_images.add(image_for("9"))
    fake_k8s.objects[fake_k8s.path_of(broken)] = broken

    (record,) = discover([catalog_target(fake_k8s)]).services
    assert record.health == DEGRADED
    assert (record.ready_replicas, record.replicas) == (1, 2)
    assert "1 of 2 endpoints not ready" in record.detail


def test_missing_rbac_is_reported_naming_the_verb_and_the_role_file(fake_k8s, target_for):
    target_for().deploy(make_request("7"), log=lambda _: None)
    role = deployer_role()
    role["rules"] = [rule for rule in role["rules"] if "endpointslices" not in rule["resources"]]
    fake_k8s.enforce_role(role)

    found = discover([catalog_target(fake_k8s)])

    assert found.services == []
    (why,) = found.errors.values()
    assert "list" in why and "endpointslices.discovery.k8s.io" in why and "deployer-rbac.yaml" in why


def test_other_namespaces_and_unlabelled_services_are_not_listed(fake_k8s, target_for):
    target_for().deploy(make_request("7"), log=lambda _: None)
    fake_k8s.objects["/api/v1/namespaces/lepton-models/services/postgres"] = {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": {"name": "postgres", "namespace": "lepton-models", "labels": {}},
        "spec": {"selector": {"app": "postgres"}, "ports": [{"port": 5432}]},
    }
    assert [r.model for r in discover([catalog_target(fake_k8s)]).services] == ["churn"]
    assert discover([catalog_target(fake_k8s, namespace="elsewhere")]).services == []
