"""GitHub Actions workflow commands, escaped so no text a finding quotes can inject another.

A finding's reason may quote an item id, a trigger phrase or a file name that the update's author
chose; unescaped, a newline in it would start a new `::command::` line (set an output, stop
commands, add a mask...). Escaping follows the runner's own rules (actions/toolkit `command.ts`).
"""

from __future__ import annotations


def _escape_data(text: str) -> str:
    return text.replace("%", "%25").replace("\r", "%0D").replace("\n", "%0A")


def _escape_property(text: str) -> str:
    return _escape_data(text).replace(":", "%3A").replace(",", "%2C")


def workflow_command(command: str, message: str, **properties: str) -> str:
    """`::command key=value,...::message` with every part escaped."""
    props = ",".join(f"{k}={_escape_property(v)}" for k, v in properties.items())
    return f"::{command}{' ' + props if props else ''}::{_escape_data(message)}"
