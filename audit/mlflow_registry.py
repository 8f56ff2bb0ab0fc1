"""MLflow Model Registry versions as clgate updates: which version a proposal gated, and its alias.

Teams keep models in the registry; the ledger says which of them may run. A version is gated from
the bytes downloaded from its tracking server, and its proposal records it by name, version and run
id. Its alias moves only through the ledger, after the version's artifacts are fetched again and
hashed: anyone who may write the run's artifacts can replace them after the audit. What the gate audits
in a version (its root, or the weights a transformers-flavour version nests) is `mlflow_flavour`'s call.
"""

from __future__ import annotations

import re
import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import mlflow.artifacts
from mlflow import MlflowClient
from mlflow.exceptions import MlflowException, RestException

from clgate.artifacts import artifact_ref
from clgate.audit import actions
from clgate.audit.journal import Journal
from clgate.audit.mlflow_flavour import check_served_as_judged, version_files
from clgate.audit.state import LedgerState
from clgate.errors import InputError, IntegrityError
from clgate.ledger import Proposal, UpdateState
from clgate.reachable import check_reachable

_MODEL_URI = re.compile(r"^models:/(?P<name>[^/@]+)/(?P<version>[1-9][0-9]*)$")


@dataclass(frozen=True)
class VersionRef:
    """A registered model version by number: an alias or a stage may point elsewhere after the gate."""

    name: str
    version: str

    @classmethod
    def parse(cls, uri: str) -> VersionRef:
        match = _MODEL_URI.match(uri)
        if match is None:
            raise InputError(
                f"{uri!r} is not models:/NAME/VERSION (a version number: an alias or stage may move after the gate)"
            )
        return cls(match["name"], match["version"])

    @property
    def uri(self) -> str:
        return f"models:/{self.name}/{self.version}"


@dataclass(frozen=True)
class RegisteredVersion:
    """A version as its tracking server describes it."""

    ref: VersionRef
    run_id: str
    """The run that logged it ("" for a version registered from outside a run)."""
    tracking_uri: str
    """Without user and password: it is written to the ledger."""

    def pipeline(self) -> dict[str, str]:
        """What the proposal records, so that the ledger names the version it gated."""
        return {
            "mlflow.uri": self.ref.uri,
            "mlflow.name": self.ref.name,
            "mlflow.version": self.ref.version,
            "mlflow.run_id": self.run_id,
            "mlflow.tracking_uri": self.tracking_uri,
        }

    def proposed_in(self, proposal: Proposal) -> bool:
        """Name, version and run id: the run id tells apart equal names on two tracking servers."""
        recorded = proposal.pipeline
        return all(recorded.get(k) == v for k, v in self.pipeline().items() if k != "mlflow.tracking_uri")


@dataclass(frozen=True)
class Promoted:
    """A version promoted through the ledger: what its alias and tags say."""

    version: RegisteredVersion
    alias: str
    update: UpdateState
    promotion_index: int
    """The entry that put the update in its slot: its promotion, or the rollback that restored it."""
    restored: bool = False

    def tags(self) -> dict[str, str]:
        """Where in the ledger a reader of the registry finds the audit behind the alias."""
        assert self.update.decision is not None and self.update.audit_index is not None
        return {
            "clgate.update_id": self.update.update_id,
            "clgate.deployment": self.update.deployment,
            "clgate.decision": self.update.decision,
            "clgate.audit_entry": str(self.update.audit_index),
            "clgate.rollback_entry" if self.restored else "clgate.promotion_entry": str(self.promotion_index),
            "clgate.candidate_digest": self.update.candidate_digest,
        }


def _without_credentials(uri: str) -> str:
    parts = urlsplit(uri)
    if parts.username is None and parts.password is None:
        return uri
    return urlunsplit(parts._replace(netloc=parts.netloc.rpartition("@")[2]))


def _root_cause(exc: BaseException) -> BaseException:
    while (inner := exc.__cause__ or exc.__context__) is not None:
        exc = inner
    return exc


class Registry:
    """One tracking server's model registry; every MLflow failure becomes a one-line InputError."""

    def __init__(self, tracking_uri: str) -> None:
        if not tracking_uri.strip():  # MLflow would make an ./mlflow.db of its own and find nothing there
            raise InputError("--tracking-uri is empty: name the MLflow tracking server holding the registry")
        try:
            parts = urlsplit(tracking_uri)
            port = parts.port
        except ValueError as exc:
            raise InputError(f"--tracking-uri is not a URI ({exc})") from None
        if parts.scheme in ("http", "https") and parts.hostname:
            port = port or (443 if parts.scheme == "https" else 80)
            where = f"MLflow at {_without_credentials(tracking_uri)}"
            check_reachable(parts.hostname, port, where, through_proxy=True)
        self.tracking_uri = tracking_uri
        with self._asking("the model registry"):
            self._client = MlflowClient(tracking_uri=tracking_uri)

    @contextmanager
    def _asking(self, what: str) -> Iterator[None]:
        where = _without_credentials(self.tracking_uri)
        try:
            yield
        except MlflowException as exc:
            if exc.error_code == "RESOURCE_DOES_NOT_EXIST":
                raise InputError(f"{what}: not found at MLflow {where}") from exc
            if isinstance(exc, RestException):
                raise InputError(f"{what}: MLflow {where} answered {str(exc).splitlines()[0][:300]}") from exc
            cause = str(_root_cause(exc)).splitlines()[0][:300]
            raise InputError(f"{what}: cannot reach MLflow at {where} ({cause})") from exc

    def version(self, ref: VersionRef) -> RegisteredVersion:
        with self._asking(ref.uri):
            found = self._client.get_model_version(ref.name, ref.version)
        if found.status != "READY":
            raise InputError(f"{ref.uri} is {found.status}, not READY: its artifacts may be incomplete")
        return RegisteredVersion(ref, found.run_id or "", _without_credentials(self.tracking_uri))

    def download(self, version: RegisteredVersion, dest: Path) -> Path:
        """The version's artifacts in `dest`, replacing what was there: never mixed with an older download."""
        dest.parent.mkdir(parents=True, exist_ok=True)
        staging = Path(tempfile.mkdtemp(prefix=".download-", dir=dest.parent))
        try:
            with self._asking(f"the artifacts of {version.ref.uri}"):
                source = self._client.get_model_version_download_uri(version.ref.name, version.ref.version)
                local = mlflow.artifacts.download_artifacts(
                    artifact_uri=source, dst_path=str(staging), tracking_uri=self.tracking_uri
                )
            shutil.rmtree(dest, ignore_errors=True)
            Path(local).rename(dest)
        finally:
            shutil.rmtree(staging, ignore_errors=True)
        return dest

    def tag(self, ref: VersionRef, tags: dict[str, str]) -> None:
        with self._asking(ref.uri):
            for key, value in tags.items():
                self._client.set_model_version_tag(ref.name, ref.version, key, value)

    def alias_deployment(self, ref: VersionRef, alias: str) -> str | None:
        """The deployment the version `alias` points at now was promoted for (None: unset, or not by clgate)."""
        with self._asking(ref.uri):
            current = self._client.get_registered_model(ref.name).aliases.get(alias)
            if current is None:
                return None
            return self._client.get_model_version(ref.name, current).tags.get("clgate.deployment")

    def publish(self, promoted: Promoted) -> None:
        """Tags first, alias last: whoever sees the alias also sees the ledger entries behind it."""
        ref = promoted.version.ref
        self.tag(ref, promoted.tags())
        with self._asking(ref.uri):
            self._client.set_registered_model_alias(ref.name, promoted.alias, ref.version)


def _check_alias(registry: Registry, ref: VersionRef, alias: str, deployment: str) -> None:
    """An alias serves one deployment: one that points at a version promoted for another is not moved for this
    one, or an approver could point production's alias at a version only a sandbox passed."""
    bound = registry.alias_deployment(ref, alias)
    if bound is not None and bound != deployment:
        raise InputError(
            f"alias {alias!r} of {ref.name} points at a version promoted for deployment {bound!r}, not "
            f"{deployment!r}: give each deployment an alias of its own"
        )


def gated_update(state: LedgerState, version: RegisteredVersion, deployment: str) -> UpdateState:
    """The latest proposal of `version` for `deployment` in the ledger (a later one re-audits an earlier one):
    never another deployment's, or a version blocked for production could be promoted through the verdict
    a sandbox gave it."""
    found = [
        u for u in state.updates.values() if u.deployment == deployment and version.proposed_in(u.proposal)
    ]
    if not found:
        raise InputError(
            f"{version.ref.uri} (run {version.run_id or 'none'}) was never gated for deployment "
            f"{deployment!r} in this ledger: run `clgate mlflow gate --deployment {deployment}` first"
        )
    return max(found, key=lambda u: u.proposed_index)


def _same_bytes(
    registry: Registry, version: RegisteredVersion, update: UpdateState, workdir: Path | None
) -> None:
    """The version's artifacts, fetched again now, must hash to what `update` audited (anyone who may write
    the run's artifacts can replace them after the audit), say what its proposal recorded of how MLflow
    serves them, and name a base that still holds the bytes the update was audited on (a base path is
    written after the gate as easily), with a tokenizer that agrees with it."""
    uri = version.ref.uri
    with tempfile.TemporaryDirectory(prefix="clgate-mlflow-", dir=workdir) as tmp:
        files = version_files(registry.download(version, Path(tmp) / "artifacts"), uri)
        digest = artifact_ref(files.candidate).digest
        if digest != update.candidate_digest:
            raise IntegrityError(
                f"{uri} is not the bytes update {update.update_id} audited (now {digest[:19]}…, audited "
                f"{update.candidate_digest[:19]}…): its artifacts changed after the gate; gate it again"
            )
        recorded = update.proposal.pipeline
        if files.artifacts_digest != recorded.get("mlflow.artifacts_digest"):
            raise IntegrityError(
                f"{uri} holds other files than when update {update.update_id} was gated (the weights are "
                "the same; its MLmodel file or tokenizer changed, which MLflow serves with them); gate it again"
            )
        served = files.pipeline()
        if any(served.get(key) != recorded.get(key) for key in ("mlflow.base_model", "mlflow.model_config")):
            raise IntegrityError(
                f"{uri} is served otherwise than update {update.update_id}'s proposal recorded (base model or "
                "model_config): gate it with `clgate mlflow gate`"
            )
        if files.base_model is not None:
            base = Path(files.base_model)
            if not base.is_dir() or artifact_ref(base).digest != update.base:
                raise IntegrityError(
                    f"{uri} is served on the base it names ({base}), which no longer holds the base update "
                    f"{update.update_id} was audited on ({update.base[:19]}…); gate it again"
                )
            check_served_as_judged(files, base, uri)  # its tokenizer against that base's


def promote_version(
    journal: Journal,
    registry: Registry,
    ref: VersionRef,
    alias: str,
    deployment: str,
    workdir: Path | None = None,
) -> Promoted:
    """Promote the update that gated `ref` for `deployment` (unless the ledger already deploys it), then move
    `alias` to it.

    Refused before anything is downloaded when the ledger forbids the promotion (block, rollback,
    missing approvals); refused when the version's bytes now hash to anything but the
    audited candidate. `workdir` holds the fresh download while it is hashed.
    """
    version = registry.version(ref)
    _check_alias(registry, ref, alias, deployment)
    state = journal.state()
    update = gated_update(state, version, deployment)
    deployed = state.is_deployed(update)
    refusal = None if deployed else actions.promotion_refusal(state, update, journal.signer_id)
    ring, size = state.governance.ring, state.governance.size
    if deployed and not ring.has_role(journal.signer_id, "approver", size):
        # moving the alias publishes a deployment: the role that promotes, even when the ledger has it already
        refusal = f"only an approver key may point an alias at update {update.update_id}"
    if refusal:
        raise InputError(f"promotion refused: {refusal}")
    _same_bytes(registry, version, update, workdir)
    index = update.promoted_index if deployed else actions.promote(journal, update.update_id)
    assert index is not None
    promoted = Promoted(version, alias, journal.state().updates[update.update_id], index)
    registry.publish(promoted)
    return promoted


def rollback_to_version(
    journal: Journal,
    registry: Registry,
    ref: VersionRef,
    alias: str,
    reason: str,
    deployment: str,
    workdir: Path | None = None,
) -> Promoted:
    """Restore the update that gated `ref` for `deployment` in the ledger (`rollback.done`), then point `alias` at it again.

    Refused before anything is recorded when the ledger forbids the rollback (never deployed, blocked,
    already rolled back, built on another base) or when the version's bytes no longer hash to what was
    audited: the model restored must be the one audited. The version it replaces is tagged with the
    rollback entry, so the registry shows why the alias left it.
    """
    version = registry.version(ref)
    _check_alias(registry, ref, alias, deployment)
    state = journal.state()
    update = gated_update(state, version, deployment)
    refusal = state.governance.rollback_refusal(update)
    if refusal:
        raise InputError(f"rollback refused: {refusal}")
    _same_bytes(registry, version, update, workdir)
    replaced = state.deployed_update(update.slot, update.deployment)
    index = actions.rollback(journal, update.update_id, reason)
    restored = Promoted(version, alias, journal.state().updates[update.update_id], index, restored=True)
    if replaced is not None and replaced.proposal.pipeline.get("mlflow.name") == ref.name:
        registry.tag(
            VersionRef(ref.name, replaced.proposal.pipeline["mlflow.version"]),
            {"clgate.rolled_back_entry": str(index)},
        )
    registry.publish(restored)
    return restored
