"""Running the platform: lake backup/restore jobs, run-failure alerts, retry and runtime guards.

Other folders use :data:`TRANSIENT_RETRY_POLICY` on ops that touch S3/HTTP and
:func:`max_runtime_tags` on jobs that may hang.
"""

from lepton_pipelines.platform.retries import TRANSIENT_RETRY_POLICY, is_transient_error, max_runtime_tags

__all__ = ["TRANSIENT_RETRY_POLICY", "is_transient_error", "max_runtime_tags"]
