"""Model-service images: build context, Docker build/push, smoke test, and the build job."""
