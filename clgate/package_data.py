"""Files shipped inside clgate's packages (prompt lists, suites' items, the default policy), found one way.

Through `importlib.resources`, so a file is found wherever the package is installed (editable, wheel),
never relative to a source tree. clgate is not installed zipped, so each is a real file with a path.
"""

from __future__ import annotations

from importlib import resources
from pathlib import Path


def package_file(package: str, *parts: str) -> Path:
    """A file of `package` as a path: loaders take paths, and errors name the file."""
    return Path(str(resources.files(package).joinpath(*parts)))


def package_lines(package: str, *parts: str) -> list[str]:
    """The lines of a bundled list, stripped, without blank lines and `#` comments."""
    text = package_file(package, *parts).read_text(encoding="utf-8")
    return [ln.strip() for ln in text.splitlines() if ln.strip() and not ln.startswith("#")]
