"""Sources as configuration: the YAML registry, its schema, and the asset factory."""
