"""Schema validation of rendered manifests against the Kubernetes OpenAPI schemas, offline.

Runs before every apply and in dry-run mode, so a manifest the API server would reject (a typo'd
field, a wrong type) fails the run with the kind, name and field path before any object changes.
"""

from __future__ import annotations

from typing import Any

import kubernetes_validate
from kubernetes_validate.utils import VersionNotSupportedError, all_versions
from packaging.version import Version

from .config import DeployConfigError


def known_kubernetes_versions() -> list[str]:
    """Every Kubernetes version the installed kubernetes-validate has schemas for, oldest first
    (its own list repeats each version once per schema flavour: plain and strict)."""
    return sorted(set(all_versions()), key=Version)


def newest_kubernetes_version() -> str:
    return kubernetes_validate.latest_version()


def validate_manifests(manifests: list[dict[str, Any]], kubernetes_version: str | None = None) -> str:
    """Strictly validate (unknown fields are errors) and return the schema version used."""
    version = kubernetes_version or newest_kubernetes_version()
    used = version
    for manifest in manifests:
        where = f"{manifest.get('kind', '?')}/{manifest.get('metadata', {}).get('name', '?')}"
        try:
            used = kubernetes_validate.validate(manifest, version, strict=True)
        except kubernetes_validate.ValidationError as error:
            field = ".".join(str(part) for part in error.path) or "(root)"
            raise DeployConfigError(
                f"rendered {where} is not valid for Kubernetes {error.version}: {field}: {error.message}"
            ) from None
        except kubernetes_validate.SchemaNotFoundError as error:
            raise DeployConfigError(f"rendered {where}: {error.message}") from None
        except VersionNotSupportedError:
            raise DeployConfigError(
                f"Kubernetes version {version!r} is not known to kubernetes-validate; "
                f"known: {', '.join(known_kubernetes_versions())}"
            ) from None
    return used
