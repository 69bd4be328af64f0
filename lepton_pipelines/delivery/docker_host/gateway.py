"""The model gateway container: one HAProxy per model, reloaded gracefully at every cutover.

The container (``lepton-gateway-<model>``) runs HAProxy in master-worker mode with the same hardening
as the model service. Its config lives on a Docker volume, written through the Docker API (so this
works against a remote engine too). A cutover is:

1. write the new config (backends = the new slot's verified replicas) and check it with
   ``haproxy -c`` inside the container; a config that does not parse is put back and never loaded;
2. SIGUSR2 to the master: a new worker takes over the listening sockets, the old worker stops
   accepting, finishes the requests it has and exits — no connection is refused at any moment;
3. wait until the master has counted the reload, a fresh connection through the public port is
   answered by the new version, and no old worker remains — only then may the old replicas stop.
"""

from __future__ import annotations

import hashlib
import io
import json
import ssl
import tarfile
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from dataclasses import asdict
from pathlib import Path

import docker
from docker.errors import APIError, ImageNotFound, NotFound
from docker.models.containers import Container

from lepton_pipelines.delivery.hardening import HARDENING

from .config import GatewayConfig
from .gateway_config import (
    API_KEY_VARIABLE,
    CONFIG_DIR,
    CONFIG_FILE,
    RUN_DIR,
    TLS_PEM_VARIABLE,
    Backend,
    GatewaySpec,
    render_haproxy_config,
)
from .slots import LABEL_MODEL_NAME, LABEL_TARGET, TARGET_NAME

GATEWAY_DIR = Path(__file__).resolve().parents[3] / "deployments" / "gateway"
GATEWAY_REPOSITORY = "lepton/model-gateway"
LABEL_ROLE = "org.lepton.deploy.role"
LABEL_GATEWAY_SPEC = "org.lepton.gateway.spec"
ROLE_GATEWAY = "gateway"
_NO_PROXY = urllib.request.build_opener(urllib.request.ProxyHandler({}))


class GatewayError(RuntimeError):
    """The gateway could not be built, started or switched; the message says which step."""


def gateway_container_name(model_name: str) -> str:
    return f"lepton-gateway-{model_name}"


def gateway_volume_name(model_name: str) -> str:
    return f"lepton-gateway-{model_name}-config"


def gateway_image_tag(base_image: str, source_dir: Path = GATEWAY_DIR) -> str:
    """Content-addressed tag: a change of the gateway sources or base image is a new image."""
    digest = hashlib.sha256(base_image.encode())
    for name in sorted(p.name for p in source_dir.iterdir() if p.is_file()):
        digest.update(name.encode() + b"\0" + (source_dir / name).read_bytes())
    return f"{GATEWAY_REPOSITORY}:haproxy-{digest.hexdigest()[:12]}"


def ensure_gateway_image(client: docker.DockerClient, settings: GatewayConfig, log: Callable[[str], None]) -> str:
    if settings.image:
        try:
            client.images.get(settings.image)
        except ImageNotFound:
            log(f"pulling gateway image {settings.image}")
            try:
                client.images.pull(settings.image)
            except APIError as error:
                raise GatewayError(
                    f"pulling gateway image {settings.image} failed: {error.explanation or error}"
                ) from error
        return settings.image
    tag = gateway_image_tag(settings.base_image)
    try:
        client.images.get(tag)
        return tag
    except ImageNotFound:
        pass
    log(f"building gateway image {tag} from {GATEWAY_DIR} on {settings.base_image}")
    try:
        # Host network: apt-get inside the build reaches the Debian mirror like the host does.
        client.images.build(
            path=str(GATEWAY_DIR),
            tag=tag,
            buildargs={"BASE_IMAGE": settings.base_image},
            network_mode="host",
            pull=False,
            rm=True,
            forcerm=True,
        )
    except (APIError, docker.errors.BuildError) as error:
        raise GatewayError(f"building the gateway image {tag} on {settings.base_image} failed: {error}") from error
    return tag


def public_host(bind_address: str) -> str:
    return "127.0.0.1" if bind_address in ("0.0.0.0", "") else bind_address


class Gateway:
    """One model's gateway on one Docker engine."""

    def __init__(
        self,
        client: docker.DockerClient,
        spec: GatewaySpec,
        settings: GatewayConfig,
        secrets: dict[str, str],
        log: Callable[[str], None],
    ):
        self.client = client
        self.spec = spec
        self.settings = settings
        self.secrets = secrets  # {LEPTON_GATEWAY_API_KEY: …, LEPTON_GATEWAY_TLS_PEM: …} as enabled
        self.log = log
        self.name = gateway_container_name(spec.model_name)
        self.volume = gateway_volume_name(spec.model_name)

    @property
    def url(self) -> str:
        return f"{'https' if self.spec.tls else 'http'}://{public_host(self.spec.bind_address)}:{self.spec.port}"

    def find(self) -> Container | None:
        try:
            return self.client.containers.get(self.name)
        except NotFound:
            return None

    def current_config(self) -> str | None:
        container = self.find()
        if container is None:
            return None
        try:
            stream, _ = container.get_archive(CONFIG_FILE)
        except NotFound:
            return None
        with tarfile.open(fileobj=io.BytesIO(b"".join(stream))) as archive:
            member = archive.extractfile(archive.getmembers()[0])
            return member.read().decode() if member else None

    def route_to(self, backends: list[Backend], version: str, image: str) -> dict[str, object]:
        """Make the gateway send every new request to ``backends``; returns what happened."""
        config = render_haproxy_config(self.spec, backends, version)
        container = self.find()
        if container is not None and not self._matches(container, image):
            self.log(f"gateway {self.name}: settings, image or secrets changed; recreating it (brief interruption)")
            container.remove(force=True)
            container = None
        if container is None or container.status != "running":
            if container is not None:
                container.remove(force=True)
            self._create(config, image)
            return {"gateway": self.name, "action": "started", "url": self.url}
        previous = self.current_config()
        before = self._status(container)
        self._write_config(container, config)
        check = container.exec_run(["haproxy", "-c", "-q", "-f", CONFIG_FILE])
        if check.exit_code != 0:
            if previous is not None:
                self._write_config(container, previous)
            raise GatewayError(
                f"gateway {self.name}: the new HAProxy config does not parse, the old one stays: "
                f"{check.output.decode(errors='replace').strip()[-600:]}"
            )
        started = time.monotonic()
        container.kill(signal="SIGUSR2")
        self._wait_reloaded(container, before["reloads"], version)
        drained = self._wait_old_workers_gone(container)
        self.log(
            f"gateway {self.name} reloaded in {time.monotonic() - started:.2f}s: {len(backends)} backend(s), "
            f"version {version}; old workers drained: {drained}"
        )
        return {
            "gateway": self.name,
            "action": "reloaded",
            "url": self.url,
            "old_workers_drained": drained,
            "reload_seconds": round(time.monotonic() - started, 2),
        }

    def remove(self) -> None:
        container = self.find()
        if container is not None:
            container.remove(force=True)
        try:
            self.client.volumes.get(self.volume).remove(force=True)
        except NotFound:
            pass

    # -- internals ----------------------------------------------------------------------------
    def _spec_label(self, image: str) -> str:
        return json.dumps({**asdict(self.spec), "image": image}, sort_keys=True)

    def _environment(self) -> dict[str, str]:
        return dict(self.secrets)

    def _matches(self, container: Container, image: str) -> bool:
        """Same settings, image and secret values (a rotated key or certificate needs a new container)."""
        if container.labels.get(LABEL_GATEWAY_SPEC) != self._spec_label(image):
            return False
        env = dict(item.split("=", 1) for item in container.attrs.get("Config", {}).get("Env") or [] if "=" in item)
        wanted = self._environment()
        return all(env.get(key) == wanted.get(key) for key in (API_KEY_VARIABLE, TLS_PEM_VARIABLE))

    def _create(self, config: str, image: str) -> None:
        try:
            self.client.volumes.get(self.volume)
        except NotFound:
            self.client.volumes.create(
                self.volume, labels={LABEL_TARGET: TARGET_NAME, LABEL_MODEL_NAME: self.spec.model_name}
            )
        container = self.client.containers.create(
            image,
            name=self.name,
            network_mode="host",
            environment=self._environment(),
            labels={
                LABEL_TARGET: TARGET_NAME,
                LABEL_ROLE: ROLE_GATEWAY,
                f"{LABEL_MODEL_NAME}.gateway": self.spec.model_name,
                LABEL_GATEWAY_SPEC: self._spec_label(image),
            },
            volumes={self.volume: {"bind": CONFIG_DIR, "mode": "rw"}},
            restart_policy={"Name": "unless-stopped"},
            **HARDENING.docker_run_kwargs(extra_tmpfs={RUN_DIR: HARDENING.private_tmpfs_options()}),
        )
        self._write_config(container, config)
        container.start()
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            container.reload()
            if container.status != "running":
                logs = container.logs(tail=20).decode(errors="replace")
                raise GatewayError(f"gateway {self.name} exited at start ({container.status}):\n{logs}")
            if self._answers():
                self.log(f"gateway {self.name} started at {self.url}")
                return
            time.sleep(0.1)
        raise GatewayError(
            f"gateway {self.name} did not answer at {self.url} within 20s:\n"
            + container.logs(tail=20).decode(errors="replace")
        )

    def _write_config(self, container: Container, config: str) -> None:
        payload = config.encode()
        buffer = io.BytesIO()
        with tarfile.open(fileobj=buffer, mode="w") as archive:
            info = tarfile.TarInfo("haproxy.cfg")
            info.size, info.mode, info.mtime = len(payload), 0o644, int(time.time())
            archive.addfile(info, io.BytesIO(payload))
        if not container.put_archive(CONFIG_DIR, buffer.getvalue()):
            raise GatewayError(f"gateway {self.name}: writing {CONFIG_FILE} failed")

    def _status(self, container: Container) -> dict:
        result = container.exec_run(["lepton-gateway-ctl", "status"])
        if result.exit_code != 0:
            raise GatewayError(
                f"gateway {self.name}: cannot read the HAProxy master's state: "
                f"{result.output.decode(errors='replace').strip()[-400:]}"
            )
        return json.loads(result.output)

    def _try_status(self, container: Container) -> dict | None:
        """The master's state, or None while it re-executes itself during a reload (socket not up yet)."""
        try:
            return self._status(container)
        except (GatewayError, ValueError):
            return None

    def _wait_reloaded(self, container: Container, reloads_before: int, version: str) -> None:
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            status = self._try_status(container)
            if status and status["reloads"] > reloads_before and status["workers"]:
                if status["failed_reloads"]:
                    raise GatewayError(f"gateway {self.name}: HAProxy reported a failed reload: {status}")
                if self._answers(version):
                    return
            time.sleep(0.05)
        raise GatewayError(
            f"gateway {self.name}: version {version} not answering through {self.url} 20s after the reload"
        )

    def _wait_old_workers_gone(self, container: Container) -> bool:
        deadline = time.monotonic() + self.settings.drain_timeout_seconds
        while time.monotonic() < deadline:
            status = self._try_status(container)
            if status is not None and not status["old_workers"]:
                return True
            time.sleep(0.1)
        self.log(
            f"gateway {self.name}: old HAProxy workers still finishing after "
            f"{self.settings.drain_timeout_seconds:g}s; HAProxy stops them by hard-stop-after"
        )
        return False

    def _answers(self, version: str | None = None) -> bool:
        """A fresh connection to the public port: /ready answered 200 (by ``version``, when given)."""
        request = urllib.request.Request(f"{self.url}/ready")
        if API_KEY_VARIABLE in self.secrets:
            request.add_header("X-API-Key", self.secrets[API_KEY_VARIABLE])
        # The deployer checks its own loopback gateway: the certificate is the operator's concern.
        opener = _NO_PROXY
        if self.spec.tls:
            opener = urllib.request.build_opener(
                urllib.request.ProxyHandler({}), urllib.request.HTTPSHandler(context=ssl._create_unverified_context())
            )
        try:
            with opener.open(request, timeout=2) as response:
                body = response.read()
        except urllib.error.HTTPError as error:
            return version is None and error.code in (401, 503)  # up, though no backend is ready yet
        except (urllib.error.URLError, OSError):
            return False
        if version is None:
            return True
        try:
            return json.loads(body).get("version") == version
        except ValueError:
            return False
