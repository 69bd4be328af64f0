"""No connector error path leaks a secret into Dagster or the lake.

Each HTTP and SQL error path runs as a real materialization of ``<source>/raw`` — sources declared in
YAML and loaded by the registry, a DagsterInstance on a temporary ``DAGSTER_HOME`` with SQLite storage
and local compute logs, the API in its own process, the real PostgreSQL — with the HTTP auth header and
the database password in the environment. Afterwards every byte under ``DAGSTER_HOME`` (run, event-log
and schedule SQLite databases with their journals, compute logs) and under the lake is searched for the
secrets in every spelling. A control run that logs, prints and raises a secret on purpose proves the
search finds a secret in each of those places.
"""

from __future__ import annotations

import uuid
from pathlib import Path
from urllib.parse import quote

import dagster as dg
import pytest

from lepton_pipelines.governance import GreatExpectationsResource
from lepton_pipelines.resources import RESOURCES
from lepton_pipelines.sources.factory import build_source_assets
from lepton_pipelines.sources.registry import load_sources

from .test_sql import POSTGRES_URL, SilentServer, free_port

pytestmark = pytest.mark.timeout(300)
PARTITION = "2026-01-02"
TOKEN = f"tk-{uuid.uuid4().hex[:8]}"  # short: the echoed header must fit the quoted 120 characters
AUTH = f"Bearer {TOKEN}"
PASSWORD = f"pw/{uuid.uuid4().hex[:12]}@x"  # '/' and '@' force URL-encoding: both spellings must vanish
SECRETS = (TOKEN, PASSWORD, quote(PASSWORD, safe=""))

DAGSTER_YAML = """\
storage:
  sqlite:
    base_dir: {home}/storage
compute_logs:
  module: dagster._core.storage.local_compute_log_manager
  class: LocalComputeLogManager
  config:
    base_dir: {home}/compute_logs
telemetry:
  enabled: false
"""

SOURCE_YAML = """\
name: {name}
description: Connector error path {name}.
owner: team:platform
connector: {connector}
schema:
  - {{name: id, type: integer}}
partitioning: daily
start_date: "2026-01-01"
"""


@pytest.fixture
def instance(tmp_path, monkeypatch):
    home = tmp_path / "dagster_home"
    home.mkdir()
    (home / "dagster.yaml").write_text(DAGSTER_YAML.format(home=home))
    monkeypatch.setenv("DAGSTER_HOME", str(home))
    monkeypatch.setenv("LEPTON_LAKE_URL", str(tmp_path / "lake"))
    with dg.DagsterInstance.get() as instance:
        yield instance


def sources_from_yaml(folder: Path, connectors: dict[str, dict]) -> dict:
    import json

    folder.mkdir()
    for name, connector in connectors.items():
        (folder / f"{name}.yaml").write_text(SOURCE_YAML.format(name=name, connector=json.dumps(connector)))
    return {source.name: source for source in load_sources([folder])}


def materialize(source, instance, zones: tuple[str, ...] = ("raw",)) -> dg.ExecuteInProcessResult:
    assets = [a for a in build_source_assets(source) if a.key.path[-1] in zones]
    return dg.materialize(
        assets,
        instance=instance,
        partition_key=PARTITION,
        raise_on_error=False,
        resources={**RESOURCES, "gx": GreatExpectationsResource()},
    )


def failure_message(result: dg.ExecuteInProcessResult) -> str:
    [failure] = [e for e in result.all_events if e.event_type == dg.DagsterEventType.STEP_FAILURE]
    return failure.step_failure_data.error.message


def files_holding(root: Path, secrets: tuple[str, ...]) -> dict[str, list[str]]:
    """Every file under ``root`` that contains one of the secrets (as UTF-8 or UTF-16 bytes)."""
    found: dict[str, list[str]] = {}
    for path in root.rglob("*"):
        if path.is_file():
            data = path.read_bytes()
            hits = [s for s in secrets if s.encode() in data or s.encode("utf-16-le") in data]
            if hits:
                found[str(path.relative_to(root))] = hits
    return found


def test_no_error_path_leaves_a_secret_in_the_instance_or_the_lake(api, instance, tmp_path, monkeypatch):
    monkeypatch.setenv("ORDERS_API_AUTH", AUTH)
    http = {"type": "http", "auth_header_env": "ORDERS_API_AUTH", "retries": 1, "backoff_seconds": 0.01}
    sql = {"type": "sql", "url_env": "ORDERS_DB_URL", "retries": 1, "backoff_seconds": 0.01}
    host, _, database = POSTGRES_URL.rpartition("@")[2].partition("/")
    with SilentServer() as silent:
        urls = {
            "sql_refused": (
                f"postgresql+psycopg2://postgres:{quote(PASSWORD, safe='')}@127.0.0.1:{free_port()}/{database}"
            ),
            "sql_hangs": (
                f"postgresql+psycopg2://postgres:{quote(PASSWORD, safe='')}@127.0.0.1:{silent.port}/{database}"
            ),
            "sql_slow": f"postgresql+psycopg2://postgres:{quote(PASSWORD, safe='')}@{host}/{database}",
        }
        sources = sources_from_yaml(
            tmp_path / "registry",
            {
                "api_html_echo": {**http, "url": f"{api.base}/echo/200/html"},
                "api_denied_echo": {**http, "url": f"{api.base}/echo/401/json"},
                "api_broken_echo": {**http, "url": f"{api.base}/echo/500/json"},
                "api_slow": {**http, "url": f"{api.base}/slow", "timeout_seconds": 0.2},
                "api_refused": {**http, "url": f"http://127.0.0.1:{free_port()}/orders"},
                "api_item_echo": {**http, "url": f"{api.base}/echo/200/items"},
                "sql_refused": {**sql, "query": "SELECT 1 AS id"},
                "sql_hangs": {**sql, "query": "SELECT 1 AS id", "connect_timeout": "2s"},
                "sql_slow": {**sql, "query": "SELECT pg_sleep(30), 1 AS id", "statement_timeout": "1s"},
                "sql_bad_query": {**sql, "query": "SELECT id FROM no_such_table_e2e"},
            },
        )
        expected_failures = {
            "api_html_echo": "HTTP 200 answer is not JSON",
            "api_denied_echo": "HTTP 401 Unauthorized",
            "api_broken_echo": "HTTP 500 Internal Server Error",
            "api_slow": "no answer within timeout_seconds=0.2",
            "api_refused": "connection failed: [Errno 111] Connection refused",
            "sql_refused": "Connection refused",
            "sql_hangs": "no answer from the database within connect_timeout=2s",
            "sql_slow": "the query ran longer than statement_timeout=1s",
            "sql_bad_query": 'relation "no_such_table_e2e" does not exist',
        }
        for name, expected in expected_failures.items():
            monkeypatch.setenv(
                "ORDERS_DB_URL",
                urls.get(name, f"postgresql+psycopg2://postgres:{quote(PASSWORD, safe='')}@{host}/{database}"),
            )
            result = materialize(sources[name], instance)
            assert not result.success, name
            assert expected in failure_message(result), (name, failure_message(result))

    # The echoed header reached us as data: the non-object item is quarantined, the object governed.
    echoed = materialize(sources["api_item_echo"], instance, zones=("raw", "clean", "governed"))
    assert echoed.success
    lake = Path(tmp_path / "lake")
    assert list(lake.rglob("quarantine/api_item_echo/**/raw.parquet")) and list(
        lake.rglob("governed/api_item_echo/**/*.parquet")
    )

    # The server did receive the secret on every HTTP path: there was something to leak.
    assert {hit["headers"]["authorization"] for hit in api.hits("/echo/200/html")} == {AUTH}

    home = Path(instance.root_directory)
    assert list(home.rglob("*.db")) and list((home / "compute_logs").rglob("*.err"))
    assert files_holding(home, SECRETS) == {}
    assert files_holding(lake, SECRETS) == {}


def test_control_the_search_finds_a_secret_that_was_logged(instance, tmp_path):
    """Guards the test above: a secret that *is* logged, printed and raised is found in each place."""
    secret = f"control-{uuid.uuid4().hex}"

    @dg.asset
    def leaky(context):
        context.log.info(f"logging {secret}")
        print(f"printing {secret}", flush=True)
        raise ValueError(f"raising {secret}")

    assert not dg.materialize([leaky], instance=instance, raise_on_error=False).success
    found = files_holding(Path(instance.root_directory), (secret,))
    assert any(path.endswith(".db") for path in found), found
    assert any(path.startswith("compute_logs") for path in found), found
