"""`clgate propose`, `gate`, `approve`, `block`, `promote`, `rollback`, `status`, `policy adopt`.

Each step is signed by the key whose role it is: the training job proposes (pipeline key), the gate
service audits (gate key), people approve and promote (approver keys), admins adopt policies.
"""

from __future__ import annotations

import os
import re
from dataclasses import replace
from pathlib import Path

import typer
from rich.console import Console
from rich.markup import escape
from rich.table import Table
from rich.tree import Tree

from clgate.atomic import writable_file
from clgate.audit import actions
from clgate.audit.ci_formats import RENDERERS, OutputFormat, append_step_summary, write_junit
from clgate.audit.gate import (
    GateRequest,
    GateRun,
    check_deployment_name,
    check_policy,
    check_policy_sound,
    gate_seal,
    propose,
    run_gate,
)
from clgate.audit.journal import Journal, signing_key
from clgate.audit.lineage import Lineage, build_lineage
from clgate.audit.policy import load_policy
from clgate.audit.result import GateResult
from clgate.audit.signing import UpstreamSignature
from clgate.errors import InputError
from clgate.ledger import PASSPHRASE_ENV, PolicyAdopted, PolicyRetired, policy_lines, release_lines
from clgate.ledger.entries import DIGEST
from clgate.runtime import ServedPair
from clgate.runtime.cli import (
    DEVICE,
    DTYPE,
    SERVED_CANDIDATE,
    SERVED_CONCURRENCY,
    SERVED_PARENT,
    SERVED_TIMEOUT,
)
from clgate.typer_app import typer_app

err = Console(stderr=True)
STEP_SUMMARY_ENV = "GITHUB_STEP_SUMMARY"

LedgerOpt = typer.Option(
    ..., "--ledger", envvar="CLGATE_LEDGER", help="ledger: SQLite path or postgresql+psycopg:// URL"
)
KeyOpt = typer.Option(..., "--key", help=f"private key (PEM); passphrase from ${PASSPHRASE_ENV}")
TrustOpt = typer.Option(
    ...,
    "--trust",
    envvar="CLGATE_TRUST",
    help="signed trust file pinning the keys the ledger may be signed with",
)
policy_app = typer_app(help="Policies a gate may judge by (adopted by an admin).", no_args_is_help=True)


def open_journal(ledger: str, key: Path | None, trust: Path) -> Journal:
    """The ledger, signing with `key` (None: read only); use it in a `with` block so it is closed."""
    return Journal.open(ledger, signing_key(key), trust)


def print_result(result: GateResult, fmt: OutputFormat) -> None:
    if fmt in RENDERERS:
        typer.echo(RENDERERS[fmt](result))
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


def ci_outputs(junit: Path | None) -> Path | None:
    """Where the CI reports go, checked before anything is recorded: the JUnit file's folder (made),
    and the job summary GitHub names in $GITHUB_STEP_SUMMARY (appended to after the run)."""
    if junit is not None:
        writable_file(junit, "--junit")
    summary = os.environ.get(STEP_SUMMARY_ENV)
    if not summary:
        return None
    path = Path(summary)
    if path.is_dir() or not path.parent.is_dir():
        raise InputError(f"${STEP_SUMMARY_ENV}={summary}: not a file in an existing folder")
    return path


def progress(name: str, what: str) -> None:
    err.print(f"  {name}: {what}", markup=False, emoji=False)  # "manifest:anchor:" is no emoji code


ParentOpt = typer.Option(None, help="the promoted model the update applies to (HF dir or .gguf)")
CandidateOpt = typer.Option(None, help="a new full model (fine-tune or new base)")
AdapterOpt = typer.Option(None, help="a PEFT LoRA adapter for the parent")
DataOpt = typer.Option(None, help="the update's training data (JSONL)")
MemoryOldOpt = typer.Option(None, help="the deployed memory store")
MemoryNewOpt = typer.Option(None, help="the memory store after the update")
TargetOpt = typer.Option(None, help="held-out data of the update's own task (plasticity)")
DeploymentOpt = typer.Option("default", help="the named deployment the update is for")
AnchorOpt = typer.Option(
    None,
    help="the deployment's anchor model (its first promoted base), if not where its proposal recorded it",
)
DeployedAdapterOpt = typer.Option(
    None,
    help="the adapter the deployment runs (a memory update is asked through it), if not where its proposal "
    "recorded it",
)
PolicyOpt = typer.Option(None, help="policy TOML (default: the documented default policy)")
GateKeyOpt = typer.Option(..., "--key", help="the gate's key (gate role) that signs the audit")
OutOpt = typer.Option(Path("clgate-report"), help="report folder")
CacheOpt = typer.Option(None, help="cache folder for check results (default: OUT/.cache)")
SeedOpt = typer.Option(0, help="seed for sampling and bootstrap")
FormatOpt = typer.Option(
    OutputFormat.text,
    "--format",
    help="stdout: a text table, the result as JSON, GitHub annotations, or SARIF 2.1.0 (code scanning)",
)
JunitOpt = typer.Option(
    None, help="also write a JUnit XML report here: a testcase per check (GitLab, Jenkins, Azure)"
)


def propose_command(
    parent: Path = ParentOpt,
    candidate: Path = CandidateOpt,
    adapter: Path = AdapterOpt,
    data: Path = DataOpt,
    memory_old: Path = MemoryOldOpt,
    memory_new: Path = MemoryNewOpt,
    target: Path = TargetOpt,
    deployment: str = DeploymentOpt,
    supersedes: str = typer.Option(None, help="update id of an earlier proposal this one re-audits"),
    served_parent: str = SERVED_PARENT,
    served_candidate: str = SERVED_CANDIDATE,
    oms_signature: Path = typer.Option(
        None, help="an OpenSSF model signature of the candidate (model_signing's bundle) to verify and record"
    ),
    oms_public_key: Path = typer.Option(None, help="the EC public key (PEM) that made --oms-signature"),
    ledger: str = LedgerOpt,
    key: Path = KeyOpt,
    trust: Path = TrustOpt,
) -> None:
    """Propose an update (pipeline key): hash its artifacts and record `update.proposed`; prints its id.

    With `--served-*`, the servers' model ids and revisions are recorded: the gate runs the checks
    that need only outputs there, and blocks if a server serves another revision by then. With
    `--oms-signature`, the candidate's signature must verify and cover every file clgate digests;
    the proposal records its digest and its key's fingerprint.
    """
    if (oms_signature is None) != (oms_public_key is None):
        raise InputError("--oms-signature and --oms-public-key go together")
    pair = ServedPair.of(served_parent, served_candidate)
    request = GateRequest(
        parent, candidate, adapter, data, memory_old, memory_new, target, deployment, supersedes, served=pair
    )
    if oms_signature is not None and oms_public_key is not None:
        request = replace(request, upstream=UpstreamSignature(oms_signature, oms_public_key))
    request.update_kind()
    with open_journal(ledger, key, trust) as journal:
        proposed = propose(request, journal, progress=progress)
    typer.echo(proposed.proposal.update_id)


def gate(
    update: str = typer.Argument(None, help="a proposed update's id (omit to propose with --proposer-key)"),
    parent: Path = ParentOpt,
    candidate: Path = CandidateOpt,
    adapter: Path = AdapterOpt,
    data: Path = DataOpt,
    memory_old: Path = MemoryOldOpt,
    memory_new: Path = MemoryNewOpt,
    target: Path = TargetOpt,
    deployment: str = DeploymentOpt,
    proposer_key: Path = typer.Option(
        None, help="pipeline key: propose the update given by the paths first, in this same run"
    ),
    anchor: Path = AnchorOpt,
    deployed_adapter: Path = DeployedAdapterOpt,
    policy: Path = PolicyOpt,
    ledger: str = LedgerOpt,
    key: Path = GateKeyOpt,
    trust: Path = TrustOpt,
    out: Path = OutOpt,
    cache: Path = CacheOpt,
    seed: int = SeedOpt,
    fmt: OutputFormat = FormatOpt,
    junit: Path = JunitOpt,
    device: str = DEVICE,
    dtype: str = DTYPE,
    served_parent: str = SERVED_PARENT,
    served_candidate: str = SERVED_CANDIDATE,
    served_concurrency: int = SERVED_CONCURRENCY,
    served_timeout: float = SERVED_TIMEOUT,
    served_allow: list[str] = typer.Option(
        [],
        "--served-allow",
        envvar="CLGATE_SERVED_ALLOW",
        help="a server (base URL) this gate may ask for a served update; repeat, or space-separated in the env",
    ),
) -> None:
    """Audit one proposed update against an adopted policy and record the verdict.

    A proposal with served models is gated through the servers it names (`--served-*` here only
    when proposing in this run). Exit 0 promote, 10 review, 20 block, 2 bad input (nothing recorded).
    With $GITHUB_STEP_SUMMARY set (GitHub Actions), a Markdown summary is appended to that file.
    """
    if (update is None) == (proposer_key is None):
        raise typer.BadParameter("give a proposed UPDATE id, or the update's paths with --proposer-key")
    pair = ServedPair.of(served_parent, served_candidate, served_concurrency, served_timeout)
    if update is not None and pair is not None:
        raise typer.BadParameter(
            "a proposed update is gated where its proposal says it is served: drop --served-*"
        )
    request = GateRequest(
        parent,
        candidate,
        adapter,
        data,
        memory_old,
        memory_new,
        target,
        deployment,
        served=pair,
        anchor=anchor,
        deployed_adapter=deployed_adapter,
    )
    if update is None:
        request.update_kind()
    loaded_policy = load_policy(policy)
    run = GateRun(
        out_dir=out,
        cache_dir=cache,
        seed=seed,
        device=device,
        dtype=dtype,
        served_concurrency=served_concurrency,
        served_timeout_s=served_timeout,
        # proposed here, the servers on this command line are the operator's own
        served_allow=(*served_allow, *((pair.parent.url, pair.candidate.url) if pair else ())),
    )
    run.placement()  # an unknown device or dtype, or CUDA asked for and absent: exit 2 before any write
    summary = ci_outputs(junit)
    with open_journal(ledger, key, trust) as journal:  # the ledger is verified once, here
        # before anything is written; a proposed UPDATE's deployment is its proposal's (plan_gate checks it)
        check_policy(loaded_policy, journal, [deployment] if update is None else [])
        manifests = None
        if proposer_key is not None:
            proposed = propose(
                request, journal.as_signer(signing_key(proposer_key)), run, progress, gate_seal(journal)
            )
            update, manifests = proposed.proposal.update_id, proposed.manifests
        result = run_gate(update, loaded_policy, journal, run, request, manifests, progress)
    finish_gate(result, fmt, junit, summary, out)


def finish_gate(
    result: GateResult, fmt: OutputFormat, junit: Path | None, summary: Path | None, out: Path
) -> None:
    """What every gate command does with its result: stdout in `fmt`, the CI reports, the report's
    path, and the decision's exit code (0 promote, 10 review, 20 block)."""
    print_result(result, fmt)
    if junit is not None:
        write_junit(result, junit)
    if summary is not None:
        append_step_summary(result, summary)
    err.print(f"report: {out / 'report.html'}")
    raise typer.Exit(result.verdict.decision.exit_code)


def approve(
    update: str = typer.Argument(..., help="update id, candidate digest or entry index"),
    ledger: str = LedgerOpt,
    key: Path = KeyOpt,
    trust: Path = TrustOpt,
    note: str = typer.Option("", help="why you approve"),
) -> None:
    """Sign an approval of an audited update (approver or auditor role; not the proposer's or gate's key)."""
    with open_journal(ledger, key, trust) as journal:
        typer.echo(f"approved at entry {actions.approve(journal, update, note)}")


def block(
    update: str = typer.Argument(...),
    reason: str = typer.Option(..., help="why the update must not be promoted"),
    ledger: str = LedgerOpt,
    key: Path = KeyOpt,
    trust: Path = TrustOpt,
) -> None:
    """Record that an update must not be promoted (final for this proposal)."""
    with open_journal(ledger, key, trust) as journal:
        typer.echo(f"blocked at entry {actions.block(journal, update, reason)}")


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
    """Restore a previously promoted update; the replaced one needs a new proposal before it returns."""
    with open_journal(ledger, key, trust) as journal:
        index = actions.rollback(journal, to, reason)
        state = journal.state()
    typer.echo(f"rolled back at entry {index}")
    event = next(e for e in state.history if e.index == index)
    uri = state.updates[event.update_id].proposal.pipeline.get("mlflow.uri")
    if uri:  # the registry's alias is not the ledger's: it still points at the version rolled back
        typer.echo(
            f"{uri} came from MLflow: move its alias with `clgate mlflow promote --model-uri {uri} --alias "
            "ALIAS` (or roll back with `clgate mlflow rollback`, which does both)"
        )


def status(ledger: str = LedgerOpt, trust: Path = TrustOpt) -> None:
    """What each deployment runs, what awaits approval or re-audit, which policies apply, which erasures are open."""
    with open_journal(ledger, None, trust) as journal:
        state = journal.state()
    Console().print(lineage_tree(build_lineage(state)))
    for title, rows in (
        ("awaiting approval", state.pending_approval()),
        ("needs re-audit", state.pending_reaudit()),
    ):
        typer.echo(f"{title}: " + (", ".join(f"{u.update_id} ({u.kind})" for u in rows) or "none"))
    typer.echo("policies: " + ("; ".join(policy_lines(state.governance)) or "none"))
    typer.echo("signed releases: " + ("; ".join(release_lines(state.governance)) or "none"))
    open_erasures = [e for e in state.governance.erasures.values() if e.open]
    typer.echo(
        "erasures open: "
        + (
            "; ".join(
                f"{e.request.request_id} ({e.request.deployment}: {len(e.request.memory_entries)} memory entries"
                + (f", never deploy again {', '.join(sorted(e.retrain))}" if e.retrain else "")
                + ")"
                for e in open_erasures
            )
            or "none"
        )
    )


def lineage_tree(lineage: Lineage) -> Tree:
    """Bases, the deployments that run each, and what each runs on it: stale updates (built on another
    base) marked with how far their re-audit got."""
    tree = Tree("lineage (deployed)")
    for base in lineage.bases:
        node = tree.add(f"base {base.digest[:19]}…" if base.digest else "no base deployed")
        for deployment in base.deployments:
            since = ""
            if deployment.base_update:
                since = f" (base update {deployment.base_update}, entry {deployment.base_entry})"
            branch = node.add(f"deployment {escape(deployment.name)}{since}")
            for slot in deployment.slots:
                note = ""
                if slot.stale:
                    note = f"  [yellow]stale: built on {slot.built_on[:19]}…; re-audit {slot.reaudit}"
                    note += f" ({slot.reaudit_update})[/]" if slot.reaudit_update else "[/]"
                branch.add(f"{slot.slot} {slot.update_id} (entry {slot.entry}){note}")
    return tree


@policy_app.command("adopt")
def adopt(
    policy: Path = typer.Argument(..., help="policy TOML to adopt"),
    ledger: str = LedgerOpt,
    key: Path = typer.Option(..., "--key", help="an admin key"),
    trust: Path = TrustOpt,
    deployments: list[str] = typer.Option(
        [], "--deployment", help="only for this deployment (repeat for more; none: every deployment)"
    ),
) -> None:
    """Pin a policy (validated, by the digest of its canonical JSON) that gates may judge by: gates and
    scheduled audits of the deployments named, or of every deployment."""
    loaded = load_policy(policy)
    check_policy_sound(loaded)  # a policy no gate could judge by is refused once, not at every gate
    for name in deployments:
        check_deployment_name(name)
    scope = sorted(set(deployments)) or None
    body = PolicyAdopted(
        name=loaded.name, digest=loaded.digest, text=loaded.canonical_text, deployments=scope
    )
    with open_journal(ledger, key, trust) as journal:
        adopted = journal.ledger.governance().policies.get(loaded.digest)
        if adopted is not None and adopted.retired_index is None:  # a co-signature would change nothing
            raise InputError(
                f"policy {loaded.name} {loaded.digest} was already adopted at entry {adopted.adopted_index}"
            )
        index = journal.append(body, loaded.digest)
        governance = journal.ledger.governance()
        pending = governance.adoptions.get(loaded.digest)
        progress = pending.progress(governance.ring, governance.size) if pending is not None else None
    where = f" for deployment(s) {', '.join(scope)}" if scope else ""
    if progress is not None:  # the log asks the key quorum of admins to adopt a policy
        typer.echo(
            f"signed the adoption of policy {loaded.name} {loaded.digest}{where} at entry {index}: {progress}; "
            "another admin runs the same `clgate policy adopt`"
        )
        return
    typer.echo(f"adopted policy {loaded.name} {loaded.digest}{where} at entry {index}")


@policy_app.command("retire")
def retire(
    policy: str = typer.Argument(..., help="the adopted policy's TOML, or its digest (sha256:…)"),
    reason: str = typer.Option(..., "--reason", help="why no gate may judge by it any more"),
    ledger: str = LedgerOpt,
    key: Path = typer.Option(..., "--key", help="an admin key"),
    trust: Path = TrustOpt,
) -> None:
    """Stop gates and scheduled audits judging by an adopted policy (to adopt it again for other
    deployments, or for none), or call off an adoption still awaiting admins; what it judged stays recorded."""
    if not reason.strip():
        raise InputError("--reason is empty: say why no gate may judge by it any more")
    named = re.fullmatch(DIGEST, policy)
    if policy.startswith("sha256:") and not named:
        raise InputError(f"{policy[:80]}: not a policy digest (sha256: and 64 lowercase hex digits)")
    digest = policy if named else load_policy(Path(policy)).digest
    with open_journal(ledger, key, trust) as journal:
        pending = journal.ledger.governance().adoptions.get(digest)  # the ledger says if it is not adopted
        index = journal.append(PolicyRetired(digest=digest, reason=reason), digest)
    what = "called off the adoption of" if pending is not None else "retired"
    typer.echo(f"{what} policy {digest} at entry {index}")
