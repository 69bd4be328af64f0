"""Run-failure alerts as JSON webhooks (Slack/Teams/Mattermost incoming webhooks, Alertmanager
bridges, PagerDuty Events proxies all accept a POSTed JSON document).

Pure functions, no Dagster imports. The webhook URL usually embeds a token, so it is read from the
environment at send time and never logged, returned or put into metadata.
"""

from __future__ import annotations

import json
import os
import urllib.error
import urllib.request
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

WEBHOOK_ENV = "LEPTON_ALERT_WEBHOOK_URL"
UI_URL_ENV = "LEPTON_DAGSTER_UI_URL"  # e.g. https://dagster.example.com, for a link to the run
MAX_MESSAGE_CHARS = 2000
# Tags worth repeating in an alert: they say what the run was for. Others may carry user config.
ALERT_TAG_PREFIXES = (
    "dagster/partition",
    "dagster/schedule_name",
    "dagster/sensor_name",
    "dagster/backfill",
    "lepton/",
)


@dataclass(frozen=True)
class AlertDelivery:
    sent: bool
    status: int | None
    detail: str  # safe to log: never contains the webhook URL


def failure_alert_payload(
    job_name: str,
    run_id: str,
    message: str,
    failed_steps: Sequence[str] = (),
    tags: Mapping[str, str] | None = None,
    location_name: str | None = None,
    ui_url: str | None = None,
) -> dict:
    """The alert document: ``text`` for chat webhooks, structured fields for machines."""
    message = (message or "").strip()
    if len(message) > MAX_MESSAGE_CHARS:
        message = message[: MAX_MESSAGE_CHARS - 1] + "…"
    ui_url = (ui_url if ui_url is not None else os.environ.get(UI_URL_ENV, "")).rstrip("/")
    run_url = f"{ui_url}/runs/{run_id}" if ui_url else None
    steps = ", ".join(failed_steps) if failed_steps else "—"
    text = f"Dagster run failed: job `{job_name}` (run {run_id[:8]}); failed steps: {steps}. {message}"
    if run_url:
        text += f" {run_url}"
    safe_tags = {k: v for k, v in (tags or {}).items() if k.startswith(ALERT_TAG_PREFIXES)}
    return {
        "text": text,
        "event": "dagster.run.failure",
        "job_name": job_name,
        "run_id": run_id,
        "location_name": location_name,
        "failed_steps": list(failed_steps),
        "message": message,
        "tags": safe_tags,
        "run_url": run_url,
    }


def post_alert(payload: Mapping, webhook_url: str | None = None, timeout_seconds: float = 10.0) -> AlertDelivery:
    """POST ``payload`` to the webhook (``$LEPTON_ALERT_WEBHOOK_URL`` unless given).

    Returns what happened instead of raising: an alerting failure must not hide the original one.
    """
    url = webhook_url if webhook_url is not None else os.environ.get(WEBHOOK_ENV, "").strip()
    if not url:
        return AlertDelivery(sent=False, status=None, detail=f"no webhook configured (set {WEBHOOK_ENV})")
    if not url.startswith(("https://", "http://")):
        return AlertDelivery(sent=False, status=None, detail=f"{WEBHOOK_ENV} must be an http(s) URL")
    request = urllib.request.Request(
        url,
        data=json.dumps(payload).encode("utf-8"),
        headers={"Content-Type": "application/json", "User-Agent": "lepton-pipelines-alerts"},
        method="POST",
    )
    try:
        with urllib.request.urlopen(request, timeout=timeout_seconds) as response:
            return AlertDelivery(sent=True, status=response.status, detail=f"webhook answered {response.status}")
    except urllib.error.HTTPError as exc:
        return AlertDelivery(sent=False, status=exc.code, detail=f"webhook answered {exc.code}")
    except (urllib.error.URLError, OSError) as exc:
        reason = getattr(exc, "reason", exc)
        return AlertDelivery(sent=False, status=None, detail=f"webhook unreachable: {type(reason).__name__}")
