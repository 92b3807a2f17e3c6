"""The inference service: serves the registry's champion forest cover model over HTTP."""
