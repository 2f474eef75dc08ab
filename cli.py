"""The salesync command line: parse, load config, call one function, render, map to an exit code."""

from __future__ import annotations

import click


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
def main() -> None:
    """salesync: sync sales-project tasks, enforce the policy, push flags, report to managers."""
