"""What the dashboard was started on: `streamlit run app.py -- --ledger DB [--trust ...]`."""

from __future__ import annotations

import argparse
from dataclasses import dataclass
from pathlib import Path

from clgate.errors import InputError


@dataclass(frozen=True)
class Config:
    ledger: str
    trust: Path | None = None
    users: Path | None = None
    policy: Path | None = None


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> None:  # type: ignore[override]
        raise InputError(f"dashboard arguments: {message}")


def parse_config(argv: list[str]) -> Config:
    parser = _Parser(prog="clgate dashboard", add_help=False)
    parser.add_argument("--ledger", required=True)
    for flag in ("--trust", "--users", "--policy"):
        parser.add_argument(flag, type=Path)
    args, _ = parser.parse_known_args(argv)
    return Config(args.ledger, args.trust, args.users, args.policy)
