"""The run-failure alert: one sensor watching every failed run of the instance, posting each to
``$LEPTON_ALERT_WEBHOOK_URL``.

A plain sensor over the instance's run-failure events (what Dagster's ``run_failure_sensor`` reads)
rather than ``@run_failure_sensor``: that decorator calls its function once per failed run, so with no
webhook configured each failure would log its own "not delivered" warning. Here a tick sees every
failure since the previous tick at once and, without a webhook, says so once in the tick's skip
reason (naming the setting and the runs it did not alert), while the cursor moves on: configuring a
webhook later does not flood it with old failures.
"""

from __future__ import annotations

import os

from dagster import (
    DagsterEventType,
    DagsterInstance,
    DagsterRun,
    DefaultSensorStatus,
    RunStatusChangeRecordsFilter,
    SensorEvaluationContext,
    SensorResult,
    SkipReason,
    sensor,
)

from lepton_pipelines.platform.alerts import WEBHOOK_ENV, failure_alert_payload, post_alert

ALERT_SENSOR_NAME = "lepton_run_failure_alert"
FAILURES_PER_TICK = 50  # the rest wait for the next tick (30 s later); the cursor never skips one


def failed_run_alert(instance: DagsterInstance, run: DagsterRun, failure_message: str) -> dict:
    """The alert document for one failed run: its failed steps and the first step's own error."""
    step_failures = instance.all_logs(run.run_id, of_type=DagsterEventType.STEP_FAILURE)
    failed_steps = [e.step_key for e in step_failures if e.step_key]
    # The first step's error message (not its stack trace) is what a person needs to triage.
    first_error = next(
        (
            e.dagster_event.event_specific_data.error
            for e in step_failures
            if e.dagster_event and e.dagster_event.event_specific_data is not None
        ),
        None,
    )
    message = failure_message or ""
    while first_error is not None and first_error.cause is not None:  # Dagster wraps the user's exception
        first_error = first_error.cause
    if first_error is not None:
        message = f"{message} {first_error.cls_name}: {first_error.message.strip()}"
    origin = run.remote_job_origin
    return failure_alert_payload(
        job_name=run.job_name,
        run_id=run.run_id,
        message=message,
        failed_steps=failed_steps,
        tags=run.tags,
        location_name=origin.location_name if origin else None,
    )


@sensor(
    name=ALERT_SENSOR_NAME,
    minimum_interval_seconds=30,
    default_status=DefaultSensorStatus.RUNNING,
    description=f"Posts a JSON alert for every failed run (any code location) to ${WEBHOOK_ENV}; "
    "without a webhook each tick says how many failed runs went unalerted.",
)
def lepton_run_failure_alert(context: SensorEvaluationContext) -> SensorResult | SkipReason:
    instance = context.instance
    after = int(context.cursor) if (context.cursor or "").isdigit() else None
    if after is None:
        # First tick (or a cursor of the earlier run_failure_sensor): alert from now on; older failures are history.
        newest = instance.fetch_run_status_changes(DagsterEventType.RUN_FAILURE, limit=1, ascending=False).records
        cursor = str(newest[0].storage_id) if newest else "0"
        return SensorResult(skip_reason=SkipReason("watching for failed runs from now on"), cursor=cursor)
    failures = instance.fetch_run_status_changes(
        RunStatusChangeRecordsFilter(DagsterEventType.RUN_FAILURE, after_storage_id=after),
        limit=FAILURES_PER_TICK,
        ascending=True,
    )
    runs = [
        (record.event_log_entry.dagster_event.message if record.event_log_entry.dagster_event else "", run)
        for record in failures.records
        if (run := instance.get_run_by_id(record.run_id)) is not None
    ]
    cursor = str(failures.records[-1].storage_id) if failures.records else context.cursor
    if not os.environ.get(WEBHOOK_ENV, "").strip():
        listed = ", ".join(f"{run.job_name} ({run.run_id[:8]})" for _, run in runs)
        detail = f"{len(runs)} failed run(s) not alerted: {listed}" if runs else "no failed runs since the last tick"
        return SensorResult(
            skip_reason=SkipReason(f"no webhook configured (set {WEBHOOK_ENV}); {detail}"), cursor=cursor
        )
    delivered = 0
    for failure_message, run in runs:
        payload = failed_run_alert(instance, run, failure_message)
        delivery = post_alert(payload)
        if delivery.sent:
            delivered += 1
            context.log.info(f"alert for run {run.run_id} delivered: {delivery.detail}")
        else:
            context.log.warning(f"alert for run {run.run_id} not delivered ({delivery.detail}): {payload['text']}")
    summary = f"{delivered} of {len(runs)} failed run(s) alerted" if runs else "no failed runs since the last tick"
    return SensorResult(skip_reason=SkipReason(summary), cursor=cursor)
