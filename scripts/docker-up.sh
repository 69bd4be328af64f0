#!/usr/bin/env bash
# Bring up the real container parts the delivery tests and benchmarks use, on one machine,
# without any external registry:
#   * Debian's docker.io engine (dockerd), started when not answering;
#   * Debian's docker-registry on 127.0.0.1:5000 (the LEPTON_IMAGE_REGISTRY of tests), and docker-compose
#     for bin/stack (the platform stack: its images are built by scripts/build-stack-images.sh);
#   * a local Python base image built with debootstrap + `docker import` (no pull needed);
#   * the model gateway image (HAProxy from Debian's package, deployments/gateway) on that base.
# Idempotent: every step is skipped when its result is already there.
set -euo pipefail

BASE_IMAGE="${LEPTON_BASE_IMAGE:-lepton/python-base:bookworm}"
REGISTRY_ADDR="${LEPTON_REGISTRY_ADDR:-127.0.0.1:5000}"
STATE_DIR="${LEPTON_DOCKER_STATE:-/var/lib/lepton-ci}"
mkdir -p "$STATE_DIR"

need_pkgs=()
command -v dockerd >/dev/null || need_pkgs+=(docker.io)
command -v docker-registry >/dev/null || [ -x /usr/bin/docker-registry ] || need_pkgs+=(docker-registry)
command -v debootstrap >/dev/null || need_pkgs+=(debootstrap)
command -v rsync >/dev/null || need_pkgs+=(rsync)  # bench/backup.py's baseline
command -v docker-compose >/dev/null || need_pkgs+=(docker-compose)  # bin/stack (the platform stack and its test)
if [ "${#need_pkgs[@]}" -gt 0 ]; then
  echo "docker-up: installing ${need_pkgs[*]}"
  apt-get update -q >/dev/null
  DEBIAN_FRONTEND=noninteractive apt-get install -y -q "${need_pkgs[@]}" >/dev/null
fi

if ! docker info >/dev/null 2>&1; then
  echo "docker-up: starting dockerd"
  nohup dockerd --host=unix:///var/run/docker.sock >"$STATE_DIR/dockerd.log" 2>&1 &
  for _ in $(seq 1 60); do docker info >/dev/null 2>&1 && break; sleep 1; done
  docker info >/dev/null 2>&1 || { echo "docker-up: dockerd did not start, see $STATE_DIR/dockerd.log" >&2; tail -20 "$STATE_DIR/dockerd.log" >&2; exit 1; }
fi

if ! curl -fsS "http://$REGISTRY_ADDR/v2/" >/dev/null 2>&1; then
  echo "docker-up: starting docker-registry on $REGISTRY_ADDR"
  mkdir -p "$STATE_DIR/registry"
  cat >"$STATE_DIR/registry.yml" <<YML
version: 0.1
storage:
  filesystem:
    rootdirectory: $STATE_DIR/registry
  delete:
    enabled: true
http:
  addr: $REGISTRY_ADDR
YML
  nohup /usr/bin/docker-registry serve "$STATE_DIR/registry.yml" >"$STATE_DIR/registry.log" 2>&1 &
  for _ in $(seq 1 30); do curl -fsS "http://$REGISTRY_ADDR/v2/" >/dev/null 2>&1 && break; sleep 0.5; done
  curl -fsS "http://$REGISTRY_ADDR/v2/" >/dev/null || { echo "docker-up: registry did not start" >&2; tail -20 "$STATE_DIR/registry.log" >&2; exit 1; }
fi

if ! docker image inspect "$BASE_IMAGE" >/dev/null 2>&1; then
  bash "$(dirname "$0")/build-base-image.sh" "$BASE_IMAGE"
fi
# The gateway image the docker_host target uses (it builds it itself when missing; CI builds it here
# once). Its tag is content-addressed by the Python side, so ask it for the tag.
REPO_ROOT="$(cd "$(dirname "$0")/.." && pwd)"
PYTHON="${LEPTON_PYTHON:-$REPO_ROOT/.venv/bin/python}"
[ -x "$PYTHON" ] || PYTHON=/work/main/.venv/bin/python
if [ -x "$PYTHON" ]; then
  GATEWAY_IMAGE="$(cd "$REPO_ROOT" && PYTHONPATH="$REPO_ROOT" "$PYTHON" -c \
    "from lepton_pipelines.delivery.docker_host.gateway import gateway_image_tag; print(gateway_image_tag('$BASE_IMAGE'))")"
  if ! docker image inspect "$GATEWAY_IMAGE" >/dev/null 2>&1; then
    echo "docker-up: building gateway image $GATEWAY_IMAGE"
    docker build -q --network host --build-arg "BASE_IMAGE=$BASE_IMAGE" -t "$GATEWAY_IMAGE" "$REPO_ROOT/deployments/gateway" >/dev/null
  fi
fi
echo "docker-up: engine, registry $REGISTRY_ADDR, base image $BASE_IMAGE and gateway image ready"
