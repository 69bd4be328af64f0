"""Models as assets: declarations (models.yaml), training, and the model registry in the lake."""
