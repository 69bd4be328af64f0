#!/bin/sh
# Start HAProxy in master-worker mode as PID 1: SIGUSR2 reloads the configuration gracefully (the
# listening sockets pass to the new worker, old workers finish their requests and exit).
set -eu
RUN_DIR=/run/lepton-gateway
CONFIG=/etc/lepton-gateway/haproxy.cfg
umask 077
if [ -n "${LEPTON_GATEWAY_TLS_PEM:-}" ]; then
  # Certificate chain + private key, from the environment into a tmpfs only uid 10001 can read.
  printf '%s\n' "$LEPTON_GATEWAY_TLS_PEM" > "$RUN_DIR/tls.pem"
fi
for _ in $(seq 1 50); do [ -s "$CONFIG" ] && break; sleep 0.1; done
exec haproxy -W -db -S "$RUN_DIR/master.sock" -f "$CONFIG"
