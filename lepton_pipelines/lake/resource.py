"""The lake as a Dagster resource: the one place the lake's location is configured.

Assets that write beside their main output (quarantine, quality history, model registry, dashboards)
take it directly; the lake IO managers and the backup resource take it as a nested resource, so the
lake URL and S3 endpoint are set once (``lepton_pipelines.resources``) and every part agrees.
"""

from __future__ import annotations

from dagster import ConfigurableResource
from pydantic import Field

from lepton_pipelines.lake.store import Lake


class LakeResource(ConfigurableResource):
    """Unset fields fall back to ``LEPTON_LAKE_URL`` (else ``$DAGSTER_HOME/lake``, else ``./.lake``) and
    ``LEPTON_S3_ENDPOINT_URL``, read by ``lake.store`` when the lake is opened."""

    url: str | None = Field(default=None, description="Lake root: local folder or s3://bucket/prefix")
    s3_endpoint_url: str | None = Field(default=None, description="S3 endpoint override (MinIO, moto)")

    def get(self) -> Lake:
        return Lake(self.url, self.s3_endpoint_url)
