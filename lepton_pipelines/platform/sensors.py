"""The run-failure alert: one sensor watching every job, posting to ``$LEPTON_ALERT_WEBHOOK_URL``."""

from dagster import DagsterEventType, DefaultSensorStatus, RunFailureSensorContext, run_failure_sensor

from lepton_pipelines.platform.alerts import failure_alert_payload, post_alert


@run_failure_sensor(
    name="lepton_run_failure_alert",
    monitor_all_code_locations=True,
    default_status=DefaultSensorStatus.RUNNING,
    description="Posts a JSON alert for every failed run to $LEPTON_ALERT_WEBHOOK_URL (logs it when unset).",
)
def lepton_run_failure_alert(context: RunFailureSensorContext) -> None:
    run = context.dagster_run
    step_failures = [e for e in context.get_step_failure_events() if e.event_type == DagsterEventType.STEP_FAILURE]
    failed_steps = [e.step_key for e in step_failures if e.step_key]
    # The first step's error message (not its stack trace) is what a person needs to triage.
    first_error = next((e.event_specific_data.error for e in step_failures if e.event_specific_data), None)
    message = context.failure_event.message or ""
    while first_error is not None and first_error.cause is not None:  # Dagster wraps the user's exception
        first_error = first_error.cause
    if first_error is not None:
        message = f"{message} {first_error.cls_name}: {first_error.message.strip()}"
    origin = run.remote_job_origin
    payload = failure_alert_payload(
        job_name=run.job_name,
        run_id=run.run_id,
        message=message,
        failed_steps=failed_steps,
        tags=run.tags,
        location_name=origin.location_name if origin else None,
    )
    delivery = post_alert(payload)
    if delivery.sent:
        context.log.info(f"alert for run {run.run_id} delivered: {delivery.detail}")
    else:
        context.log.warning(f"alert for run {run.run_id} not delivered ({delivery.detail}): {payload['text']}")
