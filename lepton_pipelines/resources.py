"""Every resource of the code location, chosen per environment in one place.

``LEPTON_ENV`` picks the environment (``local`` by default, ``ci``, ``production``). What differs
between them is what must be named explicitly:

============  ==================================================================================
local         nothing: the lake defaults to ``$DAGSTER_HOME/lake`` (or ``./.lake``), backups and
              image pushes stay off until their variables are set
ci            ``LEPTON_LAKE_URL``: a CI run writes into the lake it was given, never into a default
              folder shared with other runs
production    ``LEPTON_LAKE_URL``, ``LEPTON_BACKUP_URL``, ``LEPTON_IMAGE_REGISTRY``: a pod that lost
              its lake URL would otherwise write the lake onto its own ephemeral disk
============  ==================================================================================

A required variable that is unset fails the code location's load, naming the variables. Every set
variable is bound as a ``dg.EnvVar``: Dagster reads it at run time and shows only its name in the UI,
so secrets (registry credentials, the MQTT URL with its password, AWS keys in the standard
variables) never enter config, run storage or the UI. The lake is configured once: the IO managers
and the backup resource hold the very same ``LakeResource`` object, and ``Definitions.merge`` sees
the same object under each key.

Only the assembly (``lepton_pipelines.definitions``) imports this module: the folders' definitions
name the resource keys their assets and jobs need and never import each other's resources, so the
packages keep their one-way dependencies (see ARCHITECTURE.md).
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import Any

import dagster as dg

from lepton_pipelines.analytics.assets import IO_MANAGER_KEY as ANALYTICS_IO_KEY
from lepton_pipelines.analytics.assets import AnalyticsIOManager
from lepton_pipelines.delivery.images.resource import image_builder_from_env
from lepton_pipelines.governance.resource import GreatExpectationsResource
from lepton_pipelines.iot.resource import MqttBrokerResource
from lepton_pipelines.lake.io_manager import LakeIOManager
from lepton_pipelines.lake.resource import LakeResource
from lepton_pipelines.platform.backup_jobs import LakeBackupResource

ENV_VAR = "LEPTON_ENV"
ENVIRONMENTS = ("local", "ci", "production")
DEFAULT_ENVIRONMENT = "local"
REQUIRED_VARIABLES: dict[str, tuple[str, ...]] = {
    "local": (),
    "ci": ("LEPTON_LAKE_URL",),
    "production": ("LEPTON_LAKE_URL", "LEPTON_BACKUP_URL", "LEPTON_IMAGE_REGISTRY"),
}


class EnvironmentConfigError(ValueError):
    """``LEPTON_ENV`` names no environment, or a variable the environment requires is unset."""


def current_environment(environ: Mapping[str, str] | None = None) -> str:
    env = os.environ if environ is None else environ
    name = (env.get(ENV_VAR) or DEFAULT_ENVIRONMENT).strip().lower()
    if name not in ENVIRONMENTS:
        raise EnvironmentConfigError(f"{ENV_VAR}={name!r} is not an environment; allowed: {', '.join(ENVIRONMENTS)}")
    return name


def build_resources(environment: str, environ: Mapping[str, str] | None = None) -> dict[str, Any]:
    """The resources of ``environment``, with the variables of ``environ`` (default: the process's)."""
    env = os.environ if environ is None else environ
    missing = [name for name in REQUIRED_VARIABLES[environment] if not env.get(name)]
    if missing:
        raise EnvironmentConfigError(
            f"{ENV_VAR}={environment} needs {', '.join(missing)} set (see README, 'Environments'); "
            f"or run with {ENV_VAR}=local"
        )

    def bound(name: str) -> dg.EnvVar | None:
        return dg.EnvVar(name) if env.get(name) else None

    # Unset here means "the lake's own default" (lake.store.default_lake_url): a folder under DAGSTER_HOME.
    lake = LakeResource(url=bound("LEPTON_LAKE_URL"), s3_endpoint_url=bound("LEPTON_S3_ENDPOINT_URL"))
    return {
        "lake": lake,
        "lake_io": LakeIOManager(lake=lake),
        ANALYTICS_IO_KEY: AnalyticsIOManager(lake=lake),
        "lake_backup": LakeBackupResource(lake=lake, backup_url=bound("LEPTON_BACKUP_URL")),
        "gx": GreatExpectationsResource(),
        "mqtt": MqttBrokerResource(),
        "image_builder": image_builder_from_env(env),
    }


ENVIRONMENT = current_environment()
RESOURCES = build_resources(ENVIRONMENT)


def bind_resources(defs: dg.Definitions) -> dg.Definitions:
    """A folder's ``Definitions`` with this environment's resources bound, loadable on its own (tests,
    benchmarks); the code location itself binds them once in ``lepton_pipelines.definitions``."""
    return dg.Definitions.merge(defs, dg.Definitions(resources=RESOURCES))
