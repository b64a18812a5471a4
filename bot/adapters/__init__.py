"""Adapters from the engine's ports to concrete components (retrieval, generation)."""
