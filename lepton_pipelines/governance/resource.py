"""The Great Expectations resource: one ephemeral GX context per process, created on first use.

Ephemeral because suites are built from the source registry on every run — YAML is the source of
truth, so there is nothing for a GX project folder to hold. GX is never imported at definitions load
(the import alone costs seconds, in every process): the first validation of a process imports it.

It is not prepared on a background thread at run start: importing GX (which pulls in SQLAlchemy) on one
thread while a step imports on another raced in CI — "partially initialized module
'sqlalchemy.orm.exc'" failed a raw step — and Python's per-module import locks cannot rule that out.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import dagster as dg
import pandas as pd
from pydantic import Field, PrivateAttr

from lepton_pipelines.governance.expectations import CheckPlan
from lepton_pipelines.governance.validation import DATA_SOURCE, SAMPLE_SIZE, SuiteOutcome, validate_with_gx


class GreatExpectationsResource(dg.ConfigurableResource):
    """Validates DataFrames against suites built from the source registry (register as ``gx``)."""

    sample_size: int = Field(
        default=SAMPLE_SIZE, ge=0, le=200, description="unexpected values kept per check as a sample"
    )
    progress_bars: bool = Field(default=False, description="GX's metric progress bars in the step log")
    batch_fingerprint_max_bytes: int = Field(
        default=0,
        ge=0,
        description="GX hashes every in-memory batch smaller than this (GX default 1e9) for a batch marker, twice per "
        "validation — about half the validation time of a 1M-row partition. The pipeline keeps its own fingerprint of "
        "each validated frame in _quality, so the default 0 skips GX's. GX has no setting for it: applied around "
        "each batch build only (see validation.batch_fingerprint_limit).",
    )

    _context: Any = PrivateAttr(default=None)
    _lock: Any = PrivateAttr(default_factory=threading.Lock)
    _keep_data_source: bool = PrivateAttr(default=False)

    def get_context(self) -> Any:
        with self._lock:  # one context per process, also when the clean step's checks run on a worker thread
            return self._build_context()

    def _build_context(self) -> Any:
        if self._context is None:
            import great_expectations as gx
            from great_expectations.data_context.types.base import ProgressBarsConfig

            context = gx.get_context(mode="ephemeral")
            context.variables.progress_bars = ProgressBarsConfig(globally=self.progress_bars)
            logging.getLogger("great_expectations").setLevel(logging.WARNING)
            self._context = context
        return self._context

    def validate(self, source: str, frame: pd.DataFrame, plans: list[CheckPlan]) -> SuiteOutcome:
        return validate_with_gx(
            self.get_context(),
            source,
            frame,
            plans,
            self.sample_size,
            self.batch_fingerprint_max_bytes,
            keep_data_source=self._keep_data_source,
        )

    @contextmanager
    def reusing_data_source(self) -> Iterator[None]:
        """Within the block, validations share one GX pandas data source, removed when the block ends.

        Adding and removing it (GX serialises its config each time) is about a quarter of validating a
        10,000-row partition: a step that validates a range of partitions one by one pays it once.
        """
        self._keep_data_source = True
        try:
            yield
        finally:
            self._keep_data_source = False
            if self._context is not None and DATA_SOURCE in self._context.data_sources.all():
                self._context.data_sources.delete(DATA_SOURCE)
