#!/bin/sh
# Create the Mosquitto password file from environment variables (never from arguments or files in git).
#   LEPTON_MQTT_COLLECTOR_PASSWORD  password of user lepton-collector   (required)
#   LEPTON_MQTT_GATEWAY_PASSWORD    password of user lepton-gateway     (optional)
#   LEPTON_MQTT_DEVICE_PASSWORDS    "device-1:pw1 device-2:pw2" (optional; one user per device)
# Usage: create-passwd.sh /path/to/passwd   (default /mosquitto/config/passwd)
# In Kubernetes run it as an init container with the variables from a Secret.
set -eu
out="${1:-/mosquitto/config/passwd}"
: "${LEPTON_MQTT_COLLECTOR_PASSWORD:?set LEPTON_MQTT_COLLECTOR_PASSWORD (password of user lepton-collector)}"
umask 077
: > "$out"
mosquitto_passwd -b "$out" lepton-collector "$LEPTON_MQTT_COLLECTOR_PASSWORD"
if [ -n "${LEPTON_MQTT_GATEWAY_PASSWORD:-}" ]; then
  mosquitto_passwd -b "$out" lepton-gateway "$LEPTON_MQTT_GATEWAY_PASSWORD"
fi
for pair in ${LEPTON_MQTT_DEVICE_PASSWORDS:-}; do
  mosquitto_passwd -b "$out" "${pair%%:*}" "${pair#*:}"
done
echo "wrote $(wc -l < "$out") user(s) to $out"
