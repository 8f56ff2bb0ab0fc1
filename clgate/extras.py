"""Which optional extra of clgate installs a module a command needs.

The core install (`pip install clgate`) holds the ledger, manifests, policies, JSON/HTML reports and
verification; models, evals, the dashboard and the rest come as extras. A command that reaches for a
module of a missing extra gets one line naming the extra, read from clgate's own package metadata so
that the answer cannot drift from `pyproject.toml`.
"""

from __future__ import annotations

import re

from clgate.errors import ClgateError

_REQUIREMENT = re.compile(r"^\s*([A-Za-z0-9][A-Za-z0-9._-]*)[^;]*;\s*.*extra\s*==\s*['\"]([^'\"]+)['\"]")


def _normalise(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def extra_of(distribution: str) -> str | None:
    """The first extra (other than `all`) whose requirements name `distribution`."""
    from importlib import metadata  # only on the error path: it costs start-up time

    wanted = _normalise(distribution)
    for requirement in metadata.requires("clgate") or []:
        match = _REQUIREMENT.match(requirement)
        if match and _normalise(match.group(1)) == wanted and match.group(2) != "all":
            return match.group(2)
    return None


# import names that differ from their distribution's name (a missing one has no metadata to ask)
_DISTRIBUTION_OF = {"sklearn": "scikit-learn", "mlflow": "mlflow-skinny", "OpenSSL": "pyopenssl"}


def missing_extra(module: str) -> str | None:
    """The extra to install for a `module` that failed to import: None for clgate's own modules (a bug,
    not an install) and for a package that is installed but broken inside (`transformers.x`)."""
    import importlib.util

    top = module.split(".")[0]
    if top == "clgate" or importlib.util.find_spec(top) is not None:
        return None
    return extra_of(_DISTRIBUTION_OF.get(top, top))


class MissingExtraError(ClgateError):
    """A command needs an optional extra that is not installed."""

    def __init__(self, module: str, extra: str) -> None:
        super().__init__(
            f"this command needs {module!r}, from clgate's [{extra}] extra: pip install 'clgate[{extra}]'"
        )
