"""What we know about our broker session, kept in the lake, so a broker that lost it cannot hide it.

MQTT tells a client in every CONNACK whether the broker still holds its session. That flag only
means something against history: "no session" is expected the very first time a client id connects
and is a loss of state every time after. The collector and the in-run drain share a client id (and
run in different processes over time), so the history lives in the lake:

* ``<lake>/_iot/sessions/<client_id>.json`` — written once a subscription of this client id was
  acknowledged: from then on the broker is expected to keep the session;
* ``<lake>/_iot/session_events/<client_id>/<time>.json`` — one ``session_lost`` event per CONNACK
  without the session, with the broker and the time: the evidence the ``device_seq_gaps`` check and
  the in-run drain's metadata point to.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

from lepton_pipelines.iot.connection import BrokerAddress
from lepton_pipelines.lake.atomic import write_atomic

SESSIONS_DIR = ("_iot", "sessions")
EVENTS_DIR = ("_iot", "session_events")


class SessionLedger:
    def __init__(self, lake: Any, client_id: str, address: BrokerAddress):
        self.lake = lake
        self.client_id = client_id
        self.broker = address.display  # never credentials
        self._known: bool | None = None  # cached: the marker is read once per process

    @property
    def marker(self):
        return self.lake.path(*SESSIONS_DIR, f"{self.client_id}.json")

    def had_session(self) -> bool:
        if self._known is None:
            self._known = self.marker.exists()
        return self._known

    def mark_established(self) -> None:
        if self._known:
            return
        body = {"client_id": self.client_id, "broker": self.broker, "established_at": _now()}
        write_atomic(self.marker, json.dumps(body).encode())
        self._known = True

    def record_lost(self) -> str:
        at = _now()
        body = {"event": "session_lost", "client_id": self.client_id, "broker": self.broker, "at": at}
        folder = self.lake.path(*EVENTS_DIR, self.client_id)
        return write_atomic(
            folder / (at.replace(":", "").replace("-", "").replace("+0000", "Z") + ".json"), json.dumps(body).encode()
        )


def session_events(lake: Any, client_id: str, since: str | None = None) -> list[dict[str, Any]]:
    """``session_lost`` events of a client id, oldest first (optionally only those at or after ``since``)."""
    folder = lake.path(*EVENTS_DIR, client_id)
    if not folder.exists():
        return []
    events = [
        json.loads(p.read_text()) for p in folder.iterdir() if p.name.endswith(".json") and not p.name.startswith(".")
    ]
    events.sort(key=lambda e: e["at"])
    return [e for e in events if since is None or e["at"] >= since]


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="microseconds")
