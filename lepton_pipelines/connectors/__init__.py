"""Connectors: how raw data arrives. Importing this package registers every connector type."""
from lepton_pipelines.connectors.base import (
    CONNECTORS,
    LINEAGE_COLUMNS,
    REJECT_COLUMNS,
    SOURCE_FILE,
    SOURCE_LINE,
    Connector,
    ConnectorError,
    ConnectorSettings,
    FetchRequest,
    FetchResult,
    build_connector,
    flatten_record,
    landed_schema_of_records,
    merge_landed_schemas,
    merge_landed_types,
    register_connector,
    rejects_frame,
)
from lepton_pipelines.connectors.files import (
    FileConnector,
    FileSettings,
    LandingFile,
    landing_run_key,
    list_landing_files,
)
from lepton_pipelines.connectors.http import HttpConnector, HttpSettings
from lepton_pipelines.connectors.sql import SqlConnector, SqlSettings
from lepton_pipelines.connectors import mqtt  # noqa: F401,E402 — registers the `mqtt` connector type

__all__ = [
    "CONNECTORS",
    "LINEAGE_COLUMNS",
    "REJECT_COLUMNS",
    "SOURCE_FILE",
    "SOURCE_LINE",
    "Connector",
    "ConnectorError",
    "ConnectorSettings",
    "FetchRequest",
    "FetchResult",
    "FileConnector",
    "FileSettings",
    "HttpConnector",
    "HttpSettings",
    "LandingFile",
    "SqlConnector",
    "SqlSettings",
    "build_connector",
    "flatten_record",
    "landed_schema_of_records",
    "landing_run_key",
    "list_landing_files",
    "merge_landed_schemas",
    "merge_landed_types",
    "register_connector",
    "rejects_frame",
]
