"""What serving needs from a registered model: loading it, its compiled form, its cost."""
