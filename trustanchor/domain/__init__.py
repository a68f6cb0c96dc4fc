"""Domain vocabulary as plain frozen dataclasses: no I/O, no framework."""
