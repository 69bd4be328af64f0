"""Resources shared by every folder, chosen per environment in one place.

Everything that differs between a laptop, CI and production is an environment variable read at run
time (lake URL, S3 endpoint, registries, brokers, secrets), so one set of resource objects serves all
environments and ``Definitions.merge`` sees the very same object under each key.
"""
from __future__ import annotations

from lepton_pipelines.lake.io_manager import LakeIOManager
from lepton_pipelines.lake.resource import LakeResource

LAKE = LakeResource()
LAKE_IO = LakeIOManager()

SHARED_RESOURCES = {"lake": LAKE, "lake_io": LAKE_IO}
