"""Listing the files landed for a source under ``<lake>/landing/<source>/``, one version at a time."""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import date
from typing import Any

from lepton_pipelines.connectors.files.settings import DATE_PLACEHOLDER, FileSettings

_DATE_SEGMENT = re.compile(r"(?:^|/)date=(\d{4}-\d{2}-\d{2})(?:/|$)")


@dataclass(frozen=True)
class LandingFile:
    """One landed file version: ``path`` is relative to the lake root."""

    path: str
    size: int
    mtime_or_etag: str
    partition_key: str | None


def landing_run_key(file: LandingFile) -> str:
    """A run key that changes whenever the file is rewritten, so each version is processed exactly once."""
    return f"{file.path}:{file.size}:{file.mtime_or_etag}"


def list_landing_files(
    lake: Any, source: str, settings: FileSettings, partitioned: bool = True, partition_key: str | None = None
) -> list[LandingFile]:
    """Landed files of ``source`` (all partitions, or one), sorted by path; hidden/temp files are skipped.

    The filesystem's listing cache is dropped first: on S3 a sensor would otherwise never see new drops.
    """
    landing = lake.path("landing", source)
    base = landing.path.rstrip("/")
    fs = lake.fs
    fs.invalidate_cache(base)
    pattern = settings.glob_for(partition_key, partitioned=partitioned)
    matcher = _glob_regex(settings.glob_for(None, partitioned=partitioned) if settings.glob is None else settings.glob)
    root = lake.root.path.rstrip("/")
    found: list[LandingFile] = []
    for path, info in sorted(fs.glob(f"{base}/{pattern}", detail=True).items()):
        if info.get("type") == "directory":
            continue
        inside = path[len(base) + 1 :]
        if any(part.startswith((".", "_")) for part in inside.split("/")):
            continue
        found.append(
            LandingFile(
                path=path[len(root) + 1 :],
                size=int(info.get("size") or 0),
                mtime_or_etag=_version_of(info),
                partition_key=_partition_key_of(inside, matcher),
            )
        )
    return found


def _version_of(info: dict[str, Any]) -> str:
    etag = info.get("ETag") or info.get("etag")
    if etag:
        return str(etag).strip('"')
    mtime = info.get("mtime") or info.get("LastModified") or info.get("last_modified")
    return str(mtime.timestamp() if hasattr(mtime, "timestamp") else mtime)


def _glob_regex(glob: str) -> re.Pattern[str]:
    pattern = re.escape(glob).replace(re.escape(DATE_PLACEHOLDER), r"(?P<date>\d{4}-\d{2}-\d{2})")
    pattern = pattern.replace(r"\*\*", ".*").replace(r"\*", "[^/]*").replace(r"\?", "[^/]")
    return re.compile(f"^{pattern}$")


def _partition_key_of(inside: str, matcher: re.Pattern[str]) -> str | None:
    match = matcher.match(inside)
    candidate = match.groupdict().get("date") if match else None
    if candidate is None:
        segment = _DATE_SEGMENT.search(inside)
        candidate = segment.group(1) if segment else None
    try:
        return date.fromisoformat(candidate).isoformat() if candidate else None
    except ValueError:
        return None
