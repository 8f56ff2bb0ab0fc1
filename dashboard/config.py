"""What the dashboard was started on: `streamlit run app.py -- --ledger DB [--trust ...]`."""

from __future__ import annotations

import argparse
from dataclasses import dataclass
from pathlib import Path

from clgate.errors import InputError
from clgate.redact import display_target


@dataclass(frozen=True)
class Config:
    ledger: str
    trust: Path
    users: Path | None = None

    @property
    def ledger_label(self) -> str:
        """The ledger as shown on the page: a database password never appears."""
        return display_target(self.ledger)


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> None:  # type: ignore[override]
        raise InputError(f"dashboard arguments: {message}")


def parse_config(argv: list[str]) -> Config:
    parser = _Parser(prog="clgate dashboard", add_help=False)
    parser.add_argument("--ledger", required=True)
    for flag in ("--trust", "--users"):
        parser.add_argument(flag, type=Path)
    args, _ = parser.parse_known_args(argv)
    if args.trust is None:
        raise InputError("the dashboard needs --trust: without it a forged ledger would be shown as verified")
    return Config(args.ledger, args.trust, args.users)
