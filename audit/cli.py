"""The `clgate` command: every subcommand, and the one place errors become exit codes.

Subcommands are imported only when they run: `clgate ledger verify` loads the ledger and nothing
else, so the core install (no torch, no inspect-ai) starts fast and a command whose extra is missing
says which extra to install instead of failing at start-up.
"""

from __future__ import annotations

import importlib
import os
import sys
import warnings
from dataclasses import dataclass

import typer
from typer.core import TyperCommand, TyperGroup

import clgate
from clgate.errors import ClgateError, InputError
from clgate.extras import MissingExtraError, missing_extra
from clgate.redact import mask_secrets
from clgate.typer_app import typer_app


def _import(target: str) -> object:
    module, attribute = target.split(":")
    return getattr(importlib.import_module(module), attribute)


def _command(name: str, obj: object) -> TyperCommand | TyperGroup:
    """A typer app as a click group, or a command function as a click command, named `name`."""
    if isinstance(obj, typer.Typer):
        group = typer.main.get_group(obj)
        group.name = name
        return group
    single = typer_app()
    single.command(name)(obj)
    return typer.main.get_command(single)


@dataclass(frozen=True)
class Subcommand:
    """Where a subcommand lives (`module:attribute`, a typer app or a command function) and its
    one-line help, listed by `clgate --help` without importing the module."""

    target: str
    summary: str
    # commands of another layer added to this group: (name, `module:attribute`)
    extra: tuple[str, str] | None = None

    def load(self, name: str) -> TyperCommand | TyperGroup:
        command = _command(name, _import(self.target))
        if self.extra is not None and isinstance(command, TyperGroup):
            extra_name, extra_target = self.extra
            command.add_command(_command(extra_name, _import(extra_target)), extra_name)
        return command


SUBCOMMANDS: dict[str, Subcommand] = {
    "manifest": Subcommand(
        "clgate.artifacts.cli:manifest",
        "Compute an artifact's content manifest (per-file and per-tensor SHA-256, root digest).",
    ),
    "demo": Subcommand(
        "clgate.demo.run:demo", "Run clgate's main job on the embedded SmolLM2-135M-Instruct, offline."
    ),
    "report": Subcommand(
        "clgate.audit.reports_cli:report",
        "Write a compliance report for a period: updates, evidence, scheduled audits, proofs, mapping.",
    ),
    "dashboard": Subcommand(
        "clgate.dashboard.cli:dashboard",
        "Open the auditor dashboard on http://ADDRESS:PORT (this machine only unless --address says otherwise).",
    ),
    "propose": Subcommand(
        "clgate.audit.gate_cli:propose_command",
        "Propose an update (pipeline key): hash its artifacts and record `update.proposed`; prints its id.",
    ),
    "gate": Subcommand(
        "clgate.audit.gate_cli:gate",
        "Audit one proposed update against an adopted policy and record the verdict.",
    ),
    "approve": Subcommand(
        "clgate.audit.gate_cli:approve",
        "Sign an approval of an audited update (approver or auditor role; not the proposer's or gate's key).",
    ),
    "block": Subcommand(
        "clgate.audit.gate_cli:block",
        "Record that an update must not be promoted (final for this proposal).",
    ),
    "promote": Subcommand(
        "clgate.audit.gate_cli:promote",
        "Deploy an audited update: refused for a block, a review without approvals, or a stale base.",
    ),
    "rollback": Subcommand(
        "clgate.audit.gate_cli:rollback",
        "Restore a previously promoted update; the replaced one needs a new proposal before it returns.",
    ),
    "status": Subcommand(
        "clgate.audit.gate_cli:status",
        "What each deployment runs, what awaits approval or re-audit, which policies apply, which erasures are open.",
    ),
    "sign": Subcommand(
        "clgate.audit.signing_cli:sign",
        "Sign a promoted artifact with model_signing's format and record `artifact.signed` (approver key).",
    ),
    "policy": Subcommand(
        "clgate.audit.gate_cli:policy_app", "Policies a gate may judge by (adopted by an admin)."
    ),
    "models": Subcommand("clgate.artifacts.cli:models_app", "The models clgate ships with."),
    "audit": Subcommand(
        "clgate.audit.schedule_cli:audit_app", "Deployment-time audits of what is actually deployed."
    ),
    "erase": Subcommand(
        "clgate.audit.erasure_cli:erase_app",
        "Erase a data subject's data from a deployment's memory and weights, provably.",
    ),
    "ledger": Subcommand("clgate.ledger.cli:ledger_app", "The signed update ledger."),
    "mlflow": Subcommand(
        "clgate.audit.mlflow_cli:mlflow_app",
        "Gate MLflow registered model versions; their alias moves only through the ledger.",
    ),
    "keys": Subcommand("clgate.ledger.cli:keys_app", "Signing keys and their roles."),
    "diff": Subcommand(
        "clgate.probes.cli:diff_app",
        "What an update changed: weights, the files around them, activations, memory.",
    ),
    "scan": Subcommand(
        "clgate.probes.poison.cli:scan_app",
        "Poisoning detectors (update data, updated models, memory stores) and personal data.",
        ("privacy", "clgate.probes.privacy.cli:privacy"),
    ),
    "eval": Subcommand(
        "clgate.evals.cli:eval_app",
        "Behavioural eval suites: `clgate eval MODEL --suite a,b`, `clgate eval compare PARENT CANDIDATE`.",
        ("history", "clgate.audit.regression_cli:history"),
    ),
}


class LazyGroup(TyperGroup):
    """Lists subcommands from `SUBCOMMANDS` and imports one only when it is resolved to run."""

    def list_commands(self, ctx: typer.Context) -> list[str]:
        return [*super().list_commands(ctx), *SUBCOMMANDS]

    def get_command(self, ctx: typer.Context, cmd_name: str) -> TyperCommand | TyperGroup | None:
        if cmd_name in SUBCOMMANDS:  # for the listing: its name and summary, nothing imported
            summary = SUBCOMMANDS[cmd_name].summary
            return TyperCommand(cmd_name, help=summary, short_help=summary)
        return super().get_command(ctx, cmd_name)

    def resolve_command(
        self, ctx: typer.Context, args: list[str]
    ) -> tuple[str | None, TyperCommand | TyperGroup | None, list[str]]:
        name, command, rest = super().resolve_command(ctx, args)
        if name in SUBCOMMANDS:
            command = SUBCOMMANDS[name].load(name)
        return name, command, rest


app = typer_app(
    name="clgate",
    cls=LazyGroup,
    help="Gate and audit trail for continually learning LLMs.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=True,
)


@app.callback()
def root() -> None:
    """Gate and audit trail for continually learning LLMs."""


@app.command()
def version() -> None:
    """Print the clgate version."""
    typer.echo(clgate.__version__)


def _quiet_libraries() -> None:
    """Model libraries log and draw progress bars between clgate's own lines; set before they load."""
    os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")
    os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")
    os.environ.setdefault(
        "TQDM_DISABLE", "1"
    )  # transformers' GGUF and shard bars; clgate draws its own with rich
    loaded = sys.modules.get("transformers")
    if loaded is not None:  # imported before the CLI ran (an in-process caller): the variables came too late
        loaded.utils.logging.set_verbosity_error()
        loaded.utils.logging.disable_progress_bar()
    # peft's get_peft_model calls a transformers method deprecated in 5.x; nothing in clgate can change that
    warnings.filterwarnings(
        "ignore",
        message=r"`is_gradient_checkpointing` is deprecated",
        category=FutureWarning,
        module="transformers",
    )


def _check_text(args: list[str]) -> None:
    """Arguments that were not UTF-8 (Python keeps their bytes as lone surrogates) would fail wherever they
    are first encoded, as a record's field or a file's name: refused here, for every command at once."""
    for arg in args:
        try:
            arg.encode("utf-8")
        except UnicodeEncodeError:
            raise InputError(f"argument {ascii(arg)[:80]} is not valid UTF-8 text") from None


def _unexpected(exc: Exception) -> str:
    """One line for an error no clgate code turned into one: a path the system refuses (a name too long, a
    folder under a file) names the path; anything else its type, and how to see where it came from."""
    if isinstance(exc, OSError) and exc.strerror:
        return f"{exc.filename}: {exc.strerror}" if exc.filename else exc.strerror
    first = (str(exc).strip().splitlines() or [""])[0]  # a library's message can run to many lines
    return f"{type(exc).__name__}: {first} (rerun with --debug for a traceback)"


def main(argv: list[str] | None = None) -> int:
    """Run the CLI; a ClgateError is one line on stderr and its exit code, never a traceback."""
    args = list(sys.argv[1:] if argv is None else argv)
    debug = "--debug" in args
    args = [a for a in args if a != "--debug"]
    _quiet_libraries()
    try:
        _check_text(args)
        try:
            code = app(args=args, prog_name="clgate", standalone_mode=False)
        except ModuleNotFoundError as exc:
            extra = missing_extra(exc.name or "")
            if extra is None:
                raise
            raise MissingExtraError(exc.name or "", extra) from exc
    except ClgateError as exc:
        if debug:
            raise
        typer.echo(f"error: {mask_secrets(str(exc), *args)}", err=True)
        code = exc.exit_code
    except typer.Abort:
        typer.echo("aborted", err=True)
        code = 130
    except typer.TyperException as exc:  # usage errors: typer prints them as click would
        exc.show()
        code = exc.exit_code
    except Exception as exc:
        if debug:
            raise
        typer.echo(f"error: {mask_secrets(_unexpected(exc), *args)}", err=True)
        code = 2
    code = code if isinstance(code, int) else 0
    if argv is None:
        sys.exit(code)
    return code
