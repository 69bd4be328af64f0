"""Parquet files: the schema's types are the landed types; an unreadable file is one reject."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from lepton_pipelines.connectors.files.settings import FileRead, FileSettings

_ARROW_TO_LANDED = (
    (pa.types.is_boolean, "boolean"),
    (pa.types.is_integer, "integer"),
    (pa.types.is_floating, "float"),
    (pa.types.is_decimal, "decimal"),
    (lambda t: pa.types.is_string(t) or pa.types.is_large_string(t) or pa.types.is_string_view(t), "string"),
    (pa.types.is_timestamp, "timestamp"),
    (pa.types.is_date, "date"),
)


def arrow_landed_type(arrow_type: pa.DataType) -> str:
    return next((name for test, name in _ARROW_TO_LANDED if test(arrow_type)), str(arrow_type))


def read_parquet_bytes(data: bytes, path: str, settings: FileSettings) -> FileRead:
    """Row numbers are 1-based positions in the file. An unreadable file becomes one reject, not a crash."""
    try:
        table = pq.read_table(pa.BufferReader(data))
    except (pa.ArrowInvalid, OSError) as exc:
        reject = {
            "source_file": path,
            "source_line": None,
            "reason": f"not a readable Parquet file: {exc}",
            "raw": f"<{len(data)} bytes kept in the landing zone>",
        }
        return FileRead(pd.DataFrame(), np.empty(0, dtype=np.int64), [reject], {}, note="unreadable Parquet file")
    schema = {field.name: arrow_landed_type(field.type) for field in table.schema}
    note = "no rows" if table.num_rows == 0 else None
    return FileRead(table.to_pandas(), np.arange(1, table.num_rows + 1, dtype=np.int64), [], schema, note)
