"""Queries over the models, one module per area, so services read intent, not SQL."""
