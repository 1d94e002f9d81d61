"""Jupyter: the live dashboard, the magics and the rich displays; the runtime never imports this."""
