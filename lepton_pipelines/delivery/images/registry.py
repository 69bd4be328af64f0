"""Read-only questions to an image registry over the OCI distribution API (``/v2/``).

The Docker engine can push and pull but cannot say *what* a registry holds under a tag before a push
overwrites it; this client can. It answers "does ``lepton/model-x:7`` exist, under which manifest
digest, and which image (config digest = the engine's image id) does it point to?" — what the build
needs to write a version tag only once, and the deploy needs to pin an image by digest.

Auth: anonymous, HTTP basic, or the registry token flow (``WWW-Authenticate: Bearer``) with the same
credentials the push uses. Loopback registries (127.0.0.1:5000, localhost) are spoken to over plain
HTTP, as the Docker engine does; every other registry over HTTPS.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # requests is imported when a registry is asked, not at definitions load
    import requests

MANIFEST_TYPES = ", ".join(
    [
        "application/vnd.docker.distribution.manifest.v2+json",
        "application/vnd.oci.image.manifest.v1+json",
        "application/vnd.docker.distribution.manifest.list.v2+json",
        "application/vnd.oci.image.index.v1+json",
    ]
)
_LOOPBACK = re.compile(r"^(localhost|127\.\d+\.\d+\.\d+|\[::1\])(:\d+)?$")
TIMEOUT_S = 30


class RegistryError(RuntimeError):
    """The registry could not be asked (unreachable, auth refused, unexpected answer)."""


@dataclass(frozen=True)
class RemoteImage:
    """What a registry holds under a tag: ``digest`` of the manifest (what to pin), ``config_digest``
    of the image config (equals the local image id of the image that was pushed; "" for an index)."""

    repository: str  # <registry>/<path>
    tag: str
    digest: str
    config_digest: str
    media_type: str

    @property
    def pinned(self) -> str:
        """``<registry>/<path>:<tag>@sha256:…`` — readable, and exact: the digest decides."""
        return f"{self.repository}:{self.tag}@{self.digest}"


def registry_base_url(registry: str) -> str:
    host = registry.rstrip("/")
    return f"{'http' if _LOOPBACK.match(host) else 'https'}://{host}"


def split_repository(repository: str) -> tuple[str, str]:
    """``127.0.0.1:5000/lepton/model-x`` → (``127.0.0.1:5000``, ``lepton/model-x``)."""
    registry, _, path = repository.partition("/")
    if not path:
        raise RegistryError(f"{repository!r} names no registry host: expected <registry>/<path>")
    return registry, path


class RegistryClient:
    def __init__(self, registry: str, username: str | None = None, password: str | None = None):
        self.registry = registry.rstrip("/")
        self.base_url = registry_base_url(self.registry)
        import requests

        self._auth = (username, password or "") if username else None
        self._session = requests.Session()
        self._session.trust_env = False  # a corporate proxy must never see a loopback registry call
        self._token: dict[str, str] = {}

    def manifest(self, path: str, tag: str) -> RemoteImage | None:
        """The image under ``<path>:<tag>``, or None when the tag does not exist."""
        url = f"{self.base_url}/v2/{path}/manifests/{tag}"
        response = self._get(url, path)
        if response.status_code == 404:
            return None
        if response.status_code != 200:
            raise RegistryError(
                f"registry {self.registry} answered HTTP {response.status_code} for {path}:{tag}: {response.text[:200]}"
            )
        digest = response.headers.get("Docker-Content-Digest", "")
        body = response.json()
        media_type = body.get("mediaType") or response.headers.get("Content-Type", "")
        if not digest:
            raise RegistryError(f"registry {self.registry} sent no Docker-Content-Digest for {path}:{tag}")
        config = (body.get("config") or {}).get("digest", "")
        return RemoteImage(f"{self.registry}/{path}", tag, digest, config, media_type)

    def _get(self, url: str, path: str) -> requests.Response:
        import requests

        headers = {"Accept": MANIFEST_TYPES}
        if path in self._token:
            headers["Authorization"] = f"Bearer {self._token[path]}"
        try:
            response = self._session.get(
                url, headers=headers, auth=None if path in self._token else self._auth, timeout=TIMEOUT_S
            )
            challenge = response.headers.get("WWW-Authenticate", "")
            if response.status_code == 401 and challenge.lower().startswith("bearer") and path not in self._token:
                self._token[path] = self._fetch_token(challenge, path)
                return self._get(url, path)
        except requests.RequestException as error:
            raise RegistryError(f"cannot reach registry {self.registry} ({self.base_url}): {error}") from None
        if response.status_code in (401, 403):
            raise RegistryError(
                f"registry {self.registry} refused access to {path} (HTTP {response.status_code}); set "
                "LEPTON_IMAGE_REGISTRY_USERNAME / LEPTON_IMAGE_REGISTRY_PASSWORD"
            )
        return response

    def _fetch_token(self, challenge: str, path: str) -> str:
        fields = dict(re.findall(r'(\w+)="([^"]*)"', challenge))
        if "realm" not in fields:
            raise RegistryError(f"registry {self.registry} sent a Bearer challenge without a realm: {challenge!r}")
        params = {"service": fields.get("service", ""), "scope": fields.get("scope", f"repository:{path}:pull")}
        answer = self._session.get(fields["realm"], params=params, auth=self._auth, timeout=TIMEOUT_S)
        if answer.status_code != 200:
            raise RegistryError(
                f"token service {fields['realm']} refused a pull token for {path}: HTTP {answer.status_code}"
            )
        body = answer.json()
        return body.get("token") or body.get("access_token") or ""
