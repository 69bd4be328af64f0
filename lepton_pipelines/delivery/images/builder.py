"""Build, tag, label and push a model-service image with the Docker SDK.

A version is built locally, smoke-tested (by the job, see smoke.py), and only then pushed; the
registry tag of a model version is written once: ``push`` asks the registry first and refuses to
overwrite a tag that already names a different image (``ImageVersionExists``), so
``<registry>/lepton/model-<name>:<version>`` means the same bytes forever and a deploy can pin it
by digest.

Wheels are resolved on the host (``pip download`` for the image's Python and platform, cached
under ~/.cache/lepton-wheels) and shipped in the build context, so ``docker build`` itself needs
no network and installs exactly the library versions the model was trained with. Resolution is
offline-first: a rebuild whose wheels are cached never touches an index.
"""

from __future__ import annotations

import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # the Docker SDK is imported by the build step, not at definitions load
    import docker

from upath import UPath

from .context import (
    assemble_build_context,
    image_labels,
    image_reference,
    image_repository,
    pinned_requirements,
    read_model_card,
)
from .registry import RegistryClient, RegistryError, RemoteImage

DEFAULT_BASE_IMAGE = "python:3.11-slim"
DEFAULT_WHEEL_CACHE = Path("~/.cache/lepton-wheels")
DEFAULT_SERVICE_DIR = Path(__file__).resolve().parents[3] / "deployments" / "model-service"
# Docker API read timeout: one RUN step (pip installing scipy) can be silent for minutes.
DOCKER_API_TIMEOUT_S = 900


class ImageBuildError(RuntimeError):
    """Resolving wheels, building or pushing failed; the message carries the tool's own words."""


class ImageVersionExists(ImageBuildError):
    """The registry already holds this model version's tag for a different image; it is not overwritten."""


@dataclass(frozen=True)
class WheelTarget:
    """Which wheels fit the image: its CPython version and manylinux platform.

    pip expands ``manylinux2014`` to older tags but not ``manylinux_2_X``, so every glibc minor up
    to the base image's (bookworm: 2.36) is listed explicitly.
    """

    python_version: str = "3.11"
    arch: str = "x86_64"
    glibc_max_minor: int = 36

    def pip_args(self) -> list[str]:
        digits = self.python_version.replace(".", "")
        args = [
            "--only-binary=:all:",
            "--python-version",
            self.python_version,
            "--implementation",
            "cp",
            "--abi",
            f"cp{digits}",
        ]
        for minor in range(self.glibc_max_minor, 16, -1):
            args += ["--platform", f"manylinux_2_{minor}_{self.arch}"]
        args += ["--platform", f"manylinux2014_{self.arch}"]
        return args


def _pip_download(
    requirements: list[str], dest: Path, target: WheelTarget, offline_from: Path | None
) -> subprocess.CompletedProcess:
    command = [
        sys.executable,
        "-m",
        "pip",
        "download",
        "--disable-pip-version-check",
        "--no-input",
        "-d",
        str(dest),
        *target.pip_args(),
    ]
    if offline_from is not None:
        command += ["--no-index", "--find-links", str(offline_from)]
    return subprocess.run(command + requirements, capture_output=True, text=True, timeout=1800)


def resolve_wheels(requirements: list[str], dest: Path, cache_dir: Path, target: WheelTarget) -> list[Path]:
    """Put into ``dest`` every wheel needed to install ``requirements`` (exact pins) for ``target``."""
    cache_dir.mkdir(parents=True, exist_ok=True)
    dest.mkdir(parents=True, exist_ok=True)
    offline = _pip_download(requirements, dest, target, offline_from=cache_dir)
    if offline.returncode != 0:
        # Something is not cached yet: fetch into the cache (already cached files are not fetched again).
        online = _pip_download(requirements, cache_dir, target, offline_from=None)
        if online.returncode != 0:
            raise ImageBuildError(
                f"cannot get wheels for {' '.join(requirements)} (CPython {target.python_version},"
                f" manylinux {target.arch}); pip says:\n{_tail(online.stderr or online.stdout)}"
            )
        offline = _pip_download(requirements, dest, target, offline_from=cache_dir)
        if offline.returncode != 0:
            raise ImageBuildError(f"wheel cache {cache_dir} is inconsistent; pip says:\n{_tail(offline.stderr)}")
    return sorted(dest.glob("*.whl"))


def _tail(text: str, lines: int = 30) -> str:
    kept = [line for line in text.splitlines() if "is ignored: it is neither a file nor a directory" not in line]
    return "\n".join(kept[-lines:])


@dataclass(frozen=True)
class BuiltImage:
    """A built image; after ``push`` also where it lives. ``digest`` is ``<repository>@sha256:...``
    (pull by it to be exact; empty until pushed). ``already_in_registry``: the tag held this very
    image before (a rebuild that reproduced it), so nothing was written."""

    reference: str
    repository: str
    tag: str
    digest: str
    image_id: str
    size_bytes: int
    base_image: str
    labels: dict[str, str]
    lock: list[str]
    library_versions: dict[str, str]
    sample_input: list[dict[str, Any]] = field(default_factory=list)
    build_seconds: float = 0.0
    push_seconds: float = 0.0
    already_in_registry: bool = False


class ModelImageBuilder:
    def __init__(
        self,
        registry: str,
        base_image: str = DEFAULT_BASE_IMAGE,
        service_dir: Path = DEFAULT_SERVICE_DIR,
        wheel_cache_dir: Path = DEFAULT_WHEEL_CACHE,
        wheel_target: WheelTarget = WheelTarget(),
        registry_auth: dict[str, str] | None = None,
        client: docker.DockerClient | None = None,
    ):
        if not registry:
            raise ImageBuildError("no image registry configured: set LEPTON_IMAGE_REGISTRY (e.g. 127.0.0.1:5000)")
        self.registry = registry
        self.base_image = base_image
        self.service_dir = service_dir
        self.wheel_cache_dir = wheel_cache_dir.expanduser()
        self.wheel_target = wheel_target
        self.registry_auth = registry_auth
        if client is None:
            import docker

            client = docker.from_env(timeout=DOCKER_API_TIMEOUT_S)
        self.client = client

    def build(
        self,
        artifact_dir: Path | UPath,
        *,
        nocache: bool = False,
        push: bool = True,
        log: Callable[[str], None] = lambda line: None,
    ) -> BuiltImage:
        """Build ``<registry>/lepton/model-<name>:<version>`` from an artifact dir, push it, describe it."""
        card = read_model_card(artifact_dir)
        reference = image_reference(self.registry, card.name, card.version)
        with tempfile.TemporaryDirectory(prefix="lepton-image-") as scratch:
            wheels = resolve_wheels(
                pinned_requirements(card.library_versions),
                Path(scratch) / "resolved",
                self.wheel_cache_dir,
                self.wheel_target,
            )
            context = assemble_build_context(self.service_dir, artifact_dir, Path(scratch) / "context", wheels)
            labels = image_labels(card, self.base_image)
            started = time.perf_counter()
            image_id = self._docker_build(context.path, reference, labels, nocache, log)
            build_seconds = time.perf_counter() - started
        image = self.client.images.get(reference)
        built = BuiltImage(
            reference=reference,
            repository=image_repository(self.registry, card.name),
            tag=card.version,
            digest="",
            image_id=image_id,
            size_bytes=int(image.attrs.get("Size") or 0),
            base_image=self.base_image,
            labels=labels,
            lock=context.lock,
            library_versions=card.library_versions,
            sample_input=card.sample_input,
            build_seconds=build_seconds,
        )
        return self.push(built, log) if push else built

    def registry_client(self) -> RegistryClient:
        auth = self.registry_auth or {}
        return RegistryClient(self.registry, auth.get("username"), auth.get("password"))

    def push(self, built: BuiltImage, log: Callable[[str], None] = lambda line: None) -> BuiltImage:
        """Push a built (and smoke-tested) image under its version tag — once.

        The registry is asked first: a tag holding this very image (same config digest = image id)
        is left as it is; a tag holding another image is refused with ``ImageVersionExists``. After
        the push the tag is read back, so a concurrent writer cannot slip a different image in
        unnoticed.
        """
        registry = self.registry_client()
        path = built.repository.split("/", 1)[1]
        try:
            existing = registry.manifest(path, built.tag)
        except RegistryError as error:
            raise ImageBuildError(f"cannot check {built.reference} in the registry before pushing: {error}") from error
        if existing is not None:
            if existing.config_digest != built.image_id:
                raise ImageVersionExists(
                    f"{built.reference} already exists in the registry as {existing.repository}@{existing.digest} "
                    f"(image {existing.config_digest[:19] or existing.media_type}), and this build produced a "
                    "different "
                    f"image ({built.image_id[:19]}). Model versions are immutable: the tag is not overwritten. "
                    "Register "
                    "the change as a new model version (a new tag), or deploy the existing image by its digest."
                )
            log(f"{built.reference} already in the registry as {existing.digest}: same image, nothing pushed")
            return _with_remote(built, existing, push_seconds=0.0, already=True)
        started = time.perf_counter()
        pushed_digest = self._docker_push(built.repository, built.tag, log)
        push_seconds = time.perf_counter() - started
        try:
            landed = registry.manifest(path, built.tag)
        except RegistryError as error:
            raise ImageBuildError(f"pushed {built.reference} but cannot read it back: {error}") from error
        if (
            landed is None
            or landed.config_digest != built.image_id
            or (pushed_digest and landed.digest != pushed_digest)
        ):
            raise ImageVersionExists(
                f"pushed {built.reference} ({pushed_digest or built.image_id[:19]}), but the registry now holds "
                f"{landed.digest if landed else 'nothing'} under that tag: another build wrote it at the same time. "
                "Check which image the version should be before deploying it."
            )
        return _with_remote(built, landed, push_seconds=push_seconds, already=False)

    def _docker_build(
        self, context_dir: Path, reference: str, labels: dict[str, str], nocache: bool, log: Callable[[str], None]
    ) -> str:
        output: list[str] = []
        image_id = ""
        stream = self.client.api.build(
            path=str(context_dir),
            tag=reference,
            buildargs={"BASE_IMAGE": self.base_image},
            labels=labels,
            nocache=nocache,
            rm=True,
            forcerm=True,
            pull=False,
            decode=True,
        )
        for chunk in stream:
            if "error" in chunk:
                raise ImageBuildError(
                    f"docker build of {reference} (base {self.base_image}) failed: {chunk['error'].strip()}\n"
                    + "\n".join(output[-30:])
                )
            text = chunk.get("stream", "").rstrip()
            if text:
                output.append(text)
                if text.startswith("Step "):
                    log(text)
            image_id = chunk.get("aux", {}).get("ID", image_id)
        if not image_id:
            raise ImageBuildError(f"docker build of {reference} ended without an image id:\n" + "\n".join(output[-30:]))
        return image_id

    def _docker_push(self, repository: str, tag: str, log: Callable[[str], None]) -> str:
        """Push ``repository:tag``; returns the manifest digest the engine reports."""
        import docker.errors  # the Docker SDK: imported by the step that pushes, not at definitions load

        digest = ""
        try:
            stream = self.client.api.push(repository, tag=tag, stream=True, decode=True, auth_config=self.registry_auth)
            for chunk in stream:
                if "error" in chunk:
                    raise ImageBuildError(f"push of {repository}:{tag} failed: {chunk['error']}")
                if "aux" in chunk:
                    digest = chunk["aux"].get("Digest", digest)
                    log(f"pushed {repository}:{tag} {digest}")
        except docker.errors.APIError as exc:
            raise ImageBuildError(f"push of {repository}:{tag} failed: {exc}") from exc
        return digest


def _with_remote(built: BuiltImage, remote: RemoteImage, push_seconds: float, already: bool) -> BuiltImage:
    return replace(
        built, digest=f"{built.repository}@{remote.digest}", push_seconds=push_seconds, already_in_registry=already
    )
