"""`clgate gate`, `approve`, `reject`, `promote`, `rollback`, `status`: the gate and its decisions."""

from __future__ import annotations

import os
from pathlib import Path

import typer
from rich.console import Console
from rich.table import Table

from clgate.audit import actions
from clgate.audit.gate import GateRequest, run_gate
from clgate.audit.journal import Journal
from clgate.audit.policy import load_policy
from clgate.audit.result import GateResult
from clgate.audit.verdict import Status
from clgate.ledger import load_private_key

PASSPHRASE_ENV = "CLGATE_KEY_PASSPHRASE"
err = Console(stderr=True)

LedgerOpt = typer.Option(..., "--ledger", help="ledger: SQLite path or postgresql+psycopg:// URL")
KeyOpt = typer.Option(..., "--key", help=f"private key (PEM); passphrase from ${PASSPHRASE_ENV}")
TrustOpt = typer.Option(None, "--trust", help="trust file pinning the keys a ledger may be signed with")


def open_journal(ledger: str, key: Path | None, trust: Path | None) -> Journal:
    """The ledger, signing with `key` (None: read only); use it in a `with` block so it is closed."""
    signer = load_private_key(key, os.environ.get(PASSPHRASE_ENV)) if key else None
    return Journal.open(ledger, signer, trust)


def _print_result(result: GateResult, fmt: str) -> None:
    if fmt == "json":
        typer.echo(result.model_dump_json(indent=2))
        return
    if fmt == "github":
        for f in result.verdict.findings:
            if f.status is not Status.PASS:
                level = "error" if f.status is Status.FAIL else "warning"
                typer.echo(f"::{level} title=clgate {f.rule}::{f.reason}")
        typer.echo(
            f"::notice title=clgate verdict::{result.verdict.decision.value} (update {result.update_id})"
        )
        return
    console = Console()
    table = Table(title=f"update {result.update_id}: {result.verdict.decision.value.upper()}")
    for col in ("status", "rule", "check", "reason"):
        table.add_column(col)
    colour = {"pass": "green", "warn": "yellow", "fail": "red"}
    for f in sorted(result.verdict.findings, key=lambda f: ["fail", "warn", "pass"].index(f.status.value)):
        table.add_row(f"[{colour[f.status.value]}]{f.status.value}[/]", f.rule, f.check, f.reason)
    console.print(table)
    timings = ", ".join(f"{c.name} {c.seconds:.1f}s{' (cached)' if c.cached else ''}" for c in result.checks)
    console.print(f"checks: {timings}; total {result.seconds:.1f}s")


def gate(
    parent: Path = typer.Option(..., help="the promoted model the update applies to (HF dir or .gguf)"),
    candidate: Path = typer.Option(None, help="a new full model (fine-tune or new base)"),
    adapter: Path = typer.Option(None, help="a PEFT LoRA adapter for the parent"),
    data: Path = typer.Option(None, help="the update's training data (JSONL)"),
    memory_old: Path = typer.Option(None, help="the deployed memory store"),
    memory_new: Path = typer.Option(None, help="the memory store after the update"),
    target: Path = typer.Option(None, help="held-out data of the update's own task (plasticity)"),
    policy: Path = typer.Option(None, help="policy TOML (default: the documented default policy)"),
    ledger: str = LedgerOpt,
    key: Path = KeyOpt,
    trust: Path = TrustOpt,
    out: Path = typer.Option(Path("clgate-report"), help="report folder"),
    cache: Path = typer.Option(None, help="cache folder for check results (default: OUT/.cache)"),
    seed: int = typer.Option(0, help="seed for sampling and bootstrap"),
    fmt: str = typer.Option("text", "--format", help="text, json or github (CI annotations)"),
) -> None:
    """Audit one update against the policy and record the verdict. Exit 0 promote, 10 review, 20 block."""
    if fmt not in ("text", "json", "github"):
        raise typer.BadParameter("--format must be text, json or github")
    request = GateRequest(
        parent=parent,
        candidate=candidate,
        adapter=adapter,
        data=data,
        memory_old=memory_old,
        memory_new=memory_new,
        target=target,
        out_dir=out,
        cache_dir=cache,
        seed=seed,
    )
    request.kind  # noqa: B018 - validate the shape of the update before touching the ledger
    loaded_policy = load_policy(policy)
    with open_journal(ledger, key, trust) as journal:
        result = run_gate(
            request, loaded_policy, journal, progress=lambda name, what: err.print(f"  {name}: {what}")
        )
    _print_result(result, fmt)
    err.print(f"report: {out / 'report.html'}")
    raise typer.Exit(result.verdict.decision.exit_code)


def approve(
    update: str = typer.Argument(..., help="update id, candidate digest or entry index"),
    ledger: str = LedgerOpt,
    key: Path = KeyOpt,
    trust: Path = TrustOpt,
    note: str = typer.Option("", help="why you approve"),
) -> None:
    """Sign an approval of an audited update (auditor or approver role)."""
    with open_journal(ledger, key, trust) as journal:
        typer.echo(f"approved at entry {actions.approve(journal, update, note)}")


def reject(
    update: str = typer.Argument(...),
    reason: str = typer.Option(..., help="why the update must not be promoted"),
    ledger: str = LedgerOpt,
    key: Path = KeyOpt,
    trust: Path = TrustOpt,
) -> None:
    """Record that an update must not be promoted."""
    with open_journal(ledger, key, trust) as journal:
        typer.echo(f"rejected at entry {actions.reject(journal, update, reason)}")


def promote(
    update: str = typer.Argument(...), ledger: str = LedgerOpt, key: Path = KeyOpt, trust: Path = TrustOpt
) -> None:
    """Deploy an audited update: refused for a block, a review without approvals, or a stale base."""
    with open_journal(ledger, key, trust) as journal:
        typer.echo(f"promoted at entry {actions.promote(journal, update)}")


def rollback(
    to: str = typer.Option(..., "--to", help="update id, candidate digest or entry index to restore"),
    reason: str = typer.Option(..., help="why"),
    ledger: str = LedgerOpt,
    key: Path = KeyOpt,
    trust: Path = TrustOpt,
) -> None:
    """Restore a previously promoted update; the replaced one needs a new audit before it returns."""
    with open_journal(ledger, key, trust) as journal:
        typer.echo(f"rolled back at entry {actions.rollback(journal, to, reason)}")


def status(ledger: str = LedgerOpt, trust: Path = TrustOpt) -> None:
    """What is deployed, what awaits approval, what needs re-audit."""
    with open_journal(ledger, None, trust) as journal:
        state = journal.state()
    table = Table(title="deployed")
    for col in ("slot", "update", "candidate digest", "since entry"):
        table.add_column(col)
    for slot, update_id in state.deployed.items():
        u = state.updates[update_id]
        table.add_row(slot, update_id, u.candidate_digest[:23] + "…", str(u.promoted_index))
    Console().print(table)
    for title, rows in (
        ("awaiting approval", state.pending_approval()),
        ("needs re-audit", state.pending_reaudit()),
    ):
        typer.echo(f"{title}: " + (", ".join(f"{u.update_id} ({u.kind})" for u in rows) or "none"))
