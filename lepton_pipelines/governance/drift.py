"""Schema drift: what landed, judged against the declared schema — never against types guessed from values.

A source's declared schema is its contract, so drift is only what breaks the contract as a whole:

* **added** — a landed column the schema does not declare (kept in the landing files, not in raw);
* **removed** — a declared column absent from every landed file/page/row set. For JSON records (JSON
  Lines, API pages, MQTT payloads) a key left out of every object is JSON's way of saying "no value":
  there only a required (``nullable: false``) column's absence is drift; an optional one is reported as
  ``absent_optional`` beside a passing check, and its values are null;
* **renamed** — a removed and an added column whose names differ only in case, separators or a small
  typo (``Amount`` / ``amount``, ``customerId`` / ``customer_id``): reported as a pair, so a person sees
  the likely cause;
* **retyped** — a declared column whose landed values mostly (more than ``RETYPE_SHARE``) do not parse as
  its declared type. Single values that do not parse are not drift: the column's ``on_parse_error``
  policy handles them row by row (quarantine, null or fail).

So integers written by pandas as ``517.0``, all-digit ids in a string column and optional columns that
are empty in every row are not drift: they all meet the declared schema. An input without a single
record (a 0-byte file, a header-only file, an empty API window) is not drift either: it is the
``empty_input`` outcome, reported apart with the file name.
"""

from __future__ import annotations

import difflib
import re
from dataclasses import dataclass, field

# A declared column is retyped when more than this share of its non-blank landed values fail to parse.
RETYPE_SHARE = 0.5


@dataclass
class SchemaDrift:
    added: list[str] = field(default_factory=list)
    removed: list[str] = field(default_factory=list)
    renamed: dict[str, str] = field(default_factory=dict)  # declared (landed name) → the landed name it likely became
    retyped: dict[str, dict[str, object]] = field(default_factory=dict)  # column → {declared, failed, of}
    absent_optional: list[str] = field(default_factory=list)  # optional JSON keys no record carried (not drift)

    @property
    def drifted(self) -> bool:
        return bool(self.added or self.removed or self.renamed or self.retyped)

    def describe(self) -> str:
        absent = (
            f" (optional key(s) in no record, read as null: {', '.join(self.absent_optional)})"
            if self.absent_optional
            else ""
        )
        if not self.drifted:
            return "landed columns match the declared schema" + absent
        parts = []
        if self.renamed:
            parts.append("renamed: " + ", ".join(f"{old} → {new}" for old, new in self.renamed.items()))
        if self.added:
            parts.append(f"added: {', '.join(self.added)}")
        if self.removed:
            parts.append(f"removed: {', '.join(self.removed)}")
        if self.retyped:
            parts.append(
                "retyped: "
                + ", ".join(
                    f"{c} ({t['failed']} of {t['of']} values are not {t['declared']})" for c, t in self.retyped.items()
                )
            )
        return "; ".join(parts) + absent


def compare_schemas(
    declared: dict[str, str],
    landed_columns: list[str] | set[str],
    parse_failures: dict[str, int] | None = None,
    non_null: dict[str, int] | None = None,
    may_be_absent: set[str] | frozenset[str] = frozenset(),
) -> SchemaDrift:
    """``declared``: landed column name → declared type. ``landed_columns``: every column name that
    landed (union over the partition's inputs; lineage columns — leading underscore — are ignored unless
    declared). ``parse_failures``/``non_null``: per declared column name, from typing. ``may_be_absent``:
    declared columns whose absence is not drift (optional keys of JSON records)."""
    parse_failures, non_null = parse_failures or {}, non_null or {}
    landed = {c for c in landed_columns if not c.startswith("_") or c in declared}
    added = sorted(c for c in landed if c not in declared)
    removed = sorted(c for c in declared if c not in landed)
    renamed = _likely_renames(removed, added)
    retyped: dict[str, dict[str, object]] = {}
    for column, declared_type in declared.items():
        failed, of = int(parse_failures.get(column, 0)), int(non_null.get(column, 0))
        if column in landed and of and failed > RETYPE_SHARE * of:
            retyped[column] = {"declared": declared_type, "failed": failed, "of": of}
    missing = [c for c in removed if c not in renamed]
    return SchemaDrift(
        added=[c for c in added if c not in renamed.values()],
        removed=[c for c in missing if c not in may_be_absent],
        renamed=renamed,
        retyped=retyped,
        absent_optional=[c for c in missing if c in may_be_absent],
    )


def _likely_renames(removed: list[str], added: list[str]) -> dict[str, str]:
    pairs: dict[str, str] = {}
    free = list(added)
    for old in removed:
        squashed = {_squash(a): a for a in free}
        match = squashed.get(_squash(old))
        if match is None:
            close = difflib.get_close_matches(old.lower(), [a.lower() for a in free], n=1, cutoff=0.85)
            match = next((a for a in free if close and a.lower() == close[0]), None)
        if match is not None:
            pairs[old] = match
            free.remove(match)
    return pairs


def _squash(name: str) -> str:
    return re.sub(r"[^a-z0-9]", "", name.lower())
