"""IoT platform: MQTT collector service, in-run drain, broker watch, device registry and status, simulator."""
