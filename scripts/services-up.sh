#!/usr/bin/env bash
# Make sure the machine services the tests use are up (they normally are on this machine kind):
# PostgreSQL on 127.0.0.1:5432 and Mosquitto on 127.0.0.1:1883; and Debian's chromium for the UI test.
set -euo pipefail
port_open() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }
if ! port_open 5432; then
  echo "services-up: starting PostgreSQL"
  pg_ctlcluster --skip-systemctl-redirect "$(ls /etc/postgresql | head -1)" main start
fi
if ! port_open 1883; then
  echo "services-up: starting Mosquitto"
  mosquitto -d -c /etc/mosquitto/mosquitto.conf
fi
missing=()
command -v chromium >/dev/null || missing+=(chromium)
command -v mosquitto >/dev/null || missing+=(mosquitto)
command -v mosquitto_pub >/dev/null || missing+=(mosquitto-clients)  # the IoT tests publish as a foreign client
command -v curl >/dev/null || missing+=(curl)
if [ "${#missing[@]}" -gt 0 ]; then
  echo "services-up: installing ${missing[*]}"
  apt-get update -q >/dev/null
  DEBIAN_FRONTEND=noninteractive apt-get install -y -q "${missing[@]}" >/dev/null
fi
