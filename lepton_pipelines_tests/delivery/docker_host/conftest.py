"""Fixtures for the docker_host target tests: the real Docker engine, the registry on 127.0.0.1:5000,
and tiny model-service images with their behaviour baked in per tag.

Everything talks to 127.0.0.1 only: the containers run with host networking.
"""

from __future__ import annotations

import random
import shutil
import socket
import uuid
from collections.abc import Iterator
from pathlib import Path

import docker
import pytest

from lepton_pipelines.delivery.docker_host.gateway import gateway_container_name, gateway_volume_name
from lepton_pipelines.delivery.docker_host.slots import LABEL_MODEL_NAME

REGISTRY = "127.0.0.1:5000"
REPOSITORY = f"{REGISTRY}/lepton/model-testhost"
BASE_IMAGE = "lepton/python-base:bookworm"
# tag → behaviour of fake_model_service.py
IMAGE_BEHAVIOURS = {
    "good-v1": "healthy",
    "good-v2": "healthy",
    "bad-v3": "never_ready",
    "bad-v4": "crash",
    "bad-v5": "load_failed",
}

DOCKERFILE = f"""\
FROM {BASE_IMAGE}
ARG MODEL_VERSION
ARG BEHAVIOUR
LABEL org.lepton.model.version=$MODEL_VERSION
ENV MODEL_VERSION=$MODEL_VERSION BEHAVIOUR=$BEHAVIOUR
COPY fake_model_service.py /app/fake_model_service.py
CMD ["python3", "-u", "/app/fake_model_service.py"]
"""


@pytest.fixture(scope="module")
def docker_client() -> Iterator[docker.DockerClient]:
    client = docker.from_env()
    try:
        client.ping()
    except docker.errors.DockerException as error:
        pytest.fail(f"Docker engine not reachable ({error}); run `bash scripts/docker-up.sh` first")
    yield client
    client.close()


@pytest.fixture(scope="module")
def test_images(docker_client: docker.DockerClient, tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    """Build and push one image per behaviour; returns tag → full image reference in the registry."""
    context = tmp_path_factory.mktemp("fake-model-service")
    shutil.copy(Path(__file__).with_name("fake_model_service.py"), context / "fake_model_service.py")
    (context / "Dockerfile").write_text(DOCKERFILE)
    images = {}
    for tag, behaviour in IMAGE_BEHAVIOURS.items():
        reference = f"{REPOSITORY}:{tag}"
        docker_client.images.build(
            path=str(context), tag=reference, buildargs={"MODEL_VERSION": tag, "BEHAVIOUR": behaviour}, rm=True
        )
        errors = [
            line["error"]
            for line in docker_client.api.push(REPOSITORY, tag=tag, stream=True, decode=True)
            if "error" in line
        ]
        assert not errors, f"pushing {reference} to the test registry failed: {errors}"
        images[tag] = reference
    return images


def remove_model_containers(client: docker.DockerClient, model_name: str) -> None:
    for container in client.containers.list(all=True, filters={"label": f"{LABEL_MODEL_NAME}={model_name}"}):
        container.remove(force=True)
    for name, remove in (
        (gateway_container_name(model_name), client.containers.get),
        (gateway_volume_name(model_name), client.volumes.get),
    ):
        try:
            remove(name).remove(force=True)
        except docker.errors.NotFound:
            pass


@pytest.fixture
def model_name(docker_client: docker.DockerClient) -> Iterator[str]:
    """A model name no other test uses; every container deployed under it is removed afterwards."""
    name = f"testhost_{uuid.uuid4().hex[:10]}"
    yield name
    remove_model_containers(docker_client, name)


def _port_is_free(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        try:
            probe.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


@pytest.fixture
def base_port() -> int:
    """A base port whose blue (base..), green (base+100..) blocks and gateway ports (base+200, +201) are free."""
    for _ in range(200):
        candidate = random.randrange(20000, 40000)
        if all(_port_is_free(candidate + offset + i) for offset in (0, 100, 200) for i in range(4)):
            return candidate
    pytest.fail("no free port block found on 127.0.0.1")


@pytest.fixture(scope="session")
def tls_material(tmp_path_factory: pytest.TempPathFactory) -> tuple[str, Path]:
    """A self-signed certificate for 127.0.0.1: (PEM chain + key for the gateway, CA file for clients)."""
    import datetime
    import ipaddress

    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "lepton gateway test")])
    now = datetime.datetime.now(datetime.UTC)
    certificate = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]), critical=False)
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    cert_pem = certificate.public_bytes(serialization.Encoding.PEM).decode()
    key_pem = key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    ).decode()
    ca_file = tmp_path_factory.mktemp("tls") / "ca.pem"
    ca_file.write_text(cert_pem)
    return cert_pem + key_pem, ca_file


@pytest.fixture
def gateway_secrets(monkeypatch: pytest.MonkeyPatch, tls_material: tuple[str, Path]) -> dict[str, str]:
    """The gateway's secrets, only as environment variables of the deploying process."""
    key = f"test-key-{uuid.uuid4().hex}"
    monkeypatch.setenv("LEPTON_GATEWAY_API_KEY", key)
    monkeypatch.setenv("LEPTON_GATEWAY_TLS_PEM", tls_material[0])
    return {"api_key": key, "ca_file": str(tls_material[1])}
