"""``closeloop demo`` (filled in with the demo-data module)."""

from __future__ import annotations

import typer


def demo() -> None:
    """Seed the demo organization."""
    raise typer.Exit(1)
