"""The ``closeloop`` command line (Typer)."""
