"""Workflows that resolve a run's kind and run a whole step: recording, finding label issues."""
