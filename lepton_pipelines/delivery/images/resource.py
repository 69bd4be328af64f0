"""Dagster resource around ModelImageBuilder; configured from environment variables.

Variables (all optional except the registry at build time):
  LEPTON_IMAGE_REGISTRY              registry host[:port] images are pushed to (fixed contract)
  LEPTON_BASE_IMAGE                  base image build argument (default python:3.11-slim)
  LEPTON_IMAGE_PYTHON_VERSION        CPython of the base image, for wheel selection (default 3.11)
  LEPTON_WHEEL_CACHE                 host wheel cache (default ~/.cache/lepton-wheels)
  LEPTON_MODEL_SERVICE_DIR           deployments/model-service of this repo unless set
  LEPTON_IMAGE_REGISTRY_USERNAME / LEPTON_IMAGE_REGISTRY_PASSWORD   registry credentials (secrets)
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path

from dagster import ConfigurableResource, EnvVar
from pydantic import Field

from .builder import (
    DEFAULT_BASE_IMAGE,
    DEFAULT_SERVICE_DIR,
    DEFAULT_WHEEL_CACHE,
    ImageBuildError,
    ModelImageBuilder,
    WheelTarget,
)


class ImageBuilderResource(ConfigurableResource):
    """Builds and pushes ``<registry>/lepton/model-<name>:<version>`` images."""

    registry: str = Field(default="", description="Registry host[:port]; env LEPTON_IMAGE_REGISTRY.")
    base_image: str = Field(default=DEFAULT_BASE_IMAGE, description="BASE_IMAGE build argument.")
    python_version: str = Field(default="3.11", description="CPython version of the base image (wheel tags).")
    wheel_cache_dir: str = Field(default=str(DEFAULT_WHEEL_CACHE), description="Host cache of downloaded wheels.")
    service_dir: str = Field(default=str(DEFAULT_SERVICE_DIR), description="Dockerfile + app of the model service.")
    registry_username: str = Field(default="", description="Registry user; set through EnvVar only.")
    registry_password: str = Field(default="", description="Registry password; set through EnvVar only.")
    smoke_ready_timeout_seconds: float = Field(default=120.0, description="How long the smoke test waits for /ready.")

    def registry_auth(self) -> dict[str, str] | None:
        if not self.registry_username:
            return None
        return {"username": self.registry_username, "password": self.registry_password}

    def get_builder(self) -> ModelImageBuilder:
        if not self.registry:
            raise ImageBuildError("no image registry configured: set LEPTON_IMAGE_REGISTRY (e.g. 127.0.0.1:5000)")
        return ModelImageBuilder(
            registry=self.registry,
            base_image=self.base_image,
            service_dir=Path(self.service_dir),
            wheel_cache_dir=Path(self.wheel_cache_dir),
            wheel_target=WheelTarget(python_version=self.python_version),
            registry_auth=self.registry_auth(),
        )


_ENV_FIELDS = {
    "registry": "LEPTON_IMAGE_REGISTRY",
    "base_image": "LEPTON_BASE_IMAGE",
    "python_version": "LEPTON_IMAGE_PYTHON_VERSION",
    "wheel_cache_dir": "LEPTON_WHEEL_CACHE",
    "service_dir": "LEPTON_MODEL_SERVICE_DIR",
    "registry_username": "LEPTON_IMAGE_REGISTRY_USERNAME",
    "registry_password": "LEPTON_IMAGE_REGISTRY_PASSWORD",
}


def image_builder_from_env(environ: Mapping[str, str] | None = None) -> ImageBuilderResource:
    """The resource with every variable that is set bound as a Dagster EnvVar (read at run time,
    shown as env-sourced in the UI, never stored as a value); unset ones keep their defaults."""
    env = os.environ if environ is None else environ
    return ImageBuilderResource(**{field: EnvVar(var) for field, var in _ENV_FIELDS.items() if env.get(var)})
