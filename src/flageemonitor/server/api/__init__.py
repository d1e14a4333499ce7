"""HTTP layer: thin routes over the repository module."""
