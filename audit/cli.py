"""The `clgate` command: every subcommand, and the one place errors become exit codes."""

from __future__ import annotations

import sys

import typer

import clgate
from clgate.artifacts.cli import manifest, models_app
from clgate.audit import gate_cli
from clgate.audit.demo import demo
from clgate.audit.erasure_cli import erase_app
from clgate.audit.regression_cli import history
from clgate.audit.reports_cli import dashboard, report
from clgate.audit.schedule_cli import audit_app
from clgate.errors import ClgateError
from clgate.evals.cli import eval_app
from clgate.ledger.cli import keys_app, ledger_app
from clgate.probes.cli import diff_app
from clgate.probes.poison.cli import scan_app
from clgate.probes.privacy.cli import privacy
from clgate.redact import mask_secrets

app = typer.Typer(
    name="clgate",
    help="Gate and audit trail for continually learning LLMs.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)


@app.command()
def version() -> None:
    """Print the clgate version."""
    typer.echo(clgate.__version__)


app.command("manifest")(manifest)
app.command("demo")(demo)
app.command("report")(report)
app.command("dashboard")(dashboard)
app.command("propose")(gate_cli.propose_command)
for _name in ("gate", "approve", "reject", "promote", "rollback", "status"):
    app.command(_name)(getattr(gate_cli, _name))
app.add_typer(gate_cli.policy_app, name="policy")
app.add_typer(models_app, name="models")
app.add_typer(audit_app, name="audit")
app.add_typer(erase_app, name="erase")
app.add_typer(ledger_app, name="ledger")
app.add_typer(keys_app, name="keys")
app.add_typer(diff_app, name="diff")
scan_app.command("privacy")(privacy)
app.add_typer(scan_app, name="scan")
eval_app.command("history")(history)
app.add_typer(eval_app, name="eval")


def _quiet_libraries() -> None:
    import warnings

    import transformers

    transformers.utils.logging.set_verbosity_error()
    transformers.utils.logging.disable_progress_bar()
    # peft's get_peft_model calls a transformers method deprecated in 5.x; nothing in clgate can change that
    warnings.filterwarnings(
        "ignore",
        message=r"`is_gradient_checkpointing` is deprecated",
        category=FutureWarning,
        module="transformers",
    )


def main(argv: list[str] | None = None) -> int:
    """Run the CLI; a ClgateError is one line on stderr and its exit code, never a traceback."""
    args = list(sys.argv[1:] if argv is None else argv)
    debug = "--debug" in args
    args = [a for a in args if a != "--debug"]
    _quiet_libraries()
    try:
        code = app(args=args, prog_name="clgate", standalone_mode=False)
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
        message = mask_secrets(f"{type(exc).__name__}: {exc}", *args)
        typer.echo(f"error: {message} (rerun with --debug for a traceback)", err=True)
        code = 2
    code = code if isinstance(code, int) else 0
    if argv is None:
        sys.exit(code)
    return code
