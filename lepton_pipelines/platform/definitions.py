"""The platform's definitions, merged into the code location by ``lepton_pipelines.definitions``
(``Definitions.merge(..., platform.definitions.defs)``)."""

from dagster import Definitions

from lepton_pipelines.platform.backup_jobs import lake_backup, lake_backup_daily, lake_restore
from lepton_pipelines.platform.sensors import lepton_run_failure_alert

defs = Definitions(
    jobs=[lake_backup, lake_restore],
    schedules=[lake_backup_daily],
    sensors=[lepton_run_failure_alert],
)
