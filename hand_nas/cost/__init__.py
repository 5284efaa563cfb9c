"""Cost measurement: GMACs (fvcore convention), parameters, latency."""
