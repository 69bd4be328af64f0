"""The MQTT broker as a Dagster resource (registered as ``mqtt`` by ``lepton_pipelines.resources``)."""

from __future__ import annotations

import os

import dagster as dg

from lepton_pipelines.iot.connection import DEFAULT_MQTT_URL, MQTT_URL_ENV, BrokerAddress, parse_mqtt_url


class MqttBrokerResource(dg.ConfigurableResource):
    """The broker, read from the environment at run time so that credentials (in the URL) never
    enter Dagster config, run storage or the UI — only the variable's name does."""

    url_env_var: str = MQTT_URL_ENV

    def address(self) -> BrokerAddress:
        return parse_mqtt_url(os.environ.get(self.url_env_var) or DEFAULT_MQTT_URL)
