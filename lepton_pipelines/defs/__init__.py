"""The project's Dagster defs folder (``[tool.dg.project]`` in pyproject.toml): ``sources/<name>/defs.yaml``,
one ``SourceComponent`` a source. Only YAML lives here; ``lepton_pipelines.definitions`` loads the folder
and adds what spans sources (jobs, sensors, governance, analytics) and the other folders' Definitions."""
