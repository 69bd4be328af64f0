"""The registry half of the bad-input corpus: YAML a person would write wrong, each with the exact
problem the loader reports — naming the file, the field (columns by name) and what is allowed."""

from __future__ import annotations

import json

import pytest

from lepton_pipelines.sources.registry import load_source_file

from .corpus import BASE, merged

pytestmark = pytest.mark.timeout(120)

# (case id, change to the base source, text the problem must contain)
REGISTRY_CASES: list[tuple[str, dict, str]] = [
    (
        "unknown_top_level_field",
        {"primary_keys": ["id"]},
        "primary_keys: unknown field (did you mean 'primary_key'?); allowed here: cleaning, connector",
    ),
    (
        "unknown_column_field",
        {"schema": {"qty": {"nulable": False}}},
        "schema[qty].nulable: unknown field (did you mean 'nullable'?)",
    ),
    (
        "unknown_governance_field",
        {"governance": {"on_parse_eror": "null"}},
        "governance.on_parse_eror: unknown field (did you mean 'on_parse_error'?)",
    ),
    (
        "bad_column_type_named_by_column",
        {"schema": {"amount": {"type": "money"}}},
        "schema[amount].type: 'money' is not a column type; allowed: string, integer, float, boolean, timestamp, "
        "date, json, decimal(p, s)",
    ),
    (
        "unquoted_date_in_a_text_field",
        {"owner": "__DATE__"},
        "owner: YAML read 2013-01-01 as a date, not text; quote it",
    ),
    (
        "date_column_in_daily_source",
        {"schema": {"day": None, "date": {"type": "date"}}},
        "schema[date]: a daily source's tables live in `date=YYYY-MM-DD` folders",
    ),
    ("decimal_precision_too_large", {"schema": {"amount": {"type": "decimal(40, 2)"}}}, "precision must be 1-38"),
    (
        "format_on_a_string_column",
        {"schema": {"id": {"format": "%Y"}}},
        "schema[id]: format: not an option of a string column",
    ),
    (
        "format_that_is_not_a_pattern",
        {"schema": {"ts": {"format": "dd/mm/yyyy"}}},
        "format 'dd/mm/yyyy': use strftime patterns",
    ),
    ("unknown_timezone", {"schema": {"ts": {"timezone": "Mars/Olympus"}}}, "'Mars/Olympus' is not an IANA time zone"),
    (
        "invalid_regex_found_at_load",
        {
            "expectations": [
                {"expectation": "expect_column_values_to_match_regex", "kwargs": {"column": "id", "regex": "[A-Z"}}
            ]
        },
        "kwargs.regex: '[A-Z' is not a valid regular expression",
    ),
    (
        "between_on_a_text_column",
        {
            "expectations": [
                {"expectation": "expect_column_values_to_be_between", "kwargs": {"column": "currency", "min_value": 0}}
            ]
        },
        "column 'currency' is declared string; expect_column_values_to_be_between compares numbers or times",
    ),
    (
        "set_members_that_do_not_fit",
        {
            "expectations": [
                {
                    "expectation": "expect_column_values_to_be_in_set",
                    "kwargs": {"column": "qty", "value_set": ["1", "2"]},
                }
            ]
        },
        "kwargs.value_set: ['1', '2'] do not fit integer column 'qty'",
    ),
    (
        "parse_policy_typo",
        {"governance": {"on_parse_error": "drop"}},
        "governance.on_parse_error: Input should be 'quarantine', 'null' or 'fail'",
    ),
    (
        "retained_fraction_out_of_range",
        {"governance": {"min_retained_fraction": 1.5}},
        "governance.min_retained_fraction: Input should be less than or equal to 1",
    ),
    (
        "from_mapping_twice",
        {"schema": {"qty": {"from": "amount"}}},
        "landed column(s) mapped twice (name/from): amount",
    ),
]


@pytest.mark.parametrize("case_id, change, expected", REGISTRY_CASES, ids=[c[0] for c in REGISTRY_CASES])
def test_registry_case(tmp_path, case_id, change, expected):
    text = json.dumps(merged(BASE, change)).replace('"__DATE__"', "2013-01-01")  # an unquoted YAML date
    path = tmp_path / "corpus.yaml"
    path.write_text(text)
    source, problems = load_source_file(path)
    assert source is None
    assert any(expected in p and p.startswith(str(path)) for p in problems), problems


def test_unquoted_start_date_is_taken_as_written(tmp_path):
    path = tmp_path / "corpus.yaml"
    path.write_text(json.dumps(merged(BASE, {"start_date": "__DATE__"})).replace('"__DATE__"', "2013-01-01"))
    source, problems = load_source_file(path)
    assert source is not None and source.spec.start_date == "2013-01-01", problems


def test_code_location_shows_the_registry_problem_before_any_traceback(tmp_path):
    """What the CLI and the UI's code-location error show: the problem first, not a traceback wall."""
    import os
    import subprocess
    import sys

    folder = tmp_path / "registry"
    folder.mkdir()
    (folder / "corpus.yaml").write_text(json.dumps(merged(BASE, {"primary_keys": ["id"]})))
    env = {**os.environ, "LEPTON_SOURCES_PATH": str(folder), "PYTHONPATH": os.getcwd()}
    done = subprocess.run(
        [sys.executable, "-c", "import lepton_pipelines.definitions"],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
    )
    assert done.returncode != 0
    first = done.stderr.index("primary_keys: unknown field (did you mean 'primary_key'?)")
    assert "Traceback" not in done.stderr[:first]
