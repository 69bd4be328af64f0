"""Launch runs of the code location's own jobs through the Dagster instance, the way the UI's
Launch button does: the workspace (``workspace.yaml``) starts the code server, each run is created
from the *remote* job (so it carries its code location and repository origin) and handed to the
instance's run launcher, which executes it in a subprocess of the code server.

Runs launched this way are ordinary runs of the shipped jobs: the Runs page, the Overview timeline,
each asset's partition status and the asset-check history show them exactly as if a person had
launched them. ``execute_in_process`` runs, by contrast, have no remote origin, and the timeline
leaves them out. No daemon is needed: ``launch_run`` bypasses the run queue, as the
``dagster job launch`` command does.

This module uses Dagster's workspace classes (the ones the ``dagster`` CLI uses), pinned with
dagster==1.13.27 in setup.py.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from contextlib import ExitStack
from dataclasses import dataclass, field
from pathlib import Path

import dagster as dg
from dagster._core.definitions.selector import JobSubsetSelector
from dagster._core.utils import make_new_run_id
from dagster._core.workspace.context import WorkspaceProcessContext
from dagster._core.workspace.load_target import WorkspaceFileTarget

PARTITION_TAG = "dagster/partition"


@dataclass(frozen=True)
class LaunchRequest:
    """One run of a shipped job: a partition of it, or a selection of the assets of the asset job."""

    job_name: str
    partition_key: str | None = None
    asset_selection: Sequence[dg.AssetKey] | None = None
    tags: Mapping[str, str] = field(default_factory=dict)
    run_config: Mapping[str, object] = field(default_factory=dict)

    @property
    def label(self) -> str:
        return self.job_name + (f" [{self.partition_key}]" if self.partition_key else "")


class LaunchError(RuntimeError):
    """The workspace or a job cannot be loaded: the message names the location or job."""


class InstanceLauncher:
    """``with InstanceLauncher(instance, "workspace.yaml") as launcher: launcher.launch(...)``."""

    def __init__(self, instance: dg.DagsterInstance, workspace_file: str | Path, location_name: str | None = None):
        self.instance = instance
        self.workspace_file = Path(workspace_file)
        self.location_name = location_name
        self._stack = ExitStack()

    def __enter__(self) -> InstanceLauncher:
        process = self._stack.enter_context(
            WorkspaceProcessContext(
                self.instance, WorkspaceFileTarget(paths=[str(self.workspace_file)]), code_server_log_level="WARNING"
            )
        )
        self._workspace = process.create_request_context()
        entries = self._workspace.get_code_location_entries()
        failed = {name: entry.load_error for name, entry in entries.items() if entry.load_error}
        if failed:
            self._stack.close()
            name, error = next(iter(failed.items()))
            raise LaunchError(
                f"code location {name!r} in {self.workspace_file} failed to load: {error.message.strip()}"
            )
        names = sorted(entries)
        if not names:
            self._stack.close()
            raise LaunchError(f"{self.workspace_file} declares no code location")
        self._location = self._workspace.get_code_location(self.location_name or names[0])
        self._repository = next(iter(self._location.get_repositories().values()))
        return self

    def __exit__(self, *exc) -> None:
        self._stack.close()

    def launch(self, request: LaunchRequest) -> str:
        """Create the run from the remote job and hand it to the instance's run launcher; returns its id."""
        if not self._repository.has_job(request.job_name):
            raise LaunchError(f"job {request.job_name!r} is not in code location {self._location.name!r}")
        selector = JobSubsetSelector(
            location_name=self._location.name,
            repository_name=self._repository.name,
            job_name=request.job_name,
            op_selection=None,
            asset_selection=list(request.asset_selection) if request.asset_selection else None,
        )
        remote_job = self._location.get_job(selector)
        tags = {**remote_job.tags, **request.tags}
        if request.partition_key:
            tags[PARTITION_TAG] = request.partition_key
        plan = self._location.get_execution_plan(
            remote_job, dict(request.run_config), None, None, instance=self.instance
        )
        run = self.instance.create_run(
            job_name=remote_job.name,
            run_id=make_new_run_id(),
            run_config=dict(request.run_config),
            resolved_op_selection=None,
            step_keys_to_execute=plan.execution_plan_snapshot.step_keys_to_execute,
            op_selection=None,
            status=dg.DagsterRunStatus.NOT_STARTED,
            root_run_id=None,
            parent_run_id=None,
            tags=tags,
            job_snapshot=remote_job.job_snapshot,
            execution_plan_snapshot=plan.execution_plan_snapshot,
            parent_job_snapshot=remote_job.parent_job_snapshot,
            remote_job_origin=remote_job.get_remote_origin(),
            job_code_origin=remote_job.get_python_origin(),
            asset_selection=frozenset(request.asset_selection) if request.asset_selection else None,
            asset_check_selection=None,
            asset_graph=self._repository.asset_graph,
        )
        self.instance.launch_run(run.run_id, self._workspace)
        return run.run_id

    def wait(self, run_ids: Iterable[str], timeout_seconds: float = 3600) -> dict[str, dg.DagsterRun]:
        """Block until every run has finished; a run still going at the deadline is a LaunchError."""
        return self._poll(list(run_ids), timeout_seconds, every=True)

    def run_all(
        self,
        requests: Sequence[LaunchRequest],
        parallel: int = 2,
        timeout_seconds: float = 3600,
        on_finish: Callable[[LaunchRequest, dg.DagsterRun], None] | None = None,
    ) -> list[dg.DagsterRun]:
        """Launch ``requests`` keeping at most ``parallel`` runs going; the finished runs, in request
        order. ``on_finish`` hears of each run as it finishes (to report progress)."""
        launched: dict[str, LaunchRequest] = {}
        running: list[str] = []
        done: dict[str, dg.DagsterRun] = {}

        def collect(every: bool) -> None:
            finished = self._poll(running, timeout_seconds, every=every)
            for run_id, run in finished.items():
                done[run_id] = run
                running.remove(run_id)
                if on_finish is not None:
                    on_finish(launched[run_id], run)

        for request in requests:
            while len(running) >= parallel:
                collect(every=False)
            run_id = self.launch(request)
            launched[run_id] = request
            running.append(run_id)
        while running:
            collect(every=False)
        return [done[run_id] for run_id in launched]

    def _poll(
        self, run_ids: list[str], timeout_seconds: float, every: bool, poll_seconds: float = 0.5
    ) -> dict[str, dg.DagsterRun]:
        """The finished runs among ``run_ids`` once all (``every``) or at least one of them finished."""
        deadline = time.monotonic() + timeout_seconds
        while True:
            finished = {}
            for run_id in run_ids:
                run = self.instance.get_run_by_id(run_id)
                if run is not None and run.is_finished:
                    finished[run_id] = run
            if len(finished) == len(run_ids) or (finished and not every):
                return finished
            if time.monotonic() > deadline:
                pending = [r for r in run_ids if r not in finished]
                raise LaunchError(f"runs still running after {timeout_seconds:.0f} s: {', '.join(pending)}")
            time.sleep(poll_seconds)
