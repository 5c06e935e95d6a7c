"""Layer 5, the use cases beside the turn: clients and keys, config import/export, authentication."""
