"""Budget-constrained architecture search: spaces, the FLOPs gate, backends, runners, records."""
