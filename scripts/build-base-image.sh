#!/usr/bin/env bash
# Build a minimal Debian bookworm image with python3 + pip without pulling from any registry:
# debootstrap into a folder, then `docker import`. The model-service Dockerfile takes it as
# its BASE_IMAGE build argument (default python:3.11-slim where a registry is reachable).
set -euo pipefail
IMAGE="${1:-lepton/python-base:bookworm}"
ROOT="$(mktemp -d /tmp/lepton-rootfs.XXXXXX)"
trap 'rm -rf "$ROOT"' EXIT
echo "build-base-image: debootstrap bookworm into $ROOT"
debootstrap --variant=minbase --include=python3,python3-pip,python3-venv,ca-certificates \
  bookworm "$ROOT" http://deb.debian.org/debian >"$ROOT.log" 2>&1 || { tail -30 "$ROOT.log" >&2; exit 1; }
# Keep the image small: no apt lists or caches.
rm -rf "$ROOT"/var/lib/apt/lists/* "$ROOT"/var/cache/apt/*.bin "$ROOT"/var/cache/apt/archives/*.deb
tar -C "$ROOT" -c . | docker import \
  --change 'ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' \
  --change 'ENV LANG=C.UTF-8' \
  --change 'CMD ["python3"]' - "$IMAGE" >/dev/null
rm -f "$ROOT.log"
echo "build-base-image: $IMAGE ready"
