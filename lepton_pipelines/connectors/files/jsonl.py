"""JSON Lines files: one JSON object per line; a line that is not one is a reject naming its line."""

from __future__ import annotations

import json
from decimal import Decimal
from typing import Any

import numpy as np
import pandas as pd

from lepton_pipelines.connectors.base import RecordShape, landed_schema_of_records
from lepton_pipelines.connectors.files.settings import FileRead, FileSettings


def read_jsonl_bytes(data: bytes, path: str, settings: FileSettings, shape: RecordShape | None = None) -> FileRead:
    """One JSON object per line; objects are flattened one level, except what the declared columns keep
    whole (``json`` columns) or exact (``decimal`` columns): see ``connectors.base.RecordShape``."""
    shape = shape or RecordShape(separator=settings.flatten_separator)
    parse_float = Decimal if shape.exact_numbers else float
    records: list[dict[str, Any]] = []
    lines: list[int] = []
    rejects: list[dict[str, Any]] = []
    offset = 0
    for line_number, raw in enumerate(data.splitlines(keepends=True), start=1):
        line_offset, offset = offset, offset + len(raw)
        if not raw.strip():
            continue
        reason = None
        try:
            value = json.loads(raw.decode(settings.encoding), parse_float=parse_float)
        except UnicodeDecodeError as exc:
            reason = f"invalid {settings.encoding} at byte {line_offset + exc.start}"
        except json.JSONDecodeError as exc:
            # Python's own message for control characters already ends in "at" ("Invalid control character at")
            reason = f"invalid JSON: {exc.msg.removesuffix(' at')} at column {exc.colno}"
        else:
            if not isinstance(value, dict):
                reason = f"expected a JSON object, found {type(value).__name__}"
        if reason:
            rejects.append(
                {
                    "source_file": path,
                    "source_line": line_number,
                    "reason": reason,
                    "raw": raw.decode(settings.encoding, errors="backslashreplace").rstrip("\r\n"),
                }
            )
            continue
        records.append(shape.record(value))
        lines.append(line_number)
    frame = pd.DataFrame(records, dtype=object)  # object: ints next to nulls stay ints, as landed
    note = "no JSON records" if not records and not rejects else None
    return FileRead(frame, np.asarray(lines, dtype=np.int64), rejects, landed_schema_of_records(frame), note)
