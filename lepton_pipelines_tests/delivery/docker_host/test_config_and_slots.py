"""Pure rules of the docker_host target: config validation and blue/green slot planning."""

from __future__ import annotations

import pytest

from lepton_pipelines.delivery.docker_host.config import (
    InvalidDeployConfig,
    parse_deploy_config,
    resolve_pass_env,
    split_image_reference,
)
from lepton_pipelines.delivery.docker_host.slots import ReplicaRecord, plan_slots, slot_ports


def record(slot: str, created: str) -> ReplicaRecord:
    return ReplicaRecord("id-" + slot + created, f"c-{slot}", slot, "v", "img:v", 1, "running", created)


def test_defaults_match_the_documented_ones(monkeypatch):
    monkeypatch.delenv("DOCKER_HOST", raising=False)
    config = parse_deploy_config({}, "m")
    assert (config.replicas, config.base_port, config.docker_host) == (1, 18080, "unix:///var/run/docker.sock")
    monkeypatch.setenv("DOCKER_HOST", "tcp://127.0.0.1:2375")
    assert parse_deploy_config({}, "m").docker_host == "tcp://127.0.0.1:2375"


def test_config_error_names_every_bad_field_and_model():
    with pytest.raises(InvalidDeployConfig) as failure:
        parse_deploy_config({"replicas": 0, "base_port": 80, "colour": "blue"}, "churn")
    message = str(failure.value)
    assert "'churn'" in message
    assert "replicas: Input should be greater than or equal to 1 (got 0)" in message
    assert "base_port: Input should be greater than or equal to 1024 (got 80)" in message
    assert "colour: unknown field" in message and "Allowed fields: replicas" in message


@pytest.mark.parametrize(
    ("image", "expected"),
    [
        ("127.0.0.1:5000/lepton/model-churn:3", ("127.0.0.1:5000/lepton/model-churn", "3")),
        ("lepton/model-churn:2026.05.1", ("lepton/model-churn", "2026.05.1")),
    ],
)
def test_tagged_images_split_into_repository_and_tag(image, expected):
    assert split_image_reference(image) == expected


@pytest.mark.parametrize(
    "image", ["127.0.0.1:5000/lepton/model-churn", "lepton/model-churn:latest", "lepton/model-churn@sha256:ab"]
)
def test_images_without_a_version_tag_are_refused(image):
    with pytest.raises(InvalidDeployConfig, match="image"):
        split_image_reference(image)


def test_pass_env_reports_all_missing_names_at_once():
    with pytest.raises(InvalidDeployConfig, match="A_MISSING, B_MISSING"):
        resolve_pass_env(["A_MISSING", "PRESENT", "B_MISSING"], {"PRESENT": "x"})
    assert resolve_pass_env(["PRESENT"], {"PRESENT": "x", "OTHER": "y"}) == {"PRESENT": "x"}


def test_port_reserved_for_the_target_cannot_be_passed():
    with pytest.raises(InvalidDeployConfig, match="'PORT' is set by the docker_host target"):
        parse_deploy_config({"pass_env": ["PORT"]}, "m")


def test_slots_alternate_and_interrupted_deploy_keeps_the_older_slot():
    assert plan_slots([]).new_slot == "blue"
    only_blue = plan_slots([record("blue", "2026-01-01T00:00:00")])
    assert (only_blue.serving_slot, only_blue.new_slot, only_blue.stale) == ("blue", "green", [])
    newer_green = record("green", "2026-01-02T00:00:00")
    both = plan_slots([record("blue", "2026-01-01T00:00:00"), newer_green])
    assert (both.serving_slot, both.new_slot, both.stale) == ("blue", "green", [newer_green])


def test_blue_and_green_port_blocks_do_not_overlap():
    assert slot_ports("blue", 18080, 3) == [18080, 18081, 18082]
    assert slot_ports("green", 18080, 3) == [18180, 18181, 18182]
