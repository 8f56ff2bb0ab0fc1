"""`clgate erase request`, `done` and `withdraw`: a data subject's data out of a deployment, with proof."""

from __future__ import annotations

from pathlib import Path

import typer

from clgate.artifacts import gguf_architecture, resolve_model_dir
from clgate.audit.erasure import Matcher, Requested, finish_erasure, open_request, request_erasure
from clgate.audit.gate import GateRequest, GateRun, check_policy, gate_seal, propose, run_gate
from clgate.audit.gate_cli import (
    DeploymentOpt,
    LedgerOpt,
    TrustOpt,
    open_journal,
    print_result,
    progress,
)
from clgate.audit.journal import Journal, signing_key
from clgate.audit.policy import load_policy
from clgate.audit.result import GateResult
from clgate.errors import InputError
from clgate.ledger import ErasureWithdrawn
from clgate.typer_app import typer_app

erase_app = typer_app(
    help="Erase a data subject's data from a deployment's memory and weights, provably.", no_args_is_help=True
)
SubjectOpt = typer.Option(None, "--subject", help="the subject's identifier (user id, e-mail address, …)")
PatternOpt = typer.Option(None, "--pattern", help="a regular expression marking the subject's data instead")
MemoryOpt = typer.Option(None, "--memory", help="the deployed store, if not where its proposal recorded it")
EraserKeyOpt = typer.Option(
    ..., "--key", help="an auditor's or approver's key, which signs the erasure entries"
)


@erase_app.command("request")
def request(
    deployment: str = DeploymentOpt,
    subject: str = SubjectOpt,
    pattern: str = PatternOpt,
    memory: Path = MemoryOpt,
    out: Path = typer.Option(
        ..., "--out", help="where to write the memory store without the subject's entries"
    ),
    ledger: str = LedgerOpt,
    key: Path = EraserKeyOpt,
    trust: Path = TrustOpt,
    proposer_key: Path = typer.Option(
        None, help="pipeline key: propose the new store as a memory update now"
    ),
    gate_key: Path = typer.Option(None, help="gate key: and audit it now (with --proposer-key)"),
    policy: Path = typer.Option(None, help="the policy the gate judges the new store by (default policy)"),
    parent: Path = typer.Option(
        None, help="the deployment's base model, if not where its proposal recorded it"
    ),
    report: Path = typer.Option(Path("clgate-erasure"), help="the gate's report folder"),
) -> None:
    """Find the subject's data in the deployed memory and in the training data of every update the deployment
    promoted; write the memory store without it; record `erasure.requested` (the identifier only as a salted
    digest). With --proposer-key and --gate-key the new store is gated as a memory update in the same run
    (exit code: the gate's). Updates trained on the data are never deployed again."""
    matcher = Matcher.of(subject, pattern)
    if (proposer_key is None) != (gate_key is None):
        raise InputError("gating the new store needs both --proposer-key and --gate-key")
    with open_journal(ledger, key, trust) as journal:
        policy_loaded = load_policy(policy) if gate_key else None
        if policy_loaded is not None:
            check_policy(policy_loaded, journal, [deployment])  # before anything is written
        # the base the new store is gated on, checked before anything is written
        base = _base_to_gate_on(journal, deployment, parent) if gate_key else None
        requested = request_erasure(journal, deployment, matcher, out, memory)
        _print_request(requested)
        if requested.store is None or base is None or gate_key is None or policy_loaded is None:
            return
        result = _gate_store(journal, requested, base, proposer_key, gate_key, policy_loaded, report)
    print_result(result, "text")
    typer.echo(
        f"next: promote update {result.update_id}, then `clgate erase done {requested.request.request_id}`"
    )
    raise typer.Exit(result.verdict.decision.exit_code)


def _print_request(requested: Requested) -> None:
    r = requested.request
    typer.echo(
        f"erasure request {r.request_id} recorded at entry {requested.index} (deployment {r.deployment})"
    )
    if requested.memory is None:
        typer.echo("memory: none deployed")
    else:
        typer.echo(
            f"memory {r.memory_update}: {len(r.memory_entries)} of {len(requested.memory.entries)} entries carry it"
            + (
                f" ({', '.join(r.memory_entries[:10])}); the store without them: {requested.store}"
                if r.memory_entries
                else ""
            )
        )
    for t in r.trained_on:
        where = (
            f"records {', '.join(map(str, t.records[:10]))}"
            if t.records
            else "its data is no longer as proposed"
        )
        typer.echo(
            f"update {t.update_id} was trained on it ({where}): it is never deployed again; train anew without it"
        )
    if not r.memory_entries and not r.trained_on:
        typer.echo(f"nothing carries it: record it done with `clgate erase done {r.request_id}`")


def _base_to_gate_on(journal: Journal, deployment: str, parent: Path | None) -> Path:
    """The base model the new store is gated on, checked to be a readable model before the request is
    recorded: a bad --parent must not leave a request recorded and its store ungated."""
    base = journal.state().deployed_update("base", deployment)
    if base is None and parent is None:
        raise InputError(f"deployment {deployment!r} has no base model deployed; give --parent")
    path = parent or Path(base.proposal.artifacts["candidate"].uri)  # type: ignore[union-attr]
    if path.suffix == ".gguf" and path.is_file():
        gguf_architecture(path)  # read, not dequantised: the gate does that, once
    else:
        resolve_model_dir(path)  # reads every safetensors header against its file's size; hashes nothing
    return path


def _gate_store(
    journal: Journal,
    requested: Requested,
    base: Path,
    proposer_key: Path,
    gate_key: Path,
    policy,  # type: ignore[no-untyped-def]
    report: Path,
) -> GateResult:
    """The new store as a memory update of the deployment, proposed and audited as any other."""
    deployment = requested.request.deployment
    assert requested.memory is not None and requested.store is not None
    gate_request = GateRequest(
        parent=base,
        # a diff from the promoted store, not from a live one given with --memory: what the deployment wrote
        # since its promotion is gated with the erasure, and the ledger promotes only diffs of the deployed store
        memory_old=Path(requested.memory.update.proposal.artifacts["memory_new"].uri),
        memory_new=requested.store,
        deployment=deployment,
        pipeline={"erasure": requested.request.request_id},
    )
    run = GateRun(out_dir=report)
    gate = journal.as_signer(signing_key(gate_key))
    proposed = propose(
        gate_request, journal.as_signer(signing_key(proposer_key)), run, progress, gate_seal(gate)
    )
    return run_gate(
        proposed.proposal.update_id,
        policy,
        gate,
        run,
        gate_request,
        proposed.manifests,
        progress,
    )


@erase_app.command("done")
def done(
    request_id: str = typer.Argument(..., help="the erasure request's id"),
    subject: str = SubjectOpt,
    pattern: str = PatternOpt,
    memory: Path = MemoryOpt,
    ledger: str = LedgerOpt,
    key: Path = EraserKeyOpt,
    trust: Path = TrustOpt,
) -> None:
    """Scan the deployed memory afresh for the same --subject or --pattern and record `erasure.done`; exit 1,
    recording nothing, while the deployed memory or an update trained on the data still carries it."""
    with open_journal(ledger, key, trust) as journal:
        finished = finish_erasure(journal, request_id, Matcher.of(subject, pattern), memory)
    r = finished.record
    memory_note = (
        f"memory {r.memory_update} ({r.memory_digest}), {r.entries_scanned} entries scanned, none carry it"
    )
    typer.echo(
        f"erasure {request_id} done at entry {finished.index}: "
        + (memory_note if r.memory_update else "no memory deployed")
        + f"; {len(r.evidence_removed)} measurement(s) quoting it removed"
    )
    for digest in finished.others:
        typer.echo(
            f"kept measurement {digest}: it quotes it but another deployment recorded it first; erase it there"
        )


@erase_app.command("withdraw")
def withdraw(
    request_id: str = typer.Argument(..., help="the open erasure request's id"),
    reason: str = typer.Option(..., "--reason", help="why it is withdrawn (recorded)"),
    ledger: str = LedgerOpt,
    key: Path = typer.Option(..., "--key", help="an admin key; the ledger's key quorum of admins must sign"),
    trust: Path = TrustOpt,
) -> None:
    """Withdraw an open erasure request made too broad or in error: once the key quorum of admins has signed,
    the updates it listed may be rolled back to and signed again (`erasure.withdrawn`)."""
    with open_journal(ledger, key, trust) as journal:
        open_request(journal.state(), request_id)  # its one-line reason, before anything is signed
        index = journal.append(ErasureWithdrawn(request_id=request_id, reason=reason), request_id)
        erasure = journal.state().governance.erasures[request_id]
    if erasure.withdrawn_index is not None:
        typer.echo(f"erasure {request_id} withdrawn at entry {index}")
    else:
        typer.echo(f"withdrawal of erasure {request_id} signed at entry {index}; more admins must sign it")
