"""CSV files, every value landed as text.

Why the CSV reader has two paths: a clean file (the common case) is parsed by ``pyarrow.csv`` at C
speed with every column read as a string, and each record's physical line number is recovered with
one vectorised pass over the newline positions. Lines with the wrong number of fields (the usual fault
of an export: one stray line in a million) stay on that path: pyarrow skips them through its invalid-row
handler, each is pinned to its physical line by its text and worded exactly as the line-by-line reader
would word it — re-reading a 500,000-line file in Python for one bad line costs ~7 s and ~0.5 GB. Any
other file pyarrow cannot parse strictly — unterminated quotes, invalid UTF-8, quoted newlines, a bad
line that cannot be pinned to one line — is re-read line by line with Python's ``csv`` module, which
keeps every good record and turns each bad line into a reject carrying the file, line number, reason
and the raw text. Nothing is dropped and no failure goes unnamed.
"""

from __future__ import annotations

import codecs
import csv
import io
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.csv as pacsv

from lepton_pipelines.connectors.base import ConnectorError
from lepton_pipelines.connectors.files.settings import FileRead, FileSettings

# Distinct bad lines the fast CSV path pins to line numbers (one scan of the file each); a file with
# more is re-read line by line.
MAX_LOCATED_BAD_LINES = 100
# Bytes searched for the header line before falling back to splitting the whole file.
HEADER_SEARCH_BYTES = 1 << 16


def read_csv_bytes(data: bytes, path: str, settings: FileSettings) -> FileRead:
    """All columns as strings; ``lines`` are physical line numbers (header = line 1)."""
    names = _csv_column_names(data, path, settings)
    fast = _read_csv_fast(data, path, names, settings)
    table, lines, rejects = fast if fast is not None else _read_csv_line_by_line(data, path, names, settings)
    note = "header only: no records" if table.num_rows == 0 and not rejects else None
    records = table.to_pandas()
    # Every CSV value lands as text; whether it fits its declared type is typing's verdict, per value.
    return FileRead(records, lines, rejects, {name: "string" for name in table.column_names}, note)


def _csv_column_names(data: bytes, path: str, settings: FileSettings) -> list[str]:
    if not settings.header:
        return list(settings.column_names or [])
    head = data[:HEADER_SEARCH_BYTES].splitlines()
    # Only the leading lines are split; a cut-off last line is not known to be whole, so the whole file
    # is split when the header is not among the complete ones.
    if len(data) > HEADER_SEARCH_BYTES and not any(line.strip() for line in head[:-1]):
        head = data.splitlines()
    for line_number, raw in enumerate(head, start=1):
        if not raw.strip():
            continue
        try:
            text = raw.decode(settings.encoding)
        except UnicodeDecodeError as exc:
            raise ConnectorError(
                f"{path}: line {line_number} (header) is not valid {settings.encoding} at byte {exc.start}; "
                f"fix the file or set connector.encoding"
            ) from exc
        names = next(csv.reader([text.lstrip("\ufeff")], delimiter=settings.delimiter, quotechar=settings.quotechar))
        duplicates = sorted({n for n in names if names.count(n) > 1})
        if duplicates:
            raise ConnectorError(f"{path}: header names column(s) more than once: {', '.join(duplicates)}")
        return names
    return []


def _read_csv_fast(
    data: bytes, path: str, names: list[str], settings: FileSettings
) -> tuple[pa.Table, np.ndarray, list[dict[str, Any]]] | None:
    """Strict pyarrow parse (wrong-width lines skipped and rejected); None when the file needs the
    line-by-line path."""
    if not names:
        return None
    skipped: list[str] = []

    def skip_and_keep(row: Any) -> str:
        skipped.append(row.text)
        return "skip"

    # Pinning a skipped row to its line needs one row per line and the file's bytes to be its UTF-8 text.
    locatable = not settings.multiline_values and codecs.lookup(settings.encoding).name == "utf-8"
    try:
        table = pacsv.read_csv(
            pa.py_buffer(data),
            read_options=pacsv.ReadOptions(
                encoding=settings.encoding,
                column_names=None if settings.header else names,
            ),
            parse_options=pacsv.ParseOptions(
                delimiter=settings.delimiter,
                quote_char=settings.quotechar,
                newlines_in_values=settings.multiline_values,
                invalid_row_handler=skip_and_keep if locatable else None,
            ),
            convert_options=pacsv.ConvertOptions(
                column_types={name: pa.string() for name in names},
                null_values=settings.null_values,
                strings_can_be_null=bool(settings.null_values),
                quoted_strings_can_be_null=True,
            ),
        )
    except (pa.ArrowInvalid, pa.ArrowTypeError, UnicodeDecodeError):
        return None
    lines = _record_line_numbers(data, table.num_rows + len(skipped), skip_first=settings.header)
    rejects: list[dict[str, Any]] = []
    if skipped:
        located = _reject_skipped_lines(data, lines, skipped, path, names, settings)
        if located is None:
            return None
        lines, rejects = located
    if len(lines) != table.num_rows or table.column_names != names:
        return None  # a quoted value spans lines (or a \r-only file): only the slow path knows the lines
    return table, lines, rejects


def _reject_skipped_lines(
    data: bytes, lines: np.ndarray, skipped: list[str], path: str, names: list[str], settings: FileSettings
) -> tuple[np.ndarray, list[dict[str, Any]]] | None:
    """The record line numbers without the lines pyarrow skipped, and one reject per skipped line worded
    as the line-by-line reader words it; None when a skipped row cannot be pinned to exactly one line.

    Without quoted newlines every line parses on its own, so equal text means an equal outcome: all lines
    carrying a skipped row's text are skipped, and finding them all finds every skipped row.
    """
    wanted: dict[str, int] = {}
    for text in skipped:
        wanted[text] = wanted.get(text, 0) + 1
    if len(wanted) > MAX_LOCATED_BAD_LINES or any(not t or "\n" in t or "\r" in t for t in wanted):
        return None
    located: list[tuple[int, str, str]] = []  # (byte offset, reason, text)
    for text, count in wanted.items():
        offsets = _whole_line_offsets(data, text.encode("utf-8"))
        reason = _csv_line_problem(text, names, settings)
        if len(offsets) != count or reason is None:
            return None
        located.extend((offset, reason, text) for offset in offsets)
    located.sort()
    # Line numbers by counting newlines between consecutive offsets: one pass over the bytes in all.
    found: list[tuple[int, str, str]] = []
    line, previous = 1, 0
    for offset, reason, text in located:
        line += data.count(b"\n", previous, offset)
        previous = offset
        found.append((line, reason, text))
    bad = np.fromiter((line for line, _, _ in found), dtype=np.int64, count=len(found))
    keep = ~np.isin(lines, bad)
    if int((~keep).sum()) != len(bad):
        return None
    rejects = [
        {"source_file": path, "source_line": line, "reason": reason, "raw": text} for line, reason, text in found
    ]
    return lines[keep], rejects


def _whole_line_offsets(data: bytes, needle: bytes) -> list[int]:
    """Byte offsets where ``needle`` is a whole line (ended by LF, CRLF or the end of the data)."""
    offsets = []
    position = data.find(needle)
    while position != -1:
        end = position + len(needle)
        starts_line = position == 0 or data[position - 1] == 10
        ends_line = (
            end == len(data) or data[end] == 10 or (data[end] == 13 and (end + 1 == len(data) or data[end + 1] == 10))
        )
        if starts_line and ends_line:
            offsets.append(position)
        position = data.find(needle, position + 1)
    return offsets


def _csv_line_problem(text: str, names: list[str], settings: FileSettings) -> str | None:
    """Why one complete line is not a record (None when it is one), as the line-by-line reader says it."""
    try:
        rows = _strict_csv_rows(text, settings)
    except csv.Error as exc:
        return _csv_error_reason(exc)
    return _field_count_problem(rows, names)


def _strict_csv_rows(text: str, settings: FileSettings) -> list[list[str]]:
    return list(
        csv.reader(
            io.StringIO(text, newline=""), delimiter=settings.delimiter, quotechar=settings.quotechar, strict=True
        )
    )


def _is_open_quote(exc: csv.Error) -> bool:
    return "unexpected end of data" in str(exc)


def _csv_error_reason(exc: csv.Error) -> str:
    if _is_open_quote(exc):
        return "unterminated quoted value (set multiline_values: true if values contain line breaks)"
    return f"malformed CSV: {exc}"


def _field_count_problem(rows: list[list[str]], names: list[str]) -> str | None:
    fields = rows[0] if len(rows) == 1 else None
    if fields is not None and len(fields) == len(names):
        return None
    found = "several records" if fields is None else f"{len(fields)} fields"
    return f"expected {len(names)} fields ({', '.join(names)}), found {found}"


def _counted_line_numbers(data: bytes, rows_seen: int, header: bool) -> np.ndarray | None:
    """Record line numbers without scanning for blank lines, when counting proves there are none.

    ``rows_seen`` is what pyarrow parsed plus what it skipped. When that plus the header equals the
    number of physical lines and no lone CR splits a line, every line is a record or a skipped row, so
    the numbering is a plain range (skipped rows are removed by the caller). None when that is not proven.
    """
    physical = data.count(b"\n") + (0 if data.endswith(b"\n") else 1)
    if rows_seen + (1 if header else 0) != physical:
        return None
    if b"\r" in data and data.count(b"\r") != data.count(b"\r\n"):
        return None  # pyarrow ends a line at a lone CR too: only the full scan knows those lines
    return np.arange(2 if header else 1, physical + 1, dtype=np.int64)


def _record_line_numbers(data: bytes, rows_seen: int, skip_first: bool) -> np.ndarray:
    """1-based numbers of the non-blank physical lines (pyarrow skips blank ones), minus the header.

    Counted when the counts prove every line is a record (the common case: no scan of 100 MB of bytes),
    else found by scanning for blank and lone-CR lines.
    """
    counted = _counted_line_numbers(data, rows_seen, skip_first)
    if counted is not None:
        return counted
    buffer = np.frombuffer(data, dtype=np.uint8)
    newlines = np.flatnonzero(buffer == 10)
    starts = np.concatenate(([0], newlines + 1))
    ends = np.concatenate((newlines, [len(buffer)]))
    lengths = ends - starts
    carriage_only = (lengths == 1) & (buffer[np.minimum(starts, len(buffer) - 1)] == 13)
    numbers = np.flatnonzero((lengths > 0) & ~carriage_only) + 1
    return numbers[1:] if skip_first else numbers


def _read_csv_line_by_line(
    data: bytes, path: str, names: list[str], settings: FileSettings
) -> tuple[pa.Table, np.ndarray, list[dict[str, Any]]]:
    nulls = set(settings.null_values)
    columns: list[list[str | None]] = [[] for _ in names]
    lines: list[int] = []
    rejects: list[dict[str, Any]] = []
    header_pending = settings.header
    pending: tuple[int, str, bytes] | None = None  # (first line, text so far, raw so far) of an open quote
    offset = 0

    def reject(line_number: int, reason: str, raw: bytes) -> None:
        rejects.append(
            {
                "source_file": path,
                "source_line": line_number,
                "reason": reason,
                "raw": raw.decode(settings.encoding, errors="backslashreplace").rstrip("\r\n"),
            }
        )

    for line_number, raw in enumerate(data.splitlines(keepends=True), start=1):
        line_offset, offset = offset, offset + len(raw)
        try:
            text = raw.decode(settings.encoding)
        except UnicodeDecodeError as exc:
            if pending:
                reject(pending[0], "unterminated quoted value", pending[2])
                pending = None
            reject(line_number, f"invalid {settings.encoding} at byte {line_offset + exc.start}", raw)
            continue
        if pending is None and not text.strip("\r\n"):
            continue
        if header_pending:
            header_pending = False
            continue
        first, so_far, raw_so_far = pending if pending else (line_number, "", b"")
        candidate, raw_candidate = so_far + text, raw_so_far + raw
        try:
            rows = _strict_csv_rows(candidate, settings)
        except csv.Error as exc:
            if _is_open_quote(exc) and settings.multiline_values:
                pending = (first, candidate, raw_candidate)
                continue
            pending = None
            reject(first, _csv_error_reason(exc), raw_candidate)
            continue
        pending = None
        problem = _field_count_problem(rows, names)
        if problem:
            reject(first, problem, raw_candidate)
            continue
        for column, value in zip(columns, rows[0], strict=True):
            column.append(None if value in nulls else value)
        lines.append(first)
    if pending:
        reject(pending[0], "unterminated quoted value at end of file", pending[2])
    table = pa.table({f"c{i}": pa.array(values, type=pa.string()) for i, values in enumerate(columns)})
    return table.rename_columns(names), np.asarray(lines, dtype=np.int64), rejects
