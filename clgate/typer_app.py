"""The one way clgate builds a typer app, so that every command prints its help the same way.

Help is plain click formatting (`rich_markup_mode=None`): rich's help layout more than doubles the
start-up time of `clgate --help`, and no clgate help text uses rich markup. Commands still print
rich tables and markup in what they output.
"""

from __future__ import annotations

from typing import Any

import typer


def typer_app(**settings: Any) -> typer.Typer:
    """A typer app with clgate's shared settings; `settings` are `typer.Typer`'s other arguments. Shell
    completion is installed from `clgate` itself, so no subcommand lists its completion options."""
    return typer.Typer(**{"rich_markup_mode": None, "add_completion": False, **settings})
