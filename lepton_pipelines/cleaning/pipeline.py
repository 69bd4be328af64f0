"""Run a source's cleaning rules in their declared order and account for every row.

The result reconciles: ``input_rows = output_rows + duplicates_removed + rows_dropped``. A rule whose
outcome does not add up (rows neither kept nor returned as removed) stops the run — silently losing rows
is the one failure a cleaning step must never have.

Denoising is visible: every value a rule nulls, clips or fills keeps its original in the per-row JSON
column ``_replaced`` (``{"temperature": {"original": 500, "rule": "valid_range -> impute", "action":
"filled", "steps": [...]}}``; null on rows nothing replaced). A value changed by several rules keeps
the first original, the rule chain joined by `` -> ``, the last action and every step. The rules report
what they replaced (``RuleOutcome.replaced``) by position; the pipeline pins those to index labels, so
it follows rows through every later filter, and builds JSON only for the changed rows.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import orjson
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
from pydantic import ValidationError

from lepton_pipelines.cleaning.base import (
    CLEANING_RULES,
    REASON_COLUMN,
    REPLACED_COLUMN,
    RULE_COLUMN,
    CleaningRule,
    RuleOutcome,
    TableInfo,
)
from lepton_pipelines.cleaning.support import select_rows


class CleaningConfigError(ValueError):
    """Every problem in a list of rule entries, one line each, naming the entry, field and what is allowed."""

    def __init__(self, problems: list[str]):
        self.problems = problems
        super().__init__(f"{len(problems)} problem(s) in cleaning rules:\n" + "\n".join(f"  - {p}" for p in problems))


@dataclass
class CleaningResult:
    frame: pd.DataFrame
    removed: pd.DataFrame  # every removed row with _reason and _rule (duplicates: _rule == "deduplicate")
    input_rows: int
    duplicates_removed: int = 0
    rows_dropped: int = 0  # removals other than superseded duplicates
    reports: dict[str, dict[str, Any]] = field(default_factory=dict)  # "<index>_<rule>" → rule report
    lineage: dict[str, list[str]] = field(default_factory=dict)  # column → what each rule did to it, in order

    def reconciliation(self) -> dict[str, Any]:
        output_rows = len(self.frame)
        return {
            "input_rows": self.input_rows,
            "output_rows": output_rows,
            "duplicates_removed": self.duplicates_removed,
            "rows_dropped": self.rows_dropped,
            "balanced": self.input_rows == output_rows + self.duplicates_removed + self.rows_dropped
            and len(self.removed) == self.duplicates_removed + self.rows_dropped,
        }


def run_cleaning(df: pd.DataFrame, rules: Sequence[CleaningRule], consume: bool = False) -> CleaningResult:
    """Apply ``rules`` in order; each rule sees only the rows every earlier rule kept.

    Removals are collected in one ``alive`` mask while the rules that take it run on the unfiltered frame
    (see ``cleaning.base``), so the frame is copied once at the end instead of once per removing rule.
    ``consume``: the caller hands ``df`` over (a step that read its partition only to clean it) — its
    columns are released while the survivors are copied, so the landed and the cleaned table are never
    both whole in memory; ``df`` is left without columns.
    """
    if not df.index.is_unique:  # replacements follow rows by index label
        df = df.reset_index(drop=True)
    frame = df
    alive: np.ndarray | None = None  # None: every row of ``frame`` is alive
    replacements = _Replacements()
    removed: list[pd.DataFrame] = []
    empty = df.iloc[0:0].copy()  # a copy: a 0-row view would keep every column of ``df`` alive
    result = CleaningResult(frame=df, removed=empty, input_rows=len(df))
    for index, rule in enumerate(rules):
        if rule.takes_alive_mask:
            alive = np.ones(len(frame), dtype=bool) if alive is None else alive
            outcome = rule.apply(frame, alive=alive)
        else:
            if alive is not None:
                frame, alive = select_rows(frame, alive), None
            outcome = rule.apply(frame)
        rows_in = len(frame) if alive is None else int(alive.sum())
        removed_count = 0 if outcome.removed is None else len(outcome.removed)
        kept = _kept_rows(outcome, frame, alive)
        if kept + removed_count != rows_in or outcome.duplicates_removed > removed_count:
            raise RuntimeError(
                f"cleaning rule #{index} {rule.name!r} does not account for its rows: {rows_in} in, "
                f"{kept} kept, {removed_count} removed ({outcome.duplicates_removed} as duplicates)"
            )
        if outcome.removed is not None:
            removed.append(outcome.removed)
        result.duplicates_removed += outcome.duplicates_removed
        result.rows_dropped += removed_count - outcome.duplicates_removed
        result.reports[f"{index}_{rule.name}"] = outcome.report
        for column, step in outcome.lineage.items():
            result.lineage.setdefault(column, []).append(f"{rule.name}: {step}")
        for column, replaced in outcome.replaced.items():
            replacements.add(
                column, outcome.frame.index[replaced.positions], replaced.original, rule.name, replaced.action
            )
        frame = outcome.frame
        if outcome.keep is not None:
            alive = alive & outcome.keep
    result.frame = frame if alive is None or alive.all() else select_rows(frame, alive, consume=consume)
    del frame
    if consume and result.frame is not df:
        for name in list(df.columns):  # columns no rule replaced are still the caller's: release them too
            del df[name]
    result.frame = result.frame.copy(deep=False)  # copy-on-write: the caller's frame never gets the column
    result.frame[REPLACED_COLUMN] = replacements.column(result.frame.index)
    result.removed = _concat_removed(removed, empty)
    return result


class _Replacements:
    """Replaced values per column, by index label, in rule order; rendered as ``_replaced`` at the end.

    Rendering is vectorised in Arrow for the usual case — one rule changed one column of a row, the
    original a number or missing — and falls back to Python only for rows with a chain of rules on one
    column or non-numeric originals. (A partition may have a fifth of its rows clipped.)
    """

    def __init__(self) -> None:
        self.events: dict[str, list[tuple[pd.Index, pd.Series, str, str]]] = {}

    def add(self, column: str, labels: pd.Index, original: pd.Series, rule: str, action: str) -> None:
        self.events.setdefault(column, []).append((labels, original.reset_index(drop=True), rule, action))

    def column(self, index: pd.Index) -> pd.Series:
        """The ``_replaced`` column for the rows of ``index`` (null where nothing was replaced)."""
        positions: list[np.ndarray] = []
        members: list[pa.Array] = []
        for column, events in self.events.items():
            found = _column_members(column, events, index)
            if found is not None:
                positions.append(found[0])
                members.append(found[1])
        if not positions:
            return pd.Series(pa.nulls(len(index), pa.large_string()).to_pandas().array, index=index)
        where = np.concatenate(positions)
        text = pa.concat_arrays(members)
        rows, first, counts = np.unique(where, return_index=True, return_counts=True)
        objects = _join("{", text.take(pa.array(first)), "}")
        several = np.flatnonzero(counts > 1)  # rows with more than one replaced column: joined in Python
        if len(several):
            shared = np.flatnonzero(np.isin(where, rows[several]))  # members in column order (concatenation order)
            by_row: dict[int, list[str]] = {}
            for position, member in zip(where[shared].tolist(), text.take(pa.array(shared)).to_pylist(), strict=True):
                by_row.setdefault(position, []).append(member)
            joined = ["{" + ",".join(by_row[p]) + "}" for p in rows[several].tolist()]
            slots = np.arange(len(rows))
            slots[several] = len(rows) + np.arange(len(several))
            objects = pa.concat_arrays([objects, pa.array(joined, pa.large_string())]).take(pa.array(slots))
        slots = np.full(len(index), -1, dtype=np.int64)
        slots[rows] = np.arange(len(rows))
        return pd.Series(objects.take(pa.array(slots, mask=slots < 0)).to_pandas().array, index=index)


def _column_members(column: str, events: list, index: pd.Index) -> tuple[np.ndarray, pa.Array] | None:
    """(row positions in ``index``, ``"<column>":{…}`` JSON member per position) for one column."""
    labels = np.concatenate([np.asarray(e[0]) for e in events])
    originals = pd.concat([e[1] for e in events], ignore_index=True)
    step = np.concatenate([np.full(len(e[0]), i, dtype=np.int64) for i, e in enumerate(events)])
    positions = _label_positions(index, labels)
    present = positions >= 0
    positions, originals, step = positions[present], originals[present].reset_index(drop=True), step[present]
    if not len(positions):
        return None
    chained = pd.Series(positions).duplicated(keep=False).to_numpy()
    key = orjson.dumps(column).decode()
    single = ~chained
    out_positions = [positions[single]]
    out_text = []
    if single.any():
        original_json = _json_texts(originals[single])
        rule_action = np.array(
            [f',"rule":{orjson.dumps(e[2]).decode()},"action":{orjson.dumps(e[3]).decode()}}}' for e in events],
            dtype=object,
        )[step[single]]
        out_text.append(_join(key + ':{"original":', original_json, pa.array(rule_action, pa.large_string())))
    if chained.any():
        # A value changed by several rules (nulled, then filled): first original, rule chain, every step.
        # Rows share few distinct chains, so each chain's text is built once.
        order = np.lexsort((step[chained], positions[chained]))
        where, steps = positions[chained][order], step[chained][order]
        first_originals = originals[chained].reset_index(drop=True).iloc[order].reset_index(drop=True)
        rows, starts = np.unique(where, return_index=True)
        ends = np.append(starts[1:], len(where))
        chain_texts: dict[tuple, str] = {}
        tails = []
        for a, b in zip(starts.tolist(), ends.tolist(), strict=True):
            chain = tuple(steps[a:b].tolist())
            tail = chain_texts.get(chain)
            if tail is None:
                tail = chain_texts[chain] = _chain_tail([(events[i][2], events[i][3]) for i in chain])
            tails.append(tail)
        out_positions.append(rows)
        out_text.append(
            _join(key + ':{"original":', _json_texts(first_originals.iloc[starts]), pa.array(tails, pa.large_string()))
        )
    return np.concatenate(out_positions), pa.concat_arrays([t.cast(pa.large_string()) for t in out_text])


def _label_positions(index: pd.Index, labels: np.ndarray) -> np.ndarray:
    """``index.get_indexer(labels)`` without the hash table.

    The surviving rows' labels are increasing (rules filter, never reorder), so a binary search finds them;
    ``get_indexer`` would hash the whole index — ~40 MiB and a tenth of a second for a million rows, to
    place the few thousand values a rule replaced.
    """
    values = index.to_numpy()
    if (
        isinstance(index, pd.RangeIndex)
        or not len(values)
        or not (values.dtype.kind in "iu" and (values[1:] > values[:-1]).all())
    ):
        return index.get_indexer(labels)
    labels = np.asarray(labels, dtype=values.dtype)
    found = np.searchsorted(values, labels)
    inside = found < len(values)
    found[inside & (values[np.minimum(found, len(values) - 1)] != labels)] = -1
    found[~inside] = -1
    return found


def _join(*parts) -> pa.Array:
    """Element-wise concatenation of large-string arrays and literal texts."""
    parts = [p if isinstance(p, (pa.Array, pa.ChunkedArray)) else pa.scalar(p, pa.large_string()) for p in parts]
    return pc.binary_join_element_wise(*parts, pa.scalar("", pa.large_string()))


def _json_texts(values: pd.Series) -> pa.Array:
    """JSON text of each original: numbers cast in Arrow, missing as null, others through orjson."""
    if pd.api.types.is_numeric_dtype(values.dtype) and not pd.api.types.is_bool_dtype(values.dtype):
        numbers = pa.array(
            values.astype("float64") if not pd.api.types.is_integer_dtype(values.dtype) else values, from_pandas=True
        )
        text = pc.cast(numbers, pa.large_string())
        if pa.types.is_floating(numbers.type):
            finite = pc.is_finite(numbers)
            text = pc.if_else(pc.or_kleene(finite, pc.is_null(numbers)), text, _join('"', text, '"'))
        return pc.fill_null(text, pa.scalar("null", pa.large_string()))
    return pa.array([orjson.dumps(_json_value(v)).decode() for v in values.tolist()], pa.large_string())


def _chain_tail(steps: list[tuple[str, str]]) -> str:
    """``,"rule":"a -> b","action":"<last>","steps":[…]}`` of a chain of (rule, action) steps."""
    rule = " -> ".join(r for r, _ in steps)
    body = orjson.dumps(
        {"rule": rule, "action": steps[-1][1], "steps": [{"rule": r, "action": a} for r, a in steps]}
    ).decode()
    return "," + body[1:]


def _member(steps: list[tuple]) -> bytes:
    original, rule, action = steps[0][0], " -> ".join(s[1] for s in steps), steps[-1][2]
    body = {"original": _json_value(original), "rule": rule, "action": action}
    if len(steps) > 1:
        body["steps"] = [{"rule": s[1], "action": s[2]} for s in steps]
    return orjson.dumps(body)


def _json_value(value):
    """A replaced value as JSON: numbers as numbers, missing as null, anything else as text."""
    if value is None or value is pd.NA or value is pd.NaT:
        return None
    if isinstance(value, (float, np.floating)):
        return None if np.isnan(value) else float(value)
    if isinstance(value, (bool, np.bool_)):
        return bool(value)
    if isinstance(value, (int, np.integer)):
        return int(value)
    if isinstance(value, (pd.Timestamp, np.datetime64)):
        return pd.Timestamp(value).isoformat()
    return value if isinstance(value, str) else str(value)


def _kept_rows(outcome: RuleOutcome, frame: pd.DataFrame, alive: np.ndarray | None) -> int:
    """Rows the rule kept, counted among the rows it was given (its alive rows, when given a mask)."""
    if alive is None:
        return len(outcome.frame)
    if len(outcome.frame) != len(frame) or (outcome.keep is not None and len(outcome.keep) != len(frame)):
        raise RuntimeError("a rule given `alive` must return the unfiltered frame (and `keep` over its rows)")
    return int(alive.sum() if outcome.keep is None else (outcome.keep & alive).sum())


def build_rules(entries: Sequence[Mapping[str, Any]], table: TableInfo) -> list[CleaningRule]:
    """Rules from YAML-shaped entries (``{"rule": "trim", ...}``), checked against ``table``; all problems at once."""
    rules: list[CleaningRule] = []
    problems: list[str] = []
    for index, entry in enumerate(entries):
        where = f"cleaning[{index}]"
        name = entry.get("rule")
        if name not in CLEANING_RULES:
            problems.append(
                f"{where}.rule: {name!r} is not a cleaning rule; allowed: {', '.join(sorted(CLEANING_RULES))}"
            )
            continue
        cls = CLEANING_RULES[name]
        try:
            config = cls.Config.model_validate(dict(entry))
        except ValidationError as exc:
            for err in exc.errors():
                loc = ".".join(str(p) for p in err["loc"])
                problems.append(f"{where} ({name}){'.' + loc if loc else ''}: {err['msg']}")
            continue
        rule = cls(config, table)
        problems.extend(f"{where} ({name}): {p}" for p in rule.validate_against(table))
        rules.append(rule)
    if problems:
        raise CleaningConfigError(problems)
    return rules


def _concat_removed(frames: list[pd.DataFrame], empty: pd.DataFrame) -> pd.DataFrame:
    if not frames:
        empty = empty.copy()
        empty[REASON_COLUMN] = pd.Series(dtype="str")
        empty[RULE_COLUMN] = pd.Series(dtype="str")
        return empty
    return pd.concat(frames)
