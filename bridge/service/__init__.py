"""Service layer: one place that orchestrates each use case for the API (cards, readers, DMP)."""
