"""The batch data API: serves the Forest Cover Type dataset batch by batch, per group."""
