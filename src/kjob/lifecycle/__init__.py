"""A run's life through any backend: push, follow (watch), fetch."""
