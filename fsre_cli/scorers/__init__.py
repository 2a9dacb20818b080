"""Relation scorers: one module per method, built through one registry (see `build`)."""
