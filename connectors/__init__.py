"""Talking to the tools: one small Connector base, one HTTP seam, one module per kind."""
