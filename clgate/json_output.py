"""`--json PATH` on every command that has machine-readable output: a file written atomically, or
stdout for `-`, so scripts never parse tables and never read a half-written file."""

from __future__ import annotations

import sys
from pathlib import Path

from clgate.atomic import write_text_atomic

STDOUT = "-"


def write_json_output(text: str, target: Path) -> bool:
    """Write `text` to `target` (`-`: stdout); True when it went to a file."""
    if str(target) == STDOUT:
        sys.stdout.write(text if text.endswith("\n") else text + "\n")
        return False
    write_text_atomic(Path(target), text)
    return True
