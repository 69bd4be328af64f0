#!/bin/sh
# The shipped config listens on 1883 on every address; under host networking the stack's broker must
# take its own port on loopback only, so that one line is rewritten — and checked, so a changed config
# fails here instead of silently listening on the wrong address.
set -eu
create-passwd.sh /mosquitto/config/passwd >/dev/null
cp /etc/lepton/mosquitto/acl /mosquitto/config/acl
sed -e "s/^listener 1883\$/listener $MOSQUITTO_PORT $MOSQUITTO_LISTEN/" /etc/lepton/mosquitto/mosquitto.conf >/mosquitto/config/mosquitto.conf
grep -qx "listener $MOSQUITTO_PORT $MOSQUITTO_LISTEN" /mosquitto/config/mosquitto.conf || {
  echo "mosquitto entrypoint: no 'listener 1883' line in mosquitto.conf to bind to $MOSQUITTO_LISTEN:$MOSQUITTO_PORT" >&2; exit 1; }
exec mosquitto -c /mosquitto/config/mosquitto.conf
