"""The ``connector:`` block of a file-drop source, and what a format reader returns for one file."""

from __future__ import annotations

import codecs
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np
import pandas as pd
from pydantic import Field, field_validator, model_validator

from lepton_pipelines.connectors.base import ConnectorSettings

FILE_EXTENSIONS = {"csv": "csv", "jsonl": "jsonl", "parquet": "parquet"}
DATE_PLACEHOLDER = "{date}"


class FileSettings(ConnectorSettings):
    """``connector:`` block of a file-drop source.

    ``glob`` is relative to ``<lake>/landing/<source>/``; ``{date}`` is replaced by the partition key.
    Default: ``date={date}/*.<ext>`` for daily sources, ``*.<ext>`` for unpartitioned ones.
    ``null_values``: CSV field values landed as null (default: only the empty field).
    ``multiline_values``: allow quoted CSV values spanning lines (a record's line is its first line).
    """

    type: Literal["file"] = "file"
    format: Literal["csv", "jsonl", "parquet"] = "csv"
    glob: str | None = None
    delimiter: str = Field(default=",", min_length=1, max_length=1)
    quotechar: str = Field(default='"', min_length=1, max_length=1)
    header: bool = True
    column_names: list[str] | None = None
    encoding: str = "utf-8"
    null_values: list[str] = Field(default_factory=lambda: [""])
    multiline_values: bool = False
    flatten_separator: str = "__"

    @field_validator("glob")
    @classmethod
    def _glob_is_relative(cls, glob: str | None) -> str | None:
        if glob is not None and (glob.startswith("/") or "://" in glob or ".." in glob.split("/")):
            raise ValueError(f"glob {glob!r} must be relative to the source's landing folder (no '/', '..' or URL)")
        return glob

    @field_validator("encoding")
    @classmethod
    def _encoding_is_known(cls, encoding: str) -> str:
        try:
            codecs.lookup(encoding)
        except LookupError:
            raise ValueError(
                f"unknown encoding {encoding!r}; use a Python codec name such as utf-8, latin-1, cp1252"
            ) from None
        return encoding

    @model_validator(mode="after")
    def _headerless_needs_names(self) -> FileSettings:
        if self.format == "csv" and not self.header and not self.column_names:
            raise ValueError("header: false needs column_names (the CSV has no header row to name the columns)")
        return self

    def glob_for(self, partition_key: str | None, partitioned: bool | None = None) -> str:
        """The glob for one partition (``{date}`` filled) — or for all of them when ``partition_key`` is None."""
        if partitioned is None:
            partitioned = partition_key is not None
        glob = self.glob or (
            f"date={DATE_PLACEHOLDER}/*.{FILE_EXTENSIONS[self.format]}"
            if partitioned
            else f"*.{FILE_EXTENSIONS[self.format]}"
        )
        return glob.replace(DATE_PLACEHOLDER, partition_key or "*")


@dataclass
class FileRead:
    """What one format reader makes of one file's bytes."""

    records: pd.DataFrame  # landed columns only; lineage added by the caller
    lines: np.ndarray
    rejects: list[dict[str, Any]]
    landed_schema: dict[str, str]
    note: str | None = None
