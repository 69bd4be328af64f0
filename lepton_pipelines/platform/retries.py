"""Run and op guards shared by every long or remote-touching job: retry policy and runtime limits.

Transient storage and HTTP failures (throttling, 5xx, dropped connections, timeouts) are worth
retrying with exponential backoff and jitter — jitter so that many ops hitting the same throttled
bucket do not retry in lockstep. Everything else (a corrupt backup, a missing snapshot, bad config)
fails immediately: retrying cannot fix it and only delays the alert.
"""

from __future__ import annotations

import socket
import urllib.error
from datetime import timedelta

from dagster import MAX_RUNTIME_SECONDS_TAG, Backoff, Failure, Jitter, RetryPolicy

TRANSIENT_RETRY_POLICY = RetryPolicy(max_retries=4, delay=2, backoff=Backoff.EXPONENTIAL, jitter=Jitter.PLUS_MINUS)
"""Waits ~2s, 6s, 14s, 30s (±2s): long enough to ride out S3 ``SlowDown`` and a MinIO restart."""

_TRANSIENT_S3_CODES = frozenset(
    {
        "SlowDown",
        "Throttling",
        "ThrottlingException",
        "RequestTimeout",
        "RequestTimeTooSkewed",
        "InternalError",
        "ServiceUnavailable",
        "503",
        "500",
        "502",
        "504",
    }
)


def is_transient_error(exc: BaseException) -> bool:
    """True for failures a retry may cure: network errors, timeouts, throttling and 5xx responses."""
    if isinstance(exc, urllib.error.HTTPError):
        return exc.code in (408, 429) or exc.code >= 500
    if isinstance(exc, (ConnectionError, TimeoutError, socket.timeout, urllib.error.URLError)):
        return True
    code = _botocore_error_code(exc)
    if code is not None:
        return code in _TRANSIENT_S3_CODES
    if type(exc).__module__.startswith(("botocore", "aiobotocore", "urllib3", "aiohttp")):
        # EndpointConnectionError, ReadTimeoutError, ClientConnectorError, ... — the transport failed.
        return True
    cause = exc.__cause__ or exc.__context__
    return cause is not None and cause is not exc and is_transient_error(cause)


def _botocore_error_code(exc: BaseException) -> str | None:
    response = getattr(exc, "response", None)
    if isinstance(response, dict) and isinstance(response.get("Error"), dict):
        return str(response["Error"].get("Code"))
    return None


def permanent_failure(exc: BaseException) -> Failure:
    """Wrap a non-transient error so the op's RetryPolicy does not retry it."""
    return Failure(description=str(exc), allow_retries=False)


def max_runtime_tags(limit: timedelta | int) -> dict[str, str]:
    """Job tags that make run monitoring cancel a run that exceeds ``limit``.

    Enforced only when ``run_monitoring.enabled`` is true in dagster.yaml (it is in the production
    template). Use on any job that could hang on a remote system:
    ``@job(tags={**max_runtime_tags(timedelta(hours=2)), ...})``.
    """
    seconds = int(limit.total_seconds()) if isinstance(limit, timedelta) else int(limit)
    if seconds <= 0:
        raise ValueError(f"max runtime must be positive, got {seconds} seconds")
    return {MAX_RUNTIME_SECONDS_TAG: str(seconds)}
