"""The model gateway's HAProxy configuration, as a pure function of where the replicas are.

One gateway per model gives clients one stable address (``gateway.port``) while blue/green replicas
come and go on their own ports behind it. Security lives here, at the edge:

* ``/predict``, ``/ready`` need the API key (header ``X-API-Key`` or ``Authorization: Bearer``),
  compared with ``$LEPTON_GATEWAY_API_KEY`` — HAProxy expands the variable when it reads the config,
  so the key is never written to any file.
* TLS from ``$LEPTON_GATEWAY_TLS_PEM`` (written by the entrypoint to a private tmpfs).
* ``/metrics`` is never served on the public port: Prometheus scrapes the replicas on the host's
  loopback, and HAProxy's own metrics on ``metrics_port``, bound to 127.0.0.1 only.
* ``/health`` stays open for load balancers; every other path is a 404.
"""

from __future__ import annotations

from dataclasses import dataclass

CONFIG_DIR = "/etc/lepton-gateway"
CONFIG_FILE = f"{CONFIG_DIR}/haproxy.cfg"
RUN_DIR = "/run/lepton-gateway"
TLS_PEM_PATH = f"{RUN_DIR}/tls.pem"
API_KEY_VARIABLE = "LEPTON_GATEWAY_API_KEY"
TLS_PEM_VARIABLE = "LEPTON_GATEWAY_TLS_PEM"
# Old workers still finishing requests after a reload are stopped after this long at the latest.
HARD_STOP_AFTER_S = 30


@dataclass(frozen=True)
class Backend:
    name: str  # container name: shows in HAProxy logs and stats
    host: str
    port: int


@dataclass(frozen=True)
class GatewaySpec:
    model_name: str
    bind_address: str
    port: int
    metrics_port: int
    tls: bool
    api_key: bool


def render_haproxy_config(spec: GatewaySpec, backends: list[Backend], version: str) -> str:
    if not backends:
        raise ValueError(f"gateway of model {spec.model_name!r}: at least one backend is needed")
    tls = f" ssl crt {TLS_PEM_PATH} alpn http/1.1" if spec.tls else ""
    scheme = "https" if spec.tls else "http"
    lines = [
        f"# lepton model gateway for {spec.model_name}: serving version {version}. Written by the docker_host target;",
        "# edits are replaced on the next deploy.",
        "global",
        "    log stdout format raw local0 notice",
        f"    hard-stop-after {HARD_STOP_AFTER_S}s",
        "    ssl-default-bind-options ssl-min-ver TLSv1.2",
        "    tune.ssl.default-dh-param 2048",
        "",
        "defaults",
        "    mode http",
        "    log global",
        "    option httplog",
        "    option dontlognull",
        "    timeout connect 2s",
        "    timeout client 30s",
        "    timeout server 30s",
        "    timeout http-request 10s",
        "    timeout http-keep-alive 10s",
        # A replica that refuses or drops a connection is retried on another one (idempotent or not:
        # the request never reached a model), so one dying replica costs latency, not errors.
        "    retries 3",
        "    option redispatch 1",
        "    retry-on conn-failure empty-response response-timeout 503",
        "",
        "frontend public",
        f"    bind {spec.bind_address}:{spec.port}{tls}",
        f"    http-response set-header X-Lepton-Model {spec.model_name}",
        "    acl path_health path /health",
        "    acl path_served path /predict /ready",
        "    acl path_metrics path_beg /metrics",
        "    http-request deny deny_status 404 if path_metrics",
        "    http-request deny deny_status 404 unless path_health or path_served",
    ]
    if spec.api_key:
        lines += [
            f'    acl key_header req.hdr(x-api-key) -m str "${{{API_KEY_VARIABLE}}}"',
            f'    acl key_bearer req.hdr(authorization) -m str "Bearer ${{{API_KEY_VARIABLE}}}"',
            "    http-request return status 401 content-type application/json hdr WWW-Authenticate "
            f'"Bearer realm=\\"{spec.model_name}\\"" string "{{\\"error\\": \\"missing or wrong API key: send header '
            f'X-API-Key\\"}}" if !path_health !key_header !key_bearer',
        ]
    lines += [
        "    default_backend replicas",
        "",
        "backend replicas",
        "    balance roundrobin",
        "    option httpchk GET /ready",
        "    http-check expect status 200",
        "    default-server inter 1s fastinter 250ms fall 2 rise 1",
    ]
    lines += [f"    server {b.name} {b.host}:{b.port} check" for b in backends]
    lines += [
        "",
        "frontend metrics",
        f"    bind 127.0.0.1:{spec.metrics_port}",
        "    http-request use-service prometheus-exporter if { path /metrics }",
        "    http-request return status 200 content-type text/plain string ok if { path /health }",
        "",
    ]
    lines.insert(2, f"# clients: {scheme}://{spec.bind_address}:{spec.port}/predict")
    return "\n".join(lines)
