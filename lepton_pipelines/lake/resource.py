"""The lake as a Dagster resource, for assets that write beside their main output (quarantine,
quality history, model registry, backups)."""
from __future__ import annotations

from dagster import ConfigurableResource
from pydantic import Field

from lepton_pipelines.lake.store import Lake


class LakeResource(ConfigurableResource):
    url: str | None = Field(default=None, description="Lake root: local folder or s3://bucket/prefix")
    s3_endpoint_url: str | None = Field(default=None, description="S3 endpoint override (MinIO, moto)")

    def get(self) -> Lake:
        return Lake(self.url, self.s3_endpoint_url)
