#!/usr/bin/env bash
# Build a minimal Debian bookworm image without pulling from any registry: debootstrap into a folder,
# then `docker import`.
#   build-base-image.sh [IMAGE] [PACKAGES]
# Default: lepton/python-base:bookworm with python3 + pip + venv (the model-service, gateway, collector
# and Dagster images build on it). The platform stack's non-Python services (Postgres, Mosquitto,
# registry) use a slimmer base without Python:
#   build-base-image.sh lepton/debian-base:bookworm ca-certificates
# Both keep no apt lists, caches, man pages or docs, and tell dpkg not to install docs later either.
set -euo pipefail
IMAGE="${1:-lepton/python-base:bookworm}"
PACKAGES="${2:-python3,python3-pip,python3-venv,ca-certificates}"
ROOT="$(mktemp -d /tmp/lepton-rootfs.XXXXXX)"
trap 'rm -rf "$ROOT" "$ROOT.log"' EXIT
echo "build-base-image: debootstrap bookworm ($PACKAGES) into $ROOT"
debootstrap --variant=minbase --include="$PACKAGES" \
  bookworm "$ROOT" http://deb.debian.org/debian >"$ROOT.log" 2>&1 || { tail -30 "$ROOT.log" >&2; exit 1; }
# Security updates for every package installed later in derived images.
echo "deb http://deb.debian.org/debian-security bookworm-security main" >>"$ROOT/etc/apt/sources.list"
cat >"$ROOT/etc/dpkg/dpkg.cfg.d/01-lepton-nodoc" <<'CFG'
path-exclude /usr/share/doc/*
path-exclude /usr/share/man/*
path-exclude /usr/share/info/*
path-exclude /usr/share/locale/*
path-include /usr/share/locale/locale.alias
path-exclude /usr/share/lintian/*
CFG
cat >"$ROOT/etc/apt/apt.conf.d/01-lepton-slim" <<'CFG'
APT::Install-Recommends "false";
APT::Install-Suggests "false";
CFG
# Keep the image small: no apt lists or caches, no docs.
rm -rf "$ROOT"/var/lib/apt/lists/* "$ROOT"/var/cache/apt/*.bin "$ROOT"/var/cache/apt/archives/*.deb \
  "$ROOT"/usr/share/doc/* "$ROOT"/usr/share/man/* "$ROOT"/usr/share/info/* "$ROOT"/var/log/*.log
find "$ROOT/usr/share/locale" -mindepth 1 -maxdepth 1 ! -name locale.alias -exec rm -rf {} + 2>/dev/null || true
case ",$PACKAGES," in *,python3,*) CMD='["python3"]' ;; *) CMD='["bash"]' ;; esac
tar -C "$ROOT" -c . | docker import \
  --change 'ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' \
  --change 'ENV LANG=C.UTF-8' \
  --change "LABEL org.lepton.base.packages=$PACKAGES" \
  --change "CMD $CMD" - "$IMAGE" >/dev/null
echo "build-base-image: $IMAGE ready"
