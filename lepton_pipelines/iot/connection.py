"""Where the broker is and how we talk to it: ``LEPTON_MQTT_URL`` plus TLS file paths from the environment.

Credentials live only in the environment (the URL's user:password, Kubernetes Secret → env); every
string meant for logs, metrics or Dagster metadata goes through ``BrokerAddress.display`` which never
contains them.
"""

from __future__ import annotations

import os
import ssl
from collections.abc import Mapping
from dataclasses import dataclass, field
from urllib.parse import unquote, urlsplit

import paho.mqtt.client as mqtt
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties

MQTT_URL_ENV = "LEPTON_MQTT_URL"
DEFAULT_MQTT_URL = "mqtt://127.0.0.1:1883"
CA_FILE_ENV = "LEPTON_MQTT_CA_FILE"
CERT_FILE_ENV = "LEPTON_MQTT_CERT_FILE"
KEY_FILE_ENV = "LEPTON_MQTT_KEY_FILE"
_SCHEMES = {"mqtt": (False, 1883), "mqtts": (True, 8883)}


@dataclass(frozen=True)
class BrokerAddress:
    host: str
    port: int
    tls: bool = False
    username: str | None = None
    password: str | None = field(default=None, repr=False)
    ca_file: str | None = None
    cert_file: str | None = None
    key_file: str | None = None

    @property
    def display(self) -> str:
        """Safe for logs and metadata: scheme, host and port only."""
        return f"{'mqtts' if self.tls else 'mqtt'}://{self.host}:{self.port}"


def parse_mqtt_url(url: str, env: Mapping[str, str] | None = None) -> BrokerAddress:
    """``mqtt://user:pass@host:port`` or ``mqtts://…`` (TLS, CA/cert/key paths from the environment)."""
    env = os.environ if env is None else env
    parts = urlsplit(url)
    if parts.scheme not in _SCHEMES or not parts.hostname:
        raise ValueError(
            f"{MQTT_URL_ENV}: expected mqtt://[user:password@]host[:port] or mqtts://…, got scheme "
            f"{parts.scheme!r} and host {parts.hostname!r}"
        )
    tls, default_port = _SCHEMES[parts.scheme]
    try:
        port = parts.port or default_port
    except ValueError:
        raise ValueError(f"{MQTT_URL_ENV}: the port must be a number between 1 and 65535") from None
    return BrokerAddress(
        host=parts.hostname,
        port=port,
        tls=tls,
        username=unquote(parts.username) if parts.username else None,
        password=unquote(parts.password) if parts.password else None,
        ca_file=env.get(CA_FILE_ENV) or None,
        cert_file=env.get(CERT_FILE_ENV) or None,
        key_file=env.get(KEY_FILE_ENV) or None,
    )


def broker_from_env(env: Mapping[str, str] | None = None) -> BrokerAddress:
    env = os.environ if env is None else env
    return parse_mqtt_url(env.get(MQTT_URL_ENV) or DEFAULT_MQTT_URL, env)


def new_session_client(address: BrokerAddress, client_id: str) -> mqtt.Client:
    """A paho 2.x MQTT v5 client with manual acknowledgements: nothing is acked until we say so."""
    client = mqtt.Client(
        callback_api_version=mqtt.CallbackAPIVersion.VERSION2,
        client_id=client_id,
        protocol=mqtt.MQTTv5,
        manual_ack=True,
    )
    if address.username is not None:
        client.username_pw_set(address.username, address.password)
    if address.tls:
        client.tls_set(
            ca_certs=address.ca_file,
            certfile=address.cert_file,
            keyfile=address.key_file,
            cert_reqs=ssl.CERT_REQUIRED,
            tls_version=ssl.PROTOCOL_TLS_CLIENT,
        )
    return client


def persistent_session_properties(receive_maximum: int, session_expiry_seconds: int) -> Properties:
    """CONNECT properties for a session the broker keeps (and queues for) while we are away.

    Receive Maximum is our in-flight window: the broker sends at most that many unacknowledged
    QoS 1 messages — with manual acks over MQTT 3.1.1 Mosquitto would stop at its own default of 20.
    """
    if not 1 <= receive_maximum <= 65535:
        raise ValueError(f"receive_maximum must be between 1 and 65535, got {receive_maximum}")
    properties = Properties(PacketTypes.CONNECT)
    properties.SessionExpiryInterval = session_expiry_seconds
    properties.ReceiveMaximum = receive_maximum
    return properties
