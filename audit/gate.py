"""The promotion gate, in two signed steps held by two different keys.

`propose` (the training pipeline's key): manifests of every artifact → a typed `Proposal` whose
update id is derived from its content → `update.proposed`.

`run_gate` (the gate service's key): the proposal from the ledger → a plan, cheapest first (lineage
and the servers it names, from the ledger alone, block before anything else runs) → the models
checked → the artifacts re-hashed and compared with what was proposed → probes and evals (cached by
input digest) → findings → verdict → `audit.completed` under an adopted policy, pinned by digest
(and `promotion.blocked` on a block).

Fail closed at every step: a check that raises, times out or does not run blocks the update; an
artifact that changed since it was proposed blocks it; and once the gate starts on a proposal its
audit is always recorded, even when the gate itself breaks.
"""

from __future__ import annotations

import re
import secrets
import time
from collections.abc import Callable, Iterable
from contextlib import ExitStack
from dataclasses import dataclass, field, replace
from pathlib import Path

from clgate.artifacts import (
    ArtifactKind,
    Manifest,
    check_adapter_fits,
    compute_manifest,
    load_dataset,
    load_memory_store,
    resolve_model_dir,
)
from clgate.audit.check_inputs import PROPOSED_ROLES, GateCheck, GateInputs
from clgate.audit.eval_logs import LOG_FOLDER, place_logs
from clgate.audit.gate_checks import GATE_CHECKS
from clgate.audit.gate_report import write_gate_report
from clgate.audit.journal import Journal
from clgate.audit.judge import CheckOutcome, judge
from clgate.audit.policy import Policy
from clgate.audit.regression import RegressionSet, audited_accuracy, keep_target, regression_set
from clgate.audit.result import CheckSummary, GateResult
from clgate.audit.runner import CheckCache, KeySeal, run_checks
from clgate.audit.signing import UpstreamSignature, keep_signature, producer_findings, verify_upstream
from clgate.audit.state import LedgerState
from clgate.audit.verdict import Decision, Finding, Status, Verdict
from clgate.errors import InputError, PolicyError
from clgate.ledger import (
    CANDIDATE_ROLE,
    ArtifactDigest,
    JudgedWith,
    OmsSignature,
    Proposal,
    ProposalContent,
    ServedRef,
    UpdateState,
)
from clgate.ledger.entries import NAME, UPDATE_ID
from clgate.runtime import (
    Endpoint,
    ModelPool,
    ModelSpec,
    Placement,
    ServedClient,
    ServedModel,
    ServedPair,
    resolve_placement,
)

Progress = Callable[[str, str], None]

_ROLES_KIND = {
    "parent": ArtifactKind.MODEL,
    "candidate": ArtifactKind.MODEL,
    "adapter": ArtifactKind.ADAPTER,
    "data": ArtifactKind.DATASET,
    "memory_old": ArtifactKind.MEMORY,
    "memory_new": ArtifactKind.MEMORY,
    "target": ArtifactKind.DATASET,
    "anchor": ArtifactKind.MODEL,
    "deployed_adapter": ArtifactKind.ADAPTER,
}


@dataclass(frozen=True)
class GateRequest:
    """The artifacts of one update, as the pipeline hands them over (or the gate finds them)."""

    parent: Path | None = None
    candidate: Path | None = None
    adapter: Path | None = None
    data: Path | None = None
    memory_old: Path | None = None
    memory_new: Path | None = None
    target: Path | None = None
    deployment: str = "default"
    supersedes: str | None = None
    pipeline: dict[str, str] = field(default_factory=dict)
    served: ServedPair | None = None
    """Parent and candidate served by an inference engine: output-only checks run there."""
    anchor: Path | None = None
    """Where the deployment's anchor model is, when not where its own proposal recorded it (never proposed)."""
    deployed_adapter: Path | None = None
    """Where the adapter the deployment runs is, when not where its proposal recorded it: a memory update
    is asked through it (never proposed)."""
    upstream: UpstreamSignature | None = None
    """An OpenSSF model signature of the candidate by its producer: verified, then recorded in the proposal."""

    def paths(self) -> dict[str, Path]:
        """The proposed artifacts' paths by role."""
        return {role: Path(p) for role in PROPOSED_ROLES if (p := getattr(self, role)) is not None}

    def update_kind(self) -> str:
        """model, adapter or memory; the shape of the request is checked before anything is written."""
        kinds = [k for k, role in (("model", "candidate"), ("adapter", "adapter"), ("memory", "memory_new"))
                 if getattr(self, role) is not None]  # fmt: skip
        if len(kinds) != 1:
            raise InputError(
                "an update is exactly one of --candidate, --adapter or --memory-new "
                f"(got {', '.join(kinds) or 'none'})"
            )
        if self.memory_new and not self.memory_old:
            raise InputError("--memory-new needs --memory-old (the store it changes)")
        if self.parent is None:
            raise InputError("--parent (the promoted model the update applies to) is required")
        if self.served is not None and kinds[0] == "memory":
            raise InputError("a memory update runs no model: --served-* options do not apply")
        check_deployment_name(self.deployment)
        if self.supersedes is not None and not re.fullmatch(UPDATE_ID, self.supersedes):
            raise InputError(f"--supersedes {self.supersedes!r}: not an update id (16 hex digits)")
        return kinds[0]


def check_deployment_name(name: str) -> None:
    """A deployment name the ledger records: bad input here, not a refused entry after the work."""
    if not re.fullmatch(NAME, name):
        raise InputError(f"--deployment {name!r}: a name of letters, digits, '.', '_' and '-' (at most 64)")


@dataclass(frozen=True)
class GateRun:
    """How the gate runs: where reports and caches go, the seed of its statistics, where models run."""

    out_dir: Path = Path("clgate-report")
    cache_dir: Path | None = None
    seed: int = 0
    device: str = "auto"
    dtype: str = "auto"
    served_concurrency: int = 8
    served_timeout_s: float = 120.0
    served_allow: tuple[str, ...] = ()
    """Servers the gate may ask (base URLs): a proposal naming another is blocked, never contacted."""

    @property
    def cache(self) -> Path:
        return self.cache_dir or Path(self.out_dir) / ".cache"

    @property
    def log_dir(self) -> Path:
        """The report's inspect-ai logs, absolute: measurements name them as evidence."""
        return (Path(self.out_dir) / LOG_FOLDER).resolve()

    def placement(self) -> Placement:
        """Where the models run; a device or dtype that cannot be had is an InputError here, before any write."""
        return resolve_placement(self.device, self.dtype)

    def check_folders(self) -> None:
        """The report and cache folders can be made (nothing is made yet): a file in their place is bad input
        before any write, not a check that fails after the proposal was recorded."""
        for option, folder in (("--out", Path(self.out_dir)), ("--cache", self.cache)):
            if folder.exists() and not folder.is_dir():
                raise InputError(f"{option} {folder}: is a file; give a folder")
            above = next(p for p in folder.absolute().parents if p.exists())
            if not above.is_dir():
                raise InputError(f"{option} {folder}: cannot be made under the file {above}")


@dataclass(frozen=True)
class Proposed:
    proposal: Proposal
    index: int
    manifests: dict[str, Manifest]


def _manifests(paths: dict[str, Path], progress: Progress | None) -> dict[str, Manifest]:
    out = {}
    for role, path in paths.items():
        if progress:
            progress(f"manifest:{role}", "hashing")
        out[role] = compute_manifest(path, _ROLES_KIND[role])
    return out


def gate_seal(journal: Journal) -> KeySeal | None:
    """What vouches for the model folders this gate builds in its cache: its own key, when it holds one."""
    return KeySeal(journal.signer) if journal.signer is not None else None


def _check_inputs(request: GateRequest, cache: Path | None, dtype: str, seal: KeySeal | None) -> Path:
    """Fail on unusable inputs before anything is signed: the parent model, a candidate folder that is no
    model, an adapter that does not fit, memory stores and datasets that do not parse (a proposal of them
    would be recorded, and every gate of it would break).

    A GGUF parent is dequantised (once, cached, sealed by the gate's key) straight into `dtype`, the dtype
    the models run in; a GGUF candidate is dequantised by the gate.
    """
    assert request.parent is not None
    parent_dir = resolve_model_dir(request.parent, cache, dtype, seal)
    if request.candidate is not None and Path(request.candidate).suffix != ".gguf":
        resolve_model_dir(request.candidate)
    if request.adapter is not None:
        check_adapter_fits(request.adapter, parent_dir)
    for store in (request.memory_old, request.memory_new):
        if store is not None:
            load_memory_store(store)
    for dataset in (request.data, request.target):
        if dataset is not None:
            load_dataset(dataset)
    return parent_dir


def _seal_gguf_models(request: GateRequest, cache: Path, dtype: str, seal: KeySeal | None) -> None:
    """Every GGUF model the checks will load, dequantised now into folders the gate's key vouches for, in
    the run's dtype and in float32 (the copy tokenizers, digests and weight diffs read): the checks find
    those folders in the cache instead of whatever else someone left under the same key. (The parent in
    the run's dtype is `_check_inputs`'s: checking its seal again would read it twice.)"""
    if seal is None:
        return
    for path in (request.parent, request.candidate):
        if path is None or Path(path).suffix != ".gguf" or not Path(path).is_file():
            continue
        for each in dict.fromkeys((dtype, "float32")):
            if (path, each) != (request.parent, dtype):
                resolve_model_dir(path, cache, each, seal)


def _model_pool(request: GateRequest, parent_dir: Path, run: GateRun) -> ModelPool | None:
    """The run's models, each checked now (files, adapter, device, memory; a served one's server
    answering for it) and loaded on first use, once."""
    if request.candidate is None and request.adapter is None:
        return None  # a memory update runs no model
    pool = ModelPool(run.cache)
    try:
        if request.served is None:  # a served model loads only if a check needs its weights
            pool.get(ModelSpec(parent_dir, None, run.device, run.dtype))
            pool.get(ModelSpec(request.candidate or parent_dir, request.adapter, run.device, run.dtype))
        pool.serve_pair(parent_dir, request.candidate, request.adapter, request.served)
    except BaseException:
        pool.close()
        raise
    return pool


def served_refs(served: ServedPair | None) -> dict[str, ServedRef] | None:
    """What each server says it serves, asked now: an unreachable server or unknown model is an InputError."""
    if served is None:
        return None
    refs = {}
    for role, endpoint in (("parent", served.parent), ("candidate", served.candidate)):
        client = ServedClient(endpoint)
        try:
            found = client.identify()
        finally:
            client.close()
        refs[role] = ServedRef(url=found.url, model=found.model, revision=found.revision)
    if (refs["parent"].url, refs["parent"].model) == (refs["candidate"].url, refs["candidate"].model):
        raise InputError(
            f"the parent and the candidate are both {refs['parent'].model} at {refs['parent'].url}"
        )
    return refs


def _served_pair(proposal: Proposal, run: GateRun) -> ServedPair | None:
    """The servers the proposal named, at the gate's concurrency and timeout."""
    if proposal.served is None:
        return None
    parent, candidate = (
        Endpoint(r.url, r.model, run.served_concurrency, run.served_timeout_s)
        for r in (proposal.served["parent"], proposal.served["candidate"])
    )
    return ServedPair(parent, candidate)


def _served_disallowed(proposal: Proposal, run: GateRun) -> list[Finding]:
    """The pipeline names the servers; the gate asks only those its operator allowed (and sends its
    API key only there): a proposal naming any other is blocked without contacting it."""
    allowed = {Endpoint(url).url for url in run.served_allow}
    return [
        Finding(
            rule="served-origin",
            check="served",
            status=Status.FAIL,
            reason=f"the {role} is served at {ref.url}, which this gate does not ask (allow it with "
            "--served-allow or $CLGATE_SERVED_ALLOW if it is yours); propose the update with an allowed server",
        )
        for role, ref in (proposal.served or {}).items()
        if ref.url not in allowed
    ]


def _served_changed(
    proposal: Proposal, request: GateRequest, parent_dir: Path, pool: ModelPool | None
) -> list[Finding]:
    """A server that now serves another revision than was proposed serves another model: block."""
    if proposal.served is None or pool is None:
        return []
    specs = {
        "parent": ModelSpec(parent_dir),
        "candidate": ModelSpec(request.candidate or parent_dir, request.adapter),
    }
    findings = []
    for role, spec in specs.items():
        found, ref = pool.outputs(spec), proposal.served[role]
        if not isinstance(found, ServedModel) or (found.identity.model, found.identity.revision) != (
            ref.model,
            ref.revision,
        ):
            now = found.identity.revision[:19] if isinstance(found, ServedModel) else "not served"
            findings.append(
                Finding(
                    rule="proposed-artifacts",
                    check="served",
                    status=Status.FAIL,
                    reason=f"the served {role} {ref.model} at {ref.url} is not what was proposed (now {now}…, "
                    f"proposed {ref.revision[:19]}…); propose the update again",
                )
            )
    return findings


def build_proposal(
    request: GateRequest,
    manifests: dict[str, Manifest],
    served: dict[str, ServedRef] | None = None,
    signatures: dict[str, OmsSignature] | None = None,
) -> Proposal:
    kind = request.update_kind()
    artifacts = {
        role: ArtifactDigest(
            kind=m.kind.value,
            uri=str(request.paths()[role].resolve()),
            digest=m.root,
            files={f.path: f.sha256 for f in m.files},
        )
        for role, m in manifests.items()
    }
    body = {
        "kind": kind,
        "deployment": request.deployment,
        "base": manifests["candidate"].root if kind == "model" else manifests["parent"].root,
        "artifacts": {role: a.model_dump(mode="json") for role, a in artifacts.items()},
        "pipeline": dict(request.pipeline),
        "nonce": secrets.token_hex(8),
        **({"supersedes": request.supersedes} if request.supersedes else {}),
        **({"served": {r: ref.model_dump() for r, ref in served.items()}} if served else {}),
        **(
            {"signatures": {r: s.model_dump(mode="json") for r, s in signatures.items()}}
            if signatures
            else {}
        ),
    }
    return Proposal.of(ProposalContent.model_validate(body))


def propose(
    request: GateRequest,
    journal: Journal,
    run: GateRun = GateRun(),
    progress: Progress | None = None,
    seal: KeySeal | None = None,
) -> Proposed:
    """Hash every artifact and record `update.proposed`, signed by the pipeline's key. A run that gates
    what it proposes passes the gate key's `seal`, so a GGUF parent is dequantised once, sealed."""
    request.update_kind()
    run.check_folders()
    _check_inputs(request, run.cache, run.placement().dtype, seal)
    served = served_refs(request.served)
    manifests = _manifests(request.paths(), progress)
    signatures = None
    if request.upstream is not None:
        role = CANDIDATE_ROLE[request.update_kind()]
        signatures = {role: verify_upstream(request.upstream, request.paths()[role], manifests[role])}
        keep_signature(journal.evidence, request.upstream.signature, signatures[role])
    proposal = build_proposal(request, manifests, served, signatures)
    return Proposed(proposal, journal.propose(proposal), manifests)


def _changed_since_proposed(proposal: Proposal, manifests: dict[str, Manifest]) -> list[Finding]:
    """The gate audits exactly what was proposed: any artifact whose digest moved blocks the update.

    So does a file listing that is not the manifest's: attestations name those files as their subjects,
    and a listing that left a file out would let a verifier accept files nobody audited.
    """
    findings = []
    for role, ref in proposal.artifacts.items():
        if role not in manifests or manifests[role].root != ref.digest:
            why = f"the {role} is not what was proposed (digest differs from {ref.digest[:19]}…)"
        elif ref.files != {f.path: f.sha256 for f in manifests[role].files}:
            why = f"the {role}'s file digests in the proposal are not those of its files"
        else:
            continue
        reason = f"{why}; propose the update again"
        findings.append(
            Finding(rule="proposed-artifacts", check="manifests", status=Status.FAIL, reason=reason)
        )
    return findings


def _lineage_findings(update: UpdateState, state: LedgerState) -> list[Finding]:
    """An adapter or memory is audited against the base it will actually run on; a memory update against
    the store its deployment runs."""
    current_base = state.current_base(update.deployment)
    if update.kind != "model" and current_base is not None and current_base != update.base:
        reason = (
            f"parent {update.base[:19]}… is not the promoted base {current_base[:19]}… of deployment "
            f"{update.deployment!r}; audit the update against the base it will run on"
        )
    else:
        reason = state.governance.other_memory(update)
    if reason is None:
        return []
    return [Finding(rule="lineage", check="lineage", status=Status.FAIL, reason=reason)]


def _unjudged_baseline(state: LedgerState, update: UpdateState, memory_old: Path | None) -> list[Finding]:
    """A deployment's first memory update is judged as a diff of a store no gate judged: whoever proposes
    it picks that store, and an entry planted there is not new to the checks. So a person approves it as
    the deployment's baseline, unless it is empty (then every entry of the new store was judged)."""
    if update.kind != "memory" or memory_old is None or "memory" in state.deployed(update.deployment):
        return []
    entries = len(load_memory_store(memory_old).entries)
    if not entries:
        return []
    old = update.proposal.artifacts["memory_old"].digest
    reason = (
        f"no memory is deployed on {update.deployment!r} yet, so the {entries} entries of the store this "
        f"update changes ({old[:19]}…) were never judged; approve them as the deployment's baseline, or "
        "propose the store as a change of an empty one to have every entry judged"
    )
    return [Finding(rule="memory-baseline", check="lineage", status=Status.WARN, reason=reason)]


def _request_for(update: UpdateState, paths: GateRequest | None, run: GateRun) -> GateRequest:
    """Where the gate finds the artifacts: the paths given, else the URIs the proposal recorded; and
    the servers the proposal named."""
    given = paths.paths() if paths else {}
    located = {role: given.get(role, Path(ref.uri)) for role, ref in update.proposal.artifacts.items()}
    return GateRequest(
        **located,
        deployment=update.deployment,
        served=_served_pair(update.proposal, run),
        anchor=paths.anchor if paths else None,
        deployed_adapter=paths.deployed_adapter if paths else None,
    )


@dataclass(frozen=True)
class Anchor:
    """The promoted base a gate also compares the candidate with, and where its files are now."""

    update: UpdateState
    path: Path
    is_parent: bool


def _anchor(state: LedgerState, update: UpdateState, policy: Policy, request: GateRequest) -> Anchor | None:
    """The anchor of the update's deployment (its first promoted base, or the one the policy pins), for
    an update that runs a model. Its files are where the proposal that made it a base recorded them,
    unless `--anchor` says where they are now; the parent itself when the parent is the anchor. None
    before the deployment has a promoted base: the first base has nothing to drift from."""
    if update.kind == "memory":
        return None
    found = state.governance.anchor(update.deployment, policy.anchors.get(update.deployment))
    if found is None:
        return None
    if found.candidate_digest == update.proposal.artifacts["parent"].digest and request.parent is not None:
        return Anchor(found, request.parent, is_parent=True)
    path = request.anchor or Path(found.proposal.artifacts["candidate"].uri)
    if not path.exists():
        raise InputError(
            f"cannot find the anchor of deployment {update.deployment!r} (base {found.update_id}) at {path} "
            "(give its path with --anchor)"
        )
    return Anchor(found, path, is_parent=False)


def _not_as_recorded(
    rule: str, what: str, path: Path, update: UpdateState, manifest: Manifest
) -> list[Finding]:
    """Files the ledger names must be the bytes it records: the anchor drift is measured from, the adapter
    a memory update is asked through (promoted, or the audited re-audit of a stale one). Otherwise the gate
    would judge against a model nobody audited."""
    if manifest.root == update.candidate_digest:
        return []
    named = "promoted" if update.promoted_index is not None else "proposed"
    return [
        Finding(
            rule=rule,
            check="manifests",
            status=Status.FAIL,
            reason=f"the {what} at {path} is not what update {update.update_id} {named} (digest "
            f"{manifest.root[:19]}…, {named} {update.candidate_digest[:19]}…); give its files with --{rule}",
        )
    ]


@dataclass(frozen=True)
class DeployedAdapter:
    """The adapter a memory update is asked through, and where its files are now."""

    update: UpdateState
    path: Path


def _deployed_adapter(
    state: LedgerState, update: UpdateState, request: GateRequest
) -> DeployedAdapter | None:
    """For a memory update, the adapter its deployment runs, so the memory is judged by what the model as
    served says with it; the audit records which, and the ledger promotes the memory only beside that
    adapter. If the deployed adapter is stale (built on an earlier base), its audited re-audit stands in
    for it: that is what the deployment will run. Found where its proposal recorded it unless
    `--deployed-adapter` says where it is now. None when the deployment runs no adapter."""
    deployed = state.deployed_update("adapter", update.deployment)
    if update.kind != "memory" or deployed is None:
        if request.deployed_adapter is not None:  # the operator would think the memory was judged through it
            unused = (
                f"update {update.update_id} is not a memory update"
                if update.kind != "memory"
                else f"deployment {update.deployment!r} runs no adapter"
            )
            raise InputError(f"--deployed-adapter is not used: {unused}")
        return None
    adapter = deployed
    if deployed.base != state.current_base(update.deployment):
        progress, reaudited = state.reaudit_progress(deployed)
        if reaudited is None or progress != "audited" or not _may_run(reaudited):
            raise InputError(
                f"deployment {update.deployment!r} runs adapter {deployed.update_id}, built on an earlier base, "
                f"and no re-audit of it that may run is recorded (`clgate audit pending` says how far it got): "
                f"re-audit it, then gate memory update {update.update_id}"
            )
        adapter = reaudited
    path = request.deployed_adapter or Path(adapter.proposal.candidate.uri)
    if not path.exists():
        raise InputError(
            f"cannot find the adapter deployment {update.deployment!r} runs ({adapter.update_id}) at {path} "
            "(give its path with --deployed-adapter)"
        )
    return DeployedAdapter(adapter, path)


def _may_run(update: UpdateState) -> bool:
    """Audited, and neither blocked nor rolled back: an update its deployment may still come to run."""
    return (
        update.decision not in (None, "block")
        and update.blocked_index is None
        and update.rolled_back_index is None
    )


def _not_applicable(checks: list[GateCheck], policy: Policy, served: bool) -> dict[str, CheckOutcome]:
    """Checks the policy lets go unrun: those it skips, and for a served update those that need the weights
    in this process where it says so. The report names each, so the record shows what was not looked at."""
    skipped = {
        c.name: f"it needs the model's weights, and policy {policy.name!r} marks it not applicable "
        "to served updates"
        for c in checks
        if served and c.needs_weights and policy.options_for(c.name).get("served") == "not_applicable"
    }
    skipped |= {
        c.name: f"policy {policy.name!r} skips it (skipped_checks)"
        for c in checks
        if c.name in policy.skipped_checks
    }
    return {name: CheckOutcome(name, None, not_applicable=why) for name, why in skipped.items()}


def _with_logs(outcome: CheckOutcome, run: GateRun) -> CheckOutcome:
    """The outcome with its eval logs in the report folder (a cached one's copied there from the cache)."""
    if outcome.measurement is None:
        return outcome
    placed = place_logs(outcome.measurement, run.log_dir, run.cache / "checks" / LOG_FOLDER, outcome.cached)
    return replace(outcome, measurement=placed)


def _check_suite_names(policy: Policy) -> None:
    """The bundled suites a policy's eval checks name must exist: a name that does not (one since renamed)
    would make every gate under the policy block on an error instead of refusing the policy once."""
    named = {
        (check, option, name)
        for check in ("evals", "anchor")
        for option in ("suites", "limits")
        for name in policy.options_for(check).get(option, [])
    }
    if not named:
        return
    from clgate.evals import list_suites

    known = {s.name for s in list_suites()} | {s.name for s in policy.suites}
    for check, option, name in sorted(named):
        if name not in known:
            raise PolicyError(
                f"{policy.name}: checks.{check}.options.{option} names {name!r}, which is no suite "
                f"(known: {', '.join(sorted(known))})"
            )


def check_policy(policy: Policy, journal: Journal, deployments: Iterable[str] = ()) -> None:
    """A gate judges only by a sound policy that an admin adopted here (and did not retire) for each of
    `deployments` it is to judge."""
    check_policy_sound(policy)
    governance = journal.ledger.governance()
    for anchored, pinned in policy.anchors.items():
        if governance.anchor(anchored, pinned) is None:
            raise PolicyError(
                f"{policy.name}: anchors.{anchored} = {pinned!r} is no base deployment {anchored!r} "
                "was promoted to"
            )
    adopted, pending = governance.policies.get(policy.digest), governance.adoptions.get(policy.digest)
    if pending is not None and (adopted is None or adopted.retired_index is not None):
        progress = pending.progress(governance.ring, governance.size)
        raise PolicyError(
            f"policy {policy.name!r} ({policy.digest[:19]}…) is {progress}; another admin runs `clgate policy adopt`"
        )
    if adopted is None or adopted.retired_index is not None:
        raise PolicyError(
            f"policy {policy.name!r} ({policy.digest[:19]}…) is not adopted in this ledger; an admin adopts it "
            "with `clgate policy adopt FILE --key ADMIN_KEY`"
        )
    for deployment in sorted(set(deployments)):
        scope = adopted.scope_refusal(deployment)
        if scope:
            raise PolicyError(
                f"{scope}; an admin retires it (`clgate policy retire FILE`) and adopts it again with "
                "every deployment it judges"
            )


def check_policy_sound(policy: Policy) -> None:
    """What a policy must be before it is adopted or judged by: real checks, a skip list that spares what
    later gates read, `served` options only where they mean something, suites that load."""
    policy.unknown_checks(set(GATE_CHECKS))
    for name in policy.skipped_checks:
        if GATE_CHECKS[name].read_later:
            raise PolicyError(
                f"{policy.name}: skipped_checks names {name!r}, whose measurements later gates read (the "
                "regression history, scheduled audits): it runs at every gate"
            )
    for name in policy.checks:
        if "served" in policy.options_for(name) and not GATE_CHECKS[name].needs_weights:
            raise PolicyError(
                f"{policy.name}: checks.{name}.options.served: only checks that need the model's weights "
                f"({', '.join(c.name for c in GATE_CHECKS.values() if c.needs_weights)}) can be not applicable "
                "to served updates"
            )
    for suite in policy.suites:
        suite.load()  # its file, pin and items: a broken suite is bad input before anything is written
    _check_suite_names(policy)
    _check_detector_names(policy)


def _check_detector_names(policy: Policy) -> None:
    """The detectors a poisoning check's options name must be that check's: an unknown one would make
    every gate under the policy block on an error."""
    named = {c: policy.options_for(c).get("detectors") for c in ("poison.data", "poison.memory")}
    if not any(named.values()):
        return
    from clgate.probes.poison import select_detectors

    for check, names in named.items():
        try:
            select_detectors(check.removeprefix("poison."), names)  # type: ignore[arg-type]
        except InputError as exc:
            raise PolicyError(f"{policy.name}: checks.{check}.options.detectors: {exc}") from None


@dataclass(frozen=True)
class GatePlan:
    """One gate run, resolved before anything is written: the update, where its files are, the models it
    runs, its anchor and regression set; or, found from the ledger alone, what blocks it before any file
    is hashed or model loaded (`blocked_early`)."""

    update: UpdateState
    request: GateRequest
    blocked_early: tuple[Finding, ...] = ()
    parent_dir: Path | None = None
    anchor: Anchor | None = None
    anchor_dir: Path | None = None
    regression: RegressionSet | None = None
    deployed_adapter: DeployedAdapter | None = None
    needs_review: tuple[Finding, ...] = ()

    def judged_with(self) -> JudgedWith | None:
        """What a memory update's model runs as: recorded, so the ledger promotes it only beside that."""
        if self.update.kind != "memory":
            return None
        return JudgedWith(adapter=self.deployed_adapter.update.update_id if self.deployed_adapter else None)

    def inputs(
        self, policy: Policy, run: GateRun, manifests: dict[str, Manifest], pool: ModelPool | None
    ) -> GateInputs:
        """What the checks read: the proposed files (the parent as resolved), and the ledger's anchor,
        regression set and the policy's suites."""
        return GateInputs(
            **{**self.request.paths(), "parent": self.parent_dir},
            anchor=self.anchor_dir,
            regression=self.regression,
            deployed_adapter=self.deployed_adapter.path if self.deployed_adapter else None,
            suites=tuple(policy.suites) or None,
            cache_dir=run.cache,
            seed=run.seed,
            manifests=manifests,
            options={name: policy.options_for(name) for name in policy.checks},
            models=pool,
            device=run.device,
            dtype=run.dtype,
            served=tuple(f"{r.model}@{r.revision}" for r in (self.update.proposal.served or {}).values()),
            log_dir=run.log_dir,
        )


def plan_gate(
    ref: str, policy: Policy, journal: Journal, run: GateRun, paths: GateRequest | None = None
) -> GatePlan:
    """Resolve a gate run, cheapest first: the policy, the proposal, its lineage and servers (the ledger
    alone); then the files, the models, the anchor and the regression set. Bad input raises here."""
    run.check_folders()
    state = journal.state()
    update = state.find(ref)
    if update is None:
        raise InputError(f"no proposal {ref!r} in the ledger (propose it with `clgate propose`)")
    check_policy(policy, journal, [update.deployment])
    if update.audit_index is not None:
        raise InputError(
            f"update {update.update_id} was already audited at entry {update.audit_index}; "
            "a re-audit is a new proposal (`clgate propose --supersedes`)"
        )
    request = _request_for(update, paths, run)
    disallowed = _served_disallowed(update.proposal, run)
    blocked = disallowed + _lineage_findings(update, state)
    if blocked:
        return GatePlan(update, replace(request, served=None), tuple(blocked))
    for role, path in request.paths().items():
        if not path.exists():
            raise InputError(
                f"cannot find the proposed {role} {path} (give its path with --{role.replace('_', '-')})"
            )
    needs_review = _unjudged_baseline(state, update, request.memory_old)
    dtype = run.placement().dtype
    seal = gate_seal(journal)
    parent_dir = _check_inputs(request, run.cache, dtype, seal)
    _seal_gguf_models(request, run.cache, dtype, seal)
    anchor = _anchor(state, update, policy, request)
    anchor_dir = None
    if anchor is not None:
        anchor_dir = (
            parent_dir if anchor.is_parent else resolve_model_dir(anchor.path, run.cache, dtype, seal)
        )
    regression = regression_set(
        state, update.deployment, journal.evidence, run.cache, before=update
    )  # a lost earlier set: refused here
    adapter = _deployed_adapter(state, update, request)
    if adapter is not None:
        check_adapter_fits(adapter.path, parent_dir)
    return GatePlan(
        update, request, (), parent_dir, anchor, anchor_dir, regression, adapter, tuple(needs_review)
    )


def _changed_files(plan: GatePlan, manifests: dict[str, Manifest], pool: ModelPool | None) -> list[Finding]:
    """What blocks the update once its files are hashed: anything not as proposed, or an anchor that is
    not the promoted base."""
    assert plan.parent_dir is not None
    return (
        _changed_since_proposed(plan.update.proposal, manifests)
        + (
            _not_as_recorded("anchor", "anchor", plan.anchor.path, plan.anchor.update, manifests["anchor"])
            if plan.anchor is not None
            else []
        )
        + (
            _not_as_recorded(
                "deployed-adapter",
                "deployed adapter",
                plan.deployed_adapter.path,
                plan.deployed_adapter.update,
                manifests["deployed_adapter"],
            )
            if plan.deployed_adapter is not None
            else []
        )
        + _served_changed(plan.update.proposal, plan.request, plan.parent_dir, pool)
    )


def _hash(
    plan: GatePlan, given: dict[str, Manifest] | None, progress: Progress | None
) -> dict[str, Manifest]:
    """The manifests of every proposed artifact, of the anchor (the parent's when it is the anchor) and of
    the adapter a memory update is asked through."""
    manifests = given if given is not None else _manifests(plan.request.paths(), progress)
    if plan.deployed_adapter is not None:
        manifests = {**manifests, **_manifests({"deployed_adapter": plan.deployed_adapter.path}, progress)}
    if plan.anchor is None:
        return manifests
    if plan.anchor.is_parent:
        return {**manifests, "anchor": manifests["parent"]}
    return {**manifests, **_manifests({"anchor": plan.anchor.path}, progress)}


def run_gate(
    ref: str,
    policy: Policy,
    journal: Journal,
    run: GateRun = GateRun(),
    paths: GateRequest | None = None,
    manifests: dict[str, Manifest] | None = None,
    progress: Progress | None = None,
) -> GateResult:
    """Audit the proposed update `ref` with the gate's key and record the verdict.

    `manifests` may be passed by a caller that hashed the artifacts moments ago in this process
    (`propose`); otherwise every artifact is hashed again and compared with the proposal.
    """
    start = time.perf_counter()
    plan = plan_gate(ref, policy, journal, run, paths)
    update = plan.update
    with ExitStack() as stack:
        pool = None
        if not plan.blocked_early:  # bad device, dtype or size: refused before any write
            pool = _model_pool(plan.request, plan.parent_dir, run)
        if pool is not None:
            stack.callback(pool.close)
        stack.enter_context(journal.exclusive(f"gate {update.update_id}"))
        outcomes: dict[str, CheckOutcome] = {}
        early = list(plan.blocked_early)
        signed: list[Finding] = []  # the producer's signature, verified again: a failure stops the checks
        try:
            if not early:
                manifests = _hash(plan, manifests, progress)
                early = _changed_files(plan, manifests, pool)
            if not early:
                role = CANDIDATE_ROLE[update.kind]
                signed = producer_findings(
                    policy.producers,
                    update,
                    plan.request.paths().get(role),
                    manifests.get(role),
                    journal.evidence,
                )
                early = [f for f in signed if f.status is Status.FAIL]
            if not early:
                inputs = plan.inputs(policy, run, manifests, pool)
                checks = [c for c in GATE_CHECKS.values() if c.applies(inputs)]
                skipped = _not_applicable(checks, policy, served=plan.request.served is not None)
                cache = (
                    CheckCache(run.cache / "checks", journal.signer, journal.evidence)
                    if journal.signer
                    else None
                )
                outcomes = run_checks(
                    [c for c in checks if c.name not in skipped], inputs, policy.timeout_for, cache, progress
                )
                outcomes.update(skipped)
                outcomes = {n: _with_logs(o, run) for n, o in outcomes.items()}
                # the target set joins the deployment's regression set once the update is promoted
                keep_target(journal.evidence, update, plan.request.target)
        except Exception as exc:  # the gate broke: record a blocking audit rather than none
            early, signed = [], []
            outcomes = {"gate": CheckOutcome("gate", None, error=f"{type(exc).__name__}: {exc}")}
        verdict = judge(policy, outcomes, update.kind)
        noted = [*early, *plan.needs_review, *(f for f in signed if f.status is not Status.FAIL)]
        if noted:
            verdict = Verdict.from_findings([*noted, *verdict.findings])
        measurements = {n: o.measurement for n, o in outcomes.items() if o.measurement is not None}
        audited = journal.complete(
            update,
            verdict,
            policy,
            {n: journal.evidence.put(m) for n, m in measurements.items()},
            plan.judged_with(),
            audited_accuracy(update.update_id, measurements),
        )
        entries = {"update.proposed": update.proposed_index, "audit.completed": audited}
        if verdict.decision is Decision.BLOCK:
            entries["promotion.blocked"] = journal.block(update, verdict)
        loads = pool.loads if pool is not None else 0
        requests, waiting = pool.served_traffic() if pool is not None else (0, 0.0)
    result = GateResult(
        update_id=update.update_id,
        proposal=update.proposal,
        verdict=verdict,
        checks=tuple(CheckSummary.of(o) for o in outcomes.values()),
        measurements=measurements,
        policy={"name": policy.name, "digest": policy.digest},
        ledger_entries=entries,
        seconds=time.perf_counter() - start,
        model_loads=loads,
        served_requests=requests,
        served_waiting_s=round(waiting, 3),
    )
    write_gate_report(result, Path(run.out_dir))
    return result
