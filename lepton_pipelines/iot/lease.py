"""A lease on an MQTT client id, kept in the lake, so two sessions never fight over one client id.

Why: MQTT lets a second connection with the same client id take over the session, silently kicking
the first — two drains (or a drain and the collector) would disconnect each other in a loop and
redeliver the same unacknowledged messages over and over. Dagster's tag concurrency limit on
``lepton/mqtt-client`` stops overlapping runs; this lease also covers the collector, which runs
outside Dagster, and runs launched with a different instance config. The holder renews it; an
expired lease (holder crashed) can be taken over.
"""

from __future__ import annotations

import json
import os
import socket
import time
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from lepton_pipelines.lake.atomic import write_atomic


class LeaseHeld(RuntimeError):
    """Another live holder owns the client id."""


@dataclass
class ClientLease:
    lake: Any
    client_id: str
    ttl_seconds: float
    holder: str = ""
    _renewed_at: float = 0.0

    def __post_init__(self) -> None:
        self.holder = self.holder or f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"

    @property
    def path(self):
        return self.lake.path("_iot", "locks", f"{self.client_id}.json")

    def current(self) -> dict[str, Any] | None:
        try:
            return json.loads(self.path.read_text())
        except FileNotFoundError:
            return None

    def acquire(self) -> None:
        existing = self.current()
        if (
            existing
            and existing["holder"] != self.holder
            and not _expired(existing)
            and not _holder_died_here(existing)
        ):
            raise LeaseHeld(
                f"MQTT client id {self.client_id!r} is in use by {existing['holder']} until {existing['expires_at']} "
                f"(lease file {self.path}); a collector or another drain is connected with it"
            )
        self.renew()
        # Last writer wins on a race between two takers; the loser finds out here and backs off.
        after = self.current()
        if not after or after["holder"] != self.holder:
            raise LeaseHeld(f"MQTT client id {self.client_id!r} was just taken by {after and after['holder']}")

    def renew(self) -> None:
        expires = datetime.now(UTC) + timedelta(seconds=self.ttl_seconds)
        body = json.dumps({"holder": self.holder, "client_id": self.client_id, "expires_at": expires.isoformat()})
        write_atomic(self.path, body.encode())
        self._renewed_at = time.monotonic()

    def renew_if_due(self) -> None:
        """Renew at a third of the TTL; called from the receive loop's stop test."""
        if time.monotonic() - self._renewed_at > self.ttl_seconds / 3:
            self.renew()

    def release(self) -> None:
        existing = self.current()
        if existing and existing["holder"] == self.holder:
            self.path.unlink()


def _expired(lease: dict[str, Any]) -> bool:
    return datetime.fromisoformat(lease["expires_at"]) <= datetime.now(UTC)


def _holder_died_here(lease: dict[str, Any]) -> bool:
    """A holder on this host whose process is gone (killed hard) cannot renew: take over at once."""
    host, _, rest = lease["holder"].partition(":")
    pid = rest.partition(":")[0]
    if host != socket.gethostname() or not pid.isdigit():
        return False
    try:
        os.kill(int(pid), 0)
    except ProcessLookupError:
        return True
    except PermissionError:
        return False
    return False
