"""tripwire: the composition root (settings, database, HTTP app, engine, CLI)."""

__version__ = "0.1.0"

__all__ = ["__version__"]
