"""The live dashboard: `registry.dashboard()` returns a `Dashboard` (see dashboard.py)."""

from agentos_nb.jupyter.dashboard.dashboard import Dashboard

__all__ = ["Dashboard"]
