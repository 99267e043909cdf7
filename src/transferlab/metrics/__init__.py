"""Metrics, registered by name so that tasks and reports can ask for them by string."""
