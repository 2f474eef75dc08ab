"""The click commands of ``salesync``, by concern; ``cli.py`` puts them under one group."""
