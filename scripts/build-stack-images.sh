#!/usr/bin/env bash
# Build every image of the platform stack (deployments/platform/compose) from the debootstrapped bases,
# without pulling from any registry, and print their references as shell assignments:
#   LEPTON_STACK_DAGSTER_IMAGE=lepton/dagster:1.13.27-3f2a9c81d0e4
#   ...
# Usage: build-stack-images.sh [ENV_FILE]   (also writes the assignments to ENV_FILE when given)
#
# Reproducible and cached: each image is tagged <version>-<hash>, the hash covering exactly what it is
# built from (its Dockerfile and files, sent as a normalised tar, the base image's id and the build
# arguments). An image whose tag exists is not rebuilt, so a re-run after no change costs seconds; a
# changed source rebuilds only the images that contain it (and Docker's layer cache keeps the heavy
# dependency layers when only code changed). Python packages are pinned by
# deployments/platform/constraints.txt, Debian packages come from bookworm (+ security) and every image
# is labelled with the exact version it holds (org.opencontainers.image.version). The hash also covers
# this script (labels, flags), so changing it rebuilds — from Docker's layer cache, in seconds.
# LEPTON_STACK_REBUILD=1 rebuilds all; older tags of the same images are removed (when unused).
set -euo pipefail
cd "$(dirname "$0")/.."
ENV_FILE="${1:-}"
PY_BASE="${LEPTON_BASE_IMAGE:-lepton/python-base:bookworm}"
SLIM_BASE="${LEPTON_SLIM_BASE_IMAGE:-lepton/debian-base:bookworm}"
DAGSTER_VERSION="$(sed -n 's/^DAGSTER = "\(.*\)".*/\1/p' setup.py)"
DAGSTER_LIBS_VERSION="$(sed -n 's/^DAGSTER_LIBS = "\(.*\)".*/\1/p' setup.py)"
LEPTON_VERSION="$(sed -n 's/^ *version="\(.*\)",.*/\1/p' setup.py | head -1)"
MOTO_VERSION="$(sed -n 's/^moto==//p' deployments/platform/constraints.txt)"
[ -n "$DAGSTER_VERSION" ] && [ -n "$DAGSTER_LIBS_VERSION" ] && [ -n "$LEPTON_VERSION" ] && [ -n "$MOTO_VERSION" ] || {
  echo "build-stack-images: cannot read the versions from setup.py / constraints.txt" >&2; exit 2; }

docker image inspect "$PY_BASE" >/dev/null 2>&1 || bash scripts/build-base-image.sh "$PY_BASE" >&2
docker image inspect "$SLIM_BASE" >/dev/null 2>&1 || bash scripts/build-base-image.sh "$SLIM_BASE" ca-certificates >&2

WORK="$(mktemp -d /tmp/lepton-stack-build.XXXXXX)"
WHEEL_SERVER_PID=""
trap '[ -z "$WHEEL_SERVER_PID" ] || kill "$WHEEL_SERVER_PID" 2>/dev/null; rm -rf "$WORK"' EXIT

# Python packages: the host resolves and fetches wheels (pip as configured here, cached across runs in
# $WHEEL_CACHE, sdists built once into wheels), and a loopback HTTP server hands them to the builds. The
# images install with --no-index from it: no index access, no proxy CA and no wheel files in any layer.
WHEEL_CACHE="${LEPTON_WHEEL_CACHE:-/var/cache/lepton/wheels}"
WHEELS_PORT="${LEPTON_WHEELS_PORT:-18099}"
WHEELS_URL="http://127.0.0.1:$WHEELS_PORT/"
HOST_PYTHON="${LEPTON_PYTHON:-$PWD/.venv/bin/python}"
[ -x "$HOST_PYTHON" ] || HOST_PYTHON=/work/main/.venv/bin/python
[ -x "$HOST_PYTHON" ] || HOST_PYTHON=python3
mkdir -p "$WHEEL_CACHE"
"$HOST_PYTHON" - >"$WORK/requirements.txt" <<'PY'
# setup.py's install_requires without installing anything: the package's own dependencies.
import setuptools
setuptools.setup = lambda **kw: print("\n".join(kw["install_requires"]))
exec(open("setup.py").read())
PY
cat >>"$WORK/requirements.txt" <<REQ
dagster-webserver==$DAGSTER_VERSION
dagster-graphql==$DAGSTER_VERSION
dagster-postgres==$DAGSTER_LIBS_VERSION
dagster-docker==$DAGSTER_LIBS_VERSION
dagster-aws==$DAGSTER_LIBS_VERSION
psycopg2-binary
moto[server,s3]==$MOTO_VERSION
setuptools
wheel
REQ
started=$SECONDS
# A stamp per exact requirement set: an unchanged set skips pip's resolution (~10 s) entirely.
WHEELS_STAMP="$WHEEL_CACHE/.complete-$(cat "$WORK/requirements.txt" deployments/platform/constraints.txt | sha256sum | cut -c1-16)"
if [ -f "$WHEELS_STAMP" ]; then
  echo "build-stack-images: wheels in $WHEEL_CACHE up to date" >&2
else
echo "build-stack-images: wheels into $WHEEL_CACHE" >&2
"$HOST_PYTHON" -m pip wheel -q --disable-pip-version-check -w "$WHEEL_CACHE" --find-links "$WHEEL_CACHE" \
  -c deployments/platform/constraints.txt -r "$WORK/requirements.txt" >"$WORK/wheels.log" 2>&1 \
  || { tail -30 "$WORK/wheels.log" >&2; echo "build-stack-images: cannot fetch the wheels" >&2; exit 1; }
echo "build-stack-images: wheels ready in $((SECONDS - started)) s" >&2
touch "$WHEELS_STAMP"
fi
"$HOST_PYTHON" -m http.server --bind 127.0.0.1 --directory "$WHEEL_CACHE" "$WHEELS_PORT" >"$WORK/wheel-server.log" 2>&1 &
WHEEL_SERVER_PID=$!
for _ in $(seq 1 50); do curl -fsS -o /dev/null "$WHEELS_URL" 2>/dev/null && break; sleep 0.1; done
curl -fsS -o /dev/null "$WHEELS_URL" || { echo "build-stack-images: wheel server on $WHEELS_URL did not start (port taken? set LEPTON_WHEELS_PORT)" >&2; cat "$WORK/wheel-server.log" >&2; exit 1; }
ASSIGNMENTS=()

# build NAME REPO VERSION BASE DOCKERFILE FILES... [-- BUILD_ARGS...]
build() {
  local name="$1" repo="$2" version="$3" base="$4" dockerfile="$5"; shift 5
  local files=() args=()
  while [ "$#" -gt 0 ] && [ "$1" != "--" ]; do files+=("$1"); shift; done
  [ "$#" -gt 0 ] && shift && args=("$@")
  local context="$WORK/$name.tar"
  # Normalised: same files and modes → same bytes → same hash, whatever the checkout's mtimes/owner.
  tar --sort=name --mtime='2000-01-01 00:00Z' --owner=0 --group=0 --numeric-owner --mode='u+rw,go-w' \
    --exclude=__pycache__ --exclude='*.pyc' --exclude='*.egg-info' -cf "$context" "$dockerfile" "${files[@]}"
  local base_id hash tag
  base_id="$(docker image inspect -f '{{.Id}}' "$base")"
  # This script is part of the recipe (labels, build flags): a change to it is a change to every image.
  hash="$( { sha256sum <"$context"; echo "$base_id"; printf '%s\n' "${args[@]}"; sha256sum <"$0"; } | sha256sum | cut -c1-12)"
  tag="$repo:$version-$hash"
  if [ "${LEPTON_STACK_REBUILD:-0}" != 1 ] && docker image inspect "$tag" >/dev/null 2>&1; then
    echo "build-stack-images: $tag up to date" >&2
  else
    local started=$SECONDS build_args=(--build-arg "BASE_IMAGE=$base" --build-arg "WHEELS_URL=$WHEELS_URL")
    for a in "${args[@]}"; do build_args+=(--build-arg "$a"); done
    echo "build-stack-images: building $tag" >&2
    if ! docker build -q --force-rm --network host -f "$dockerfile" "${build_args[@]}" \
        --label "org.lepton.stack.image=$name" --label "org.lepton.stack.input-hash=$hash" --label "org.opencontainers.image.version=$version" \
        -t "$tag" - <"$context" >"$WORK/$name.log" 2>&1; then
      tail -40 "$WORK/$name.log" >&2; echo "build-stack-images: $name failed" >&2; exit 1
    fi
    # Debian/PyPI packages whose exact version is known only once installed record it in the image.
    local exact
    exact="$(docker run --rm --entrypoint cat "$tag" /etc/lepton-image-version 2>/dev/null || true)"
    if [ -n "$exact" ]; then
      printf 'FROM %s\nLABEL org.opencontainers.image.version="%s"\n' "$tag" "$exact" | docker build -q -t "$tag" - >/dev/null 2>&1
    fi
    echo "build-stack-images: built $tag in $((SECONDS - started)) s ($(docker image inspect -f '{{.Size}}' "$tag" | awk '{printf "%.0f MB", $1/1e6}'))" >&2
  fi
  # Older builds of the same image: removed when no container uses them.
  docker image ls --filter "label=org.lepton.stack.image=$name" --format '{{.Repository}}:{{.Tag}}' \
    | grep -vx "$tag" | grep -v '<none>' | xargs -r docker image rm >/dev/null 2>&1 || true
  local var="LEPTON_STACK_$(echo "$name" | tr 'a-z-' 'A-Z_')_IMAGE"
  ASSIGNMENTS+=("$var=$tag")
  printf -v "$var" '%s' "$tag"
}

build dagster lepton/dagster "$DAGSTER_VERSION" "$PY_BASE" deployments/platform/images/dagster/Dockerfile \
  deployments/platform/constraints.txt -- "DAGSTER_VERSION=$DAGSTER_VERSION" "DAGSTER_LIBS_VERSION=$DAGSTER_LIBS_VERSION"
build user-code lepton/pipelines "$LEPTON_VERSION" "$LEPTON_STACK_DAGSTER_IMAGE" deployments/platform/Dockerfile \
  setup.py deployments/collector/requirements.txt deployments/platform/constraints.txt lepton_pipelines deployments/model-service \
  -- "DAGSTER_IMAGE=$LEPTON_STACK_DAGSTER_IMAGE"
build collector lepton/collector "$LEPTON_VERSION" "$PY_BASE" deployments/collector/Dockerfile \
  setup.py README.md deployments/collector/requirements.txt lepton_pipelines
build postgres lepton/stack-postgres 15 "$SLIM_BASE" deployments/platform/images/postgres/Dockerfile \
  deployments/platform/images/postgres/entrypoint.sh -- PG_MAJOR=15
build mosquitto lepton/stack-mosquitto 2.0 "$SLIM_BASE" deployments/platform/images/mosquitto/Dockerfile \
  deployments/platform/images/mosquitto/entrypoint.sh deployments/mosquitto/mosquitto.conf deployments/mosquitto/acl \
  deployments/mosquitto/create-passwd.sh
build registry lepton/stack-registry 2 "$SLIM_BASE" deployments/platform/images/registry/Dockerfile \
  deployments/platform/images/registry/config.yml
build s3 lepton/stack-s3 "moto-$MOTO_VERSION" "$PY_BASE" deployments/platform/images/s3/Dockerfile \
  deployments/platform/constraints.txt deployments/platform/images/s3/s3-init.py -- "MOTO_VERSION=$MOTO_VERSION"

printf '%s\n' "${ASSIGNMENTS[@]}"
if [ -n "$ENV_FILE" ]; then
  printf '# Written by scripts/build-stack-images.sh: the exact images of this checkout.\n' >"$ENV_FILE"
  printf '%s\n' "${ASSIGNMENTS[@]}" >>"$ENV_FILE"
fi
