"""Faithful fake Trello, Asana and REST servers on loopback, for the demo, tests and benchmarks."""
