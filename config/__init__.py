"""Config: the YAML models and loader (Python), plus the shipped data files.

Data files here: ``salesync.example.yaml`` (what ``salesync init`` writes), ``policy.default.yaml``
(the default policy set), ``presets/*.yaml`` (REST presets), ``demo.yaml`` (the demo's template).
"""
