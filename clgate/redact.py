"""Secrets never printed: database URLs are shown with their password masked.

A PostgreSQL ledger URL may carry a password (`postgresql://user:secret@host/db`); reports, the
dashboard, logs and error messages show it as `postgresql://user:***@host/db`.
"""

from __future__ import annotations

from pathlib import Path
from urllib.parse import urlsplit, urlunsplit


def display_target(target: str | Path) -> str:
    """A ledger path or URL as it may be shown to anyone: any password replaced by `***`."""
    text = str(target)
    if "://" not in text:
        return text
    try:
        parts = urlsplit(text)
    except ValueError:
        return text.split("://", 1)[0] + "://***"
    if parts.password is None:
        return text
    userinfo, _, hostinfo = parts.netloc.rpartition("@")
    user = userinfo.split(":", 1)[0]
    return urlunsplit(parts._replace(netloc=f"{user}:***@{hostinfo}"))


def mask_secrets(text: str, *targets: str | Path) -> str:
    """`text` with every given target's raw form replaced by its display form."""
    for target in targets:
        raw = str(target)
        if raw != display_target(raw):
            text = text.replace(raw, display_target(raw))
    return text
