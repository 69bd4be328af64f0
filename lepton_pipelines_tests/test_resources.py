"""Resources per environment, in one place: what each environment requires, and one lake for every part."""

from __future__ import annotations

import dagster as dg
import pandas as pd
import pytest

from lepton_pipelines.lake.resource import LakeResource
from lepton_pipelines.resources import EnvironmentConfigError, build_resources, current_environment


def test_the_environment_defaults_to_local_and_unknown_names_are_refused():
    assert current_environment({}) == "local"
    assert current_environment({"LEPTON_ENV": "Production"}) == "production"
    with pytest.raises(EnvironmentConfigError, match="LEPTON_ENV='staging'.*local, ci, production"):
        current_environment({"LEPTON_ENV": "staging"})


def test_production_refuses_to_load_without_its_lake_backup_and_registry():
    with pytest.raises(EnvironmentConfigError) as error:
        build_resources("production", {"LEPTON_LAKE_URL": "s3://lake/prod"})
    assert (
        "LEPTON_BACKUP_URL, LEPTON_IMAGE_REGISTRY" in str(error.value)
        and "LEPTON_LAKE_URL" not in str(error.value).split("needs")[1]
    )
    with pytest.raises(EnvironmentConfigError, match="LEPTON_ENV=ci needs LEPTON_LAKE_URL"):
        build_resources("ci", {})


def test_set_variables_are_bound_as_env_vars_and_the_lake_is_one_object():
    environ = {
        "LEPTON_LAKE_URL": "s3://lake/prod",
        "LEPTON_BACKUP_URL": "s3://backup/prod",
        "LEPTON_IMAGE_REGISTRY": "registry:5000",
        "LEPTON_IMAGE_REGISTRY_PASSWORD": "hunter2",
    }
    resources = build_resources("production", environ)
    lake = resources["lake"]
    assert (
        resources["lake_io"].lake is lake
        and resources["analytics_io"].lake is lake
        and resources["lake_backup"].lake is lake
    )
    assert isinstance(lake.url, dg.EnvVar) and lake.url.env_var_name == "LEPTON_LAKE_URL"
    assert lake.s3_endpoint_url is None  # unset: the default AWS endpoint, not an empty override
    assert isinstance(resources["lake_backup"].backup_url, dg.EnvVar)
    assert "hunter2" not in repr(resources["image_builder"])
    local = build_resources("local", {})
    assert local["lake"].url is None and local["lake_backup"].backup_url is None


def test_the_io_manager_writes_where_the_environment_says(tmp_path, monkeypatch):
    monkeypatch.setenv("LEPTON_LAKE_URL", str(tmp_path / "ci-lake"))
    resources = build_resources("ci", {"LEPTON_LAKE_URL": str(tmp_path / "ci-lake")})

    @dg.asset(key=["orders", "clean"], io_manager_key="lake_io")
    def orders() -> pd.DataFrame:
        return pd.DataFrame({"id": [1, 2]})

    @dg.asset(deps=[orders])
    def where(lake: LakeResource) -> str:  # the plain resource sees the same lake
        return lake.get().url

    result = dg.materialize([orders, where], resources={"lake": resources["lake"], "lake_io": resources["lake_io"]})
    assert result.success and result.output_for_node("where") == str(tmp_path / "ci-lake")
    assert (tmp_path / "ci-lake" / "clean" / "orders" / "data.parquet").exists()
