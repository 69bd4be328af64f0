"""The model gateway (HAProxy container from Debian's package) on the real Docker engine: one stable
TLS address per model, API key checked at the edge, /metrics never public, and graceful reloads —
clients polling through a deploy, a failed deploy and a rollback see no refused connection and no 5xx."""

from __future__ import annotations

import http.client
import io
import json
import ssl
import tarfile
import threading
import time
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

import pytest

from lepton_pipelines.delivery.docker_host import DockerHostTarget, InvalidDeployConfig
from lepton_pipelines.delivery.docker_host.gateway import gateway_container_name
from lepton_pipelines.delivery.docker_host.gateway_config import CONFIG_FILE
from lepton_pipelines.delivery.hardening import hardening_problems
from lepton_pipelines.delivery.targets import DeployFailed, DeployRequest

from .test_deploy import SAMPLE_ROWS, deployed

pytestmark = pytest.mark.timeout(300)


def gateway_request(model_name: str, image: str, base_port: int, **config: Any) -> DeployRequest:
    return DeployRequest(
        model_name=model_name,
        model_version=image.rsplit(":", 1)[1],
        image=image,
        config={
            "base_port": base_port,
            "replicas": 2,
            "health_timeout_seconds": 30,
            "health_poll_interval_seconds": 0.2,
            "stop_timeout_seconds": 2,
            **config,
        },
        sample_rows=SAMPLE_ROWS,
    )


def tls_context(ca_file: str) -> ssl.SSLContext:
    context = ssl.create_default_context(cafile=ca_file)  # verify the gateway's certificate for 127.0.0.1
    return context


def call(port: int, ca_file: str, method: str, path: str, key: str | None, body: Any = None) -> tuple[int, bytes]:
    connection = http.client.HTTPSConnection("127.0.0.1", port, timeout=10, context=tls_context(ca_file))
    try:
        headers = {"Content-Type": "application/json"}
        if key is not None:
            headers["X-API-Key"] = key
        connection.request(method, path, body=None if body is None else json.dumps(body), headers=headers)
        response = connection.getresponse()
        return response.status, response.read()
    finally:
        connection.close()


@dataclass
class Poller:
    """Clients of the stable address during deploys: one opening a fresh TLS connection per request,
    one reusing a keep-alive connection (reconnecting only when the server closes it)."""

    port: int
    ca_file: str
    key: str
    counts: Counter = field(default_factory=Counter)
    versions: Counter = field(default_factory=Counter)
    errors: list[str] = field(default_factory=list)
    _stop: threading.Event = field(default_factory=threading.Event)
    _threads: list[threading.Thread] = field(default_factory=list)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def start(self) -> Poller:
        for keep_alive in (False, True):
            thread = threading.Thread(target=self._run, args=(keep_alive,), daemon=True)
            thread.start()
            self._threads.append(thread)
        return self

    def stop(self) -> None:
        self._stop.set()
        for thread in self._threads:
            thread.join(timeout=30)

    def _record(self, outcome: str, detail: str = "", version: str | None = None) -> None:
        with self._lock:
            self.counts[outcome] += 1
            if version:
                self.versions[version] += 1
            if detail and len(self.errors) < 20:
                self.errors.append(detail)

    def _run(self, keep_alive: bool) -> None:
        context = tls_context(self.ca_file)
        connection: http.client.HTTPSConnection | None = None
        body = json.dumps({"rows": SAMPLE_ROWS})
        headers = {"Content-Type": "application/json", "X-API-Key": self.key}
        while not self._stop.is_set():
            if connection is None or not keep_alive:
                connection = http.client.HTTPSConnection("127.0.0.1", self.port, timeout=10, context=context)
            try:
                connection.request("POST", "/predict", body=body, headers=headers)
                response = connection.getresponse()
                payload = response.read()
                if response.status >= 500:
                    self._record("5xx", f"HTTP {response.status}: {payload[:200]!r}")
                elif response.status != 200:
                    self._record("other_status", f"HTTP {response.status}: {payload[:200]!r}")
                else:
                    self._record("ok", version=json.loads(payload)["version"])
                if response.will_close or not keep_alive:
                    connection.close()
                    connection = None
            except ConnectionRefusedError as error:
                self._record("refused", repr(error))
                connection = None
            except (http.client.RemoteDisconnected, ConnectionResetError, ssl.SSLEOFError) as error:
                if keep_alive:
                    # On reload the old worker closes idle keep-alive connections; a request sent on one at
                    # that instant meets the close, and the client reconnects (as urllib3/requests do).
                    self._record("keepalive_reconnect", f"keep-alive: {error!r}")
                else:
                    self._record("reset", repr(error))
                connection = None
            except OSError as error:
                self._record("other_error", f"{'keep-alive' if keep_alive else 'fresh'}: {error!r}")
                connection = None
            time.sleep(0.005)


def test_cutover_failed_deploy_and_rollback_refuse_no_request(
    docker_client, test_images, model_name, base_port, gateway_secrets, capsys
):
    target = DockerHostTarget()
    first = target.deploy(gateway_request(model_name, test_images["good-v1"], base_port), log=lambda _: None)
    port = base_port + 200
    assert first.details["endpoints"] == [f"https://127.0.0.1:{port}"]
    assert target.status(model_name, {"base_port": base_port}).gateway_url == f"https://127.0.0.1:{port}"

    poller = Poller(port, gateway_secrets["ca_file"], gateway_secrets["api_key"]).start()
    time.sleep(1)
    steps = []
    try:
        cutover = target.deploy(gateway_request(model_name, test_images["good-v2"], base_port), log=lambda _: None)
        steps.append(("cutover v1→v2", cutover.details["gateway"]))
        with pytest.raises(DeployFailed):  # never ready: rolled back before the gateway is touched
            target.deploy(
                gateway_request(model_name, test_images["bad-v3"], base_port, health_timeout_seconds=2),
                log=lambda _: None,
            )
        with pytest.raises(DeployFailed):  # model failed to load: terminal, rolled back at once
            target.deploy(gateway_request(model_name, test_images["bad-v5"], base_port), log=lambda _: None)
        rollback = target.deploy(gateway_request(model_name, test_images["good-v1"], base_port), log=lambda _: None)
        steps.append(("rollback v2→v1", rollback.details["gateway"]))
        time.sleep(1)
    finally:
        poller.stop()

    counts = dict(poller.counts)
    with capsys.disabled():
        print(
            f"\ngateway cutover poll figures: {counts}; answers by version: {dict(poller.versions)}; "
            f"reloads: {[(name, detail.get('reload_seconds')) for name, detail in steps]}"
        )
    assert counts.get("refused", 0) == 0, poller.errors
    assert counts.get("5xx", 0) == 0, poller.errors
    assert counts.get("reset", 0) == 0 and counts.get("other_error", 0) == 0, poller.errors
    assert counts.get("other_status", 0) == 0, poller.errors
    assert counts["ok"] > 100
    assert counts.get("keepalive_reconnect", 0) <= len(steps)  # at most one closed idle connection per reload
    assert poller.versions["good-v1"] > 0 and poller.versions["good-v2"] > 0
    assert "bad-v3" not in poller.versions and "bad-v5" not in poller.versions
    assert all(detail["action"] == "reloaded" and detail["old_workers_drained"] for _, detail in steps)
    # One gateway container the whole time, and the replicas now serving are v1's.
    assert sorted(c.labels["org.lepton.model.version"] for c in deployed(docker_client, model_name)) == ["good-v1"] * 2
    status, body = call(
        port, gateway_secrets["ca_file"], "POST", "/predict", gateway_secrets["api_key"], {"rows": SAMPLE_ROWS}
    )
    assert status == 200 and json.loads(body)["version"] == "good-v1"


def test_gateway_needs_the_key_hides_metrics_and_runs_hardened(
    docker_client, test_images, model_name, base_port, gateway_secrets
):
    result = DockerHostTarget().deploy(
        gateway_request(model_name, test_images["good-v1"], base_port, replicas=1), log=lambda _: None
    )
    port, ca, key = base_port + 200, gateway_secrets["ca_file"], gateway_secrets["api_key"]

    assert call(port, ca, "POST", "/predict", key, {"rows": SAMPLE_ROWS})[0] == 200
    assert call(port, ca, "POST", "/predict", None, {"rows": SAMPLE_ROWS})[0] == 401
    assert call(port, ca, "POST", "/predict", "wrong-key-of-enough-length", {"rows": SAMPLE_ROWS})[0] == 401
    assert call(port, ca, "GET", "/ready", None)[0] == 401
    assert call(port, ca, "GET", "/health", None)[0] == 200  # load balancers may check liveness
    assert call(port, ca, "GET", "/metrics", key)[0] == 404  # never public, not even with the key
    assert call(port, ca, "GET", "/admin", key)[0] == 404
    with pytest.raises((ssl.SSLError, ConnectionResetError, http.client.RemoteDisconnected)):
        plain = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
        plain.request("GET", "/health")
        status = plain.getresponse().status
        raise ssl.SSLError(f"plain HTTP got {status}")  # HAProxy answers plain HTTP on a TLS port with 400

    # Metrics are scraped on the host's loopback only: the replica's own, and HAProxy's.
    replica = result.details["replica_endpoints"][0]
    assert replica.startswith("http://127.0.0.1:")
    scrape = http.client.HTTPConnection("127.0.0.1", base_port + 201, timeout=5)
    scrape.request("GET", "/metrics")
    assert b"haproxy_process" in scrape.getresponse().read()

    gateway = docker_client.containers.get(gateway_container_name(model_name))
    assert hardening_problems(gateway.attrs) == []
    stream, _ = gateway.get_archive(CONFIG_FILE)
    with tarfile.open(fileobj=io.BytesIO(b"".join(stream))) as archive:
        text = archive.extractfile(archive.getmembers()[0]).read().decode()
    assert "${LEPTON_GATEWAY_API_KEY}" in text and key not in text  # the key is only in the environment
    assert f"127.0.0.1:{base_port}" in text and CONFIG_FILE.endswith("haproxy.cfg")


def test_gateway_secrets_are_required_unless_explicitly_waived(
    docker_client, test_images, model_name, base_port, monkeypatch
):
    monkeypatch.delenv("LEPTON_GATEWAY_API_KEY", raising=False)
    monkeypatch.delenv("LEPTON_GATEWAY_TLS_PEM", raising=False)
    with pytest.raises(InvalidDeployConfig) as failure:
        DockerHostTarget().deploy(gateway_request(model_name, test_images["good-v1"], base_port), log=lambda _: None)
    assert "LEPTON_GATEWAY_API_KEY" in str(failure.value) and "LEPTON_GATEWAY_TLS_PEM" in str(failure.value)
    assert deployed(docker_client, model_name) == []

    monkeypatch.setenv("LEPTON_GATEWAY_API_KEY", "short")
    with pytest.raises(InvalidDeployConfig, match="shorter than 16") as short:
        DockerHostTarget().deploy(
            gateway_request(model_name, test_images["good-v1"], base_port, gateway={"tls_pem_env": None}),
            log=lambda _: None,
        )
    assert "'short'" not in str(short.value)

    plain = DockerHostTarget().deploy(
        gateway_request(
            model_name,
            test_images["good-v1"],
            base_port,
            replicas=1,
            gateway={"tls_pem_env": None, "api_key_env": None},
        ),
        log=lambda _: None,
    )
    assert plain.details["endpoints"] == [f"http://127.0.0.1:{base_port + 200}"]
    connection = http.client.HTTPConnection("127.0.0.1", base_port + 200, timeout=5)
    connection.request(
        "POST", "/predict", body=json.dumps({"rows": SAMPLE_ROWS}), headers={"Content-Type": "application/json"}
    )
    assert json.loads(connection.getresponse().read())["version"] == "good-v1"
