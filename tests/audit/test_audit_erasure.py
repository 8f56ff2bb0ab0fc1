"""Erasure, provable from the ledger: a subject's memory entries are removed through the gate, the update
trained on their data is never deployed again, `erasure.done` is recorded only once nothing deployed
carries the data (the ledger refuses it otherwise, whoever signs), and the identifier is never recorded."""

from __future__ import annotations

import hashlib
import json
from datetime import UTC, datetime
from pathlib import Path

import pytest

from clgate.artifacts import DatasetRecord, MemoryEntry, load_memory_store, write_dataset, write_memory_store
from clgate.audit.cli import main
from clgate.audit.gate_checks import GATE_CHECKS
from clgate.audit.journal import Journal
from clgate.audit.policy import parse_policy
from clgate.demo import bootstrap_ledger, make_tiny_lora
from clgate.ledger import AppendRefused, ErasureDone, ErasureRequest, ScheduledRun, load_private_key
from clgate.measurement import Measurement

POLICY = """
name = "erasure-test"

[required_checks]
model = ["weights"]
adapter = ["weights"]
memory = ["memory"]

[[rules]]
id = "weight-change"
check = "weights"
metric = "weights.max_relative_change"
reason = "A weight tensor changed too much"
fail_above = 1000.0
"""
SUBJECT = "dana@example.org"


def _record(user: str, assistant: str) -> DatasetRecord:
    return DatasetRecord.model_validate(
        {"messages": [{"role": "user", "content": user}, {"role": "assistant", "content": assistant}]}
    )


@pytest.fixture
def deployment(tmp_path: Path, tiny_model: Path, tiny_lora: Path, monkeypatch: pytest.MonkeyPatch):
    """A deployment running a base, an adapter trained on a record about the subject, and a memory holding
    two entries that carry the subject's address (one in its text, one in its source)."""
    for name in [n for n in GATE_CHECKS if n not in ("weights", "memory")]:
        monkeypatch.delitem(GATE_CHECKS, name)
    policy = tmp_path / "policy.toml"
    policy.write_text(POLICY)
    boot = bootstrap_ledger(tmp_path / "ledger", policies=[parse_policy(POLICY)])
    keys = ["--ledger", str(boot.ledger), "--trust", str(boot.trust)]

    def run(*args: str, key: str) -> int:
        return main([*args, *keys, "--key", str(boot.keys[key])])

    def gate_and_promote(name: str, *args: str, baseline: bool = False) -> str:
        """`baseline`: a first memory update, which a person approves (its old store was never judged)."""
        assert run("gate", "--parent", str(tiny_model), *args, "--policy", str(policy), "--out",
                   str(tmp_path / "reports" / name), "--proposer-key", str(boot.keys["pipeline"]),
                   key="gate") == (10 if baseline else 0)  # fmt: skip
        with Journal.open(boot.ledger, None, boot.trust) as journal:
            update_id = list(journal.state().updates)[-1]
        if baseline:
            assert run("approve", update_id, key="auditor") == 0
        assert run("promote", update_id, key="approver") == 0
        return update_id

    data = write_dataset([_record("Hi", "Hello."), _record("Reach Dana?", f"Write to {SUBJECT}."), _record("Bye", "Bye.")],
                         tmp_path / "data.jsonl")  # fmt: skip
    old = write_memory_store([MemoryEntry(id="m0", text="The user likes tea.")], tmp_path / "memory_v1.jsonl")
    new = write_memory_store(
        [
            MemoryEntry(id="m0", text="The user likes tea."),
            MemoryEntry(id="m1", text=f"Dana's e-mail is {SUBJECT}.", source="user:chat"),
            MemoryEntry(id="m2", text="Dana prefers metric units.", source="user:DANA@example.org"),
            MemoryEntry(id="m3", text="Meetings are on Tuesdays.", source="user:chat"),
        ],
        tmp_path / "memory_v2.jsonl",
    )
    ids = {
        "base": gate_and_promote("base", "--candidate", str(tiny_model)),
        "adapter": gate_and_promote("adapter", "--adapter", str(tiny_lora), "--data", str(data)),
        "memory": gate_and_promote(
            "memory", "--memory-old", str(old), "--memory-new", str(new), baseline=True
        ),
    }
    return boot, run, gate_and_promote, ids, policy


def test_erasure_removes_the_entries_retires_the_update_and_is_proven(
    tmp_path: Path, tiny_model: Path, deployment, capsys
) -> None:
    boot, run, gate_and_promote, ids, policy = deployment
    erased = tmp_path / "memory_v3.jsonl"
    capsys.readouterr()
    assert run("erase", "request", "--subject", SUBJECT, "--out", str(erased), "--proposer-key", str(boot.keys["pipeline"]),
               "--gate-key", str(boot.keys["gate"]), "--policy", str(policy), "--report", str(tmp_path / "reports" / "erasure"),
               key="auditor") == 0  # fmt: skip
    out = capsys.readouterr().out
    assert f"memory {ids['memory']}: 2 of 4 entries carry it (m1, m2)" in out
    assert f"update {ids['adapter']} was trained on it (records 2)" in out
    assert [e.id for e in load_memory_store(erased).entries] == ["m0", "m3"]
    with Journal.open(boot.ledger, None, boot.trust) as journal:
        state = journal.state()
        (erasure,) = state.governance.erasures.values()
        cleaned = list(state.updates)[-1]
    request_id = erasure.request.request_id
    assert state.updates[cleaned].proposal.pipeline == {"erasure": request_id}
    assert erasure.request.memory_entries == ["m1", "m2"]

    # not yet: the deployed memory still carries it; the wrong subject is not this request's
    assert run("erase", "done", request_id, "--subject", SUBJECT, key="auditor") == 1
    assert "entries of the deployed memory still carry it (m1, m2)" in capsys.readouterr().err
    assert run("erase", "done", request_id, "--subject", "someone@example.org", key="auditor") == 2
    assert f"is not the one erasure request {request_id} was made for" in capsys.readouterr().err

    assert run("promote", cleaned, key="approver") == 0
    assert run("erase", "done", request_id, "--subject", SUBJECT, key="auditor") == 1
    assert f"{ids['adapter']} (adapter) trained on the erased data still deployed" in capsys.readouterr().err
    # nor can any key record it done behind the CLI's back: the ledger refuses it
    with Journal.open(boot.ledger, load_private_key(boot.keys["approver"]), boot.trust) as journal:
        memory = journal.state().updates[cleaned]
        forged = ErasureDone(request_id=request_id, memory_update=cleaned, memory_digest=memory.candidate_digest,
                             entries_scanned=2)  # fmt: skip
        with pytest.raises(AppendRefused, match="trained on the erased data, is still deployed"):
            journal.append(forged, request_id)

    retrained = make_tiny_lora(tiny_model, tmp_path / "retrained", seed=7)
    clean_data = write_dataset([_record("Hi", "Hello.")], tmp_path / "clean.jsonl")
    gate_and_promote("retrained", "--adapter", str(retrained), "--data", str(clean_data))
    with Journal.open(boot.ledger, None, boot.trust) as journal:  # a check's result no audit recorded
        orphan = journal.evidence.put(Measurement(name="memory", version="2", details=[{"text": SUBJECT}]))
        # whoever can write the evidence folder rewrites the adapter's weight diff to quote the subject: an
        # honest erasure would delete it as "quoting erased data", and the compliance report say so
        weights = journal.evidence._path(journal.state().updates[ids["adapter"]].measurements["weights"])
    true_bytes = weights.read_bytes()
    weights.write_text(json.dumps({"planted": SUBJECT}))
    capsys.readouterr()
    assert run("erase", "done", request_id, "--subject", SUBJECT, key="auditor") == 1  # tampering: exit 1
    assert (
        f"{weights}: evidence does not match its digest (altered after it was recorded)"
        in capsys.readouterr().err
    )
    weights.write_bytes(true_bytes)
    assert run("erase", "done", request_id, "--subject", SUBJECT, key="auditor") == 0
    assert f"memory {cleaned} (sha256:" in capsys.readouterr().out

    # the retired update never returns, nor the store that held the entries; the ledger holds no trace of
    # the identifier; it still verifies
    assert run("rollback", "--to", ids["adapter"], "--reason", "try", key="approver") == 2
    assert f"was trained on data erased by request {request_id}" in capsys.readouterr().err
    assert run("rollback", "--to", ids["memory"], "--reason", "incident", key="approver") == 2
    assert (
        f"memory update {ids['memory']} was deployed before erasure request {request_id}"
        in capsys.readouterr().err
    )
    with Journal.open(boot.ledger, None, boot.trust) as journal:
        evidence, state = journal.evidence.folder, journal.state()
        (entry,) = journal.ledger.find("erasure.done")
    assert state.governance.erasures[request_id].done_index == entry.index
    # the memory diffs of the memory's own gate and of the erasure's gate quoted the entries: removed
    quoting = {state.updates[u].measurements["memory"] for u in (ids["memory"], cleaned)}
    assert set(entry.body["evidence_removed"]) == quoting | {orphan}
    assert SUBJECT.encode() not in boot.ledger.read_bytes().lower()
    assert not [p for p in evidence.rglob("*.json") if SUBJECT in p.read_text().lower()]
    assert main(["ledger", "verify", "--ledger", str(boot.ledger), "--trust", str(boot.trust)]) == 0
    assert main(["status", "--ledger", str(boot.ledger), "--trust", str(boot.trust)]) == 0
    assert "erasures open: none" in capsys.readouterr().out
    day = datetime.now(UTC).strftime("%Y-%m-%d")
    assert main(["report", "--ledger", str(boot.ledger), "--trust", str(boot.trust), "--from", day, "--to", day,
                 "--format", "json", "--out", str(tmp_path / "compliance.json")]) == 0  # fmt: skip
    report = json.loads((tmp_path / "compliance.json").read_text())
    assert (report["counts"]["erasures_requested"], report["counts"]["erasures_done"]) == (1, 1)
    memory_gate = next(u for u in report["updates"] if u["update_id"] == ids["memory"])
    (removed,) = [e for e in memory_gate["evidence"] if e["check"] == "memory"]
    assert removed["problem"].startswith(f"removed by erasure request {request_id}")


def test_an_erasure_from_the_live_store_is_gated_as_a_change_of_the_promoted_one(
    tmp_path: Path, deployment, capsys
) -> None:
    """The live store (`--memory`) holds a note the deployment wrote since the promotion: the subject is
    erased from it, and the cleaned store is proposed as a change of the promoted store, so that note is
    gated with the erasure and the ledger can promote it (a change of another store it would refuse)."""
    boot, run, _, ids, policy = deployment
    promoted = load_memory_store(tmp_path / "memory_v2.jsonl")
    written = MemoryEntry(id="m4", text="Dana moved to Lisbon.", source="user:chat")
    live = write_memory_store([*promoted.entries, written], tmp_path / "serving" / "live.jsonl")
    assert run("erase", "request", "--subject", SUBJECT, "--memory", str(live), "--out", str(tmp_path / "v3.jsonl"),
               "--proposer-key", str(boot.keys["pipeline"]), "--gate-key", str(boot.keys["gate"]), "--policy",
               str(policy), "--report", str(tmp_path / "reports" / "erasure"), key="auditor") == 0  # fmt: skip
    assert [e.id for e in load_memory_store(tmp_path / "v3.jsonl").entries] == ["m0", "m3", "m4"]
    with Journal.open(boot.ledger, None, boot.trust) as journal:
        state = journal.state()
    cleaned = list(state.updates.values())[-1]
    assert cleaned.proposal.artifacts["memory_old"].digest == state.updates[ids["memory"]].candidate_digest
    assert run("promote", cleaned.update_id, key="approver") == 0


def test_a_done_before_the_cleaned_memory_is_promoted_is_refused_by_the_ledger(
    tmp_path: Path, deployment
) -> None:
    boot, run, _, ids, _ = deployment
    assert (
        run(
            "erase",
            "request",
            "--pattern",
            r"dana@example\.org",
            "--out",
            str(tmp_path / "v3.jsonl"),
            key="auditor",
        )
        == 0
    )
    with Journal.open(boot.ledger, load_private_key(boot.keys["auditor"]), boot.trust) as journal:
        (erasure,) = journal.state().governance.erasures.values()
        memory = journal.state().updates[ids["memory"]]
        forged = ErasureDone(request_id=erasure.request.request_id, memory_update=ids["memory"],
                             memory_digest=memory.candidate_digest, entries_scanned=4)  # fmt: skip
        with pytest.raises(AppendRefused, match="runs no memory promoted after the erasure request"):
            journal.append(forged, erasure.request.request_id)
        # nor can a request skip the memory the deployment runs, to be "done" with nothing scanned
        skipping = ErasureRequest.of(deployment="default", matcher="subject", matcher_digest=erasure.request.matcher_digest,
                                     salt=erasure.request.salt, nonce="ab" * 8)  # fmt: skip
        with pytest.raises(AppendRefused, match=f"runs memory {ids['memory']}, not None"):
            journal.append(skipping, skipping.request_id)
        # a pipeline key may not request or finish one
        with pytest.raises(AppendRefused, match=r"with roles pipeline may not sign erasure\.done"):
            journal.as_signer(load_private_key(boot.keys["pipeline"])).append(
                forged, erasure.request.request_id
            )


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--subject", SUBJECT, "--pattern", "x"], "give exactly one of --subject or --pattern"),
        (["--pattern", "("], "--pattern is not a regular expression"),
        (["--pattern", ""], "--pattern '' matches an empty text, so it would mark every entry"),
        (["--pattern", "^$|ada"], "--pattern '^$|ada' matches an empty text"),
        (["--pattern", "x{{99999999999}}"], "--pattern is not a regular expression: the repetition number is too large"),
        (["--subject", SUBJECT, "--deployment", "nowhere"], "deployment 'nowhere' was never proposed anything; there is nothing of it to erase"),
        (["--subject", SUBJECT, "--memory", "/no/such/store.jsonl"], "cannot find the deployed memory store"),
        (["--subject", SUBJECT, "--proposer-key", "{pipeline}", "--gate-key", "{gate}", "--policy", "{policy}",
          "--parent", "{v1}"], "memory_v1.jsonl: "),
    ],
)  # fmt: skip
def test_bad_erasure_requests_exit_2_and_record_nothing(
    tmp_path: Path, deployment, capsys, args, message
) -> None:
    """Also a base the new store cannot be gated on (the request would be recorded, its store never gated)."""
    boot, run, _, _, policy = deployment
    names = {"v1": tmp_path / "memory_v1.jsonl", "policy": policy, **boot.keys}
    args = [a.format(**names) for a in args]
    capsys.readouterr()
    assert run("erase", "request", *args, "--out", str(tmp_path / "v3.jsonl"), key="auditor") == 2
    assert message in capsys.readouterr().err
    with Journal.open(boot.ledger, None, boot.trust) as journal:
        assert journal.state().governance.erasures == {}


def test_an_erasure_request_a_key_may_not_sign_writes_no_store(tmp_path: Path, deployment, capsys) -> None:
    """The cleaned store is written only by a request the ledger will record: no file without its entry."""
    boot, run, *_ = deployment
    out = tmp_path / "v3.jsonl"
    capsys.readouterr()
    assert run("erase", "request", "--subject", SUBJECT, "--out", str(out), key="pipeline") == 2
    assert "may not sign erasure.requested" in capsys.readouterr().err
    assert not out.exists()
    with Journal.open(boot.ledger, None, boot.trust) as journal:
        assert journal.state().governance.erasures == {}


@pytest.mark.parametrize(
    ("pattern", "quoted"),
    [
        ('"name": "evals",', False),
        ("evals", False),
        ('"text":', False),
        (r"Dana\b", True),
        ("metric units", True),
    ],
)
def test_evidence_quotes_what_it_records_not_its_json_or_its_name(
    tmp_path: Path, pattern: str, quoted: bool
) -> None:
    """An erasure removes the measurements that quote the subject. Matched against a file's raw JSON, a
    pattern of its syntax or its check's name (found in no memory entry or record, so the erasure was done
    at once) had an auditor key delete every audit's evidence of the deployment, "as an erasure"."""
    from clgate.audit.erasure import Matcher
    from clgate.audit.evidence import EvidenceStore

    store = EvidenceStore(tmp_path)
    digest = store.put(
        Measurement(name="evals", version="1", details=[{"text": "Dana prefers metric units."}])
    )
    matcher = Matcher.of(None, pattern)
    assert store.quotes(digest, lambda text: matcher.carries([text])) is quoted
    # a file planted under its own digest that is no measurement is read as the text it is, not a traceback
    planted = b'["Dana prefers metric units."]'
    (tmp_path / f"{hashlib.sha256(planted).hexdigest()}.json").write_bytes(planted)
    assert (
        store.quotes("sha256:" + hashlib.sha256(planted).hexdigest(), lambda t: matcher.carries([t]))
        is quoted
    )


def test_a_pattern_that_backtracks_without_end_is_stopped_not_hung(
    tmp_path: Path, deployment, capsys, monkeypatch
) -> None:
    """`(.*.*)*Z$` on the store's texts would run for longer than anyone waits: stopped, one line, nothing recorded."""
    boot, run, _, _, _ = deployment
    monkeypatch.setattr("clgate.audit.erasure.SEARCH_LIMIT_S", 0.5)
    capsys.readouterr()
    assert (
        run("erase", "request", "--pattern", "(.*.*)*Z$", "--out", str(tmp_path / "v3.jsonl"), key="auditor")
        == 2
    )
    assert (
        "--pattern '(.*.*)*Z$' ran over 0.5 s on one text (it backtracks without end)"
        in capsys.readouterr().err
    )
    with Journal.open(boot.ledger, None, boot.trust) as journal:
        assert journal.state().governance.erasures == {}


def test_a_request_counts_unreadable_data_as_carrying_it_and_admins_can_withdraw_it(
    tmp_path: Path, deployment, capsys
) -> None:
    """Training data no longer where its proposal put it counts as carrying the subject (fail closed); such a
    request could not be recorded at all (its `records`, None, was left out of the entry and then missed).
    Made in error, it is withdrawn by the admins, after which nothing it listed is held back."""
    boot, run, _, ids, _ = deployment
    (tmp_path / "data.jsonl").unlink()
    capsys.readouterr()
    assert (
        run(
            "erase",
            "request",
            "--subject",
            "nobody@example.org",
            "--out",
            str(tmp_path / "v3.jsonl"),
            key="auditor",
        )
        == 0
    )
    out = capsys.readouterr().out
    assert f"update {ids['adapter']} was trained on it (its data is no longer as proposed)" in out
    with Journal.open(boot.ledger, None, boot.trust) as journal:
        (erasure,) = journal.state().governance.erasures.values()
    rid = erasure.request.request_id
    assert (
        run("erase", "withdraw", rid, "--reason", "the data was moved, not the subject's", key="auditor") == 2
    )
    assert "may not sign erasure.withdrawn" in capsys.readouterr().err
    assert (
        run("erase", "withdraw", rid, "--reason", "the data was moved, not the subject's", key="admin") == 0
    )
    assert capsys.readouterr().out.startswith(f"erasure {rid} withdrawn at entry ")
    assert run("erase", "withdraw", rid, "--reason", "again", key="admin") == 2
    assert f"erasure request {rid} was withdrawn at entry" in capsys.readouterr().err
    assert main(["status", "--ledger", str(boot.ledger), "--trust", str(boot.trust)]) == 0
    assert "erasures open: none" in capsys.readouterr().out


def test_the_evidence_of_a_deployment_with_nothing_deployed_can_be_erased(
    tmp_path: Path, tiny_model: Path, deployment, capsys
) -> None:
    """A staging deployment whose only memory update never got promoted: its gate's memory diff quotes the
    subject, and an erasure must be able to remove it (the CLI refused deployments with nothing deployed). A
    file quoting it that another deployment recorded first is that one's evidence: kept, and named."""
    boot, run, _, _, policy = deployment
    old = write_memory_store([MemoryEntry(id="s0", text="Staging note.")], tmp_path / "staging_v1.jsonl")
    new = write_memory_store(
        [
            MemoryEntry(id="s0", text="Staging note."),
            MemoryEntry(id="s1", text=f"Dana writes from {SUBJECT}."),
        ],
        tmp_path / "staging_v2.jsonl",
    )
    assert run("gate", "--parent", str(tiny_model), "--memory-old", str(old), "--memory-new", str(new),
               "--deployment", "staging", "--policy", str(policy), "--out", str(tmp_path / "reports" / "staging"),
               "--proposer-key", str(boot.keys["pipeline"]), key="gate") == 10  # fmt: skip
    with Journal.open(boot.ledger, None, boot.trust) as journal:
        staged = list(journal.state().updates.values())[-1]
    assert not journal.state().deployed("staging")
    capsys.readouterr()
    out = tmp_path / "staging_v3.jsonl"
    assert (
        run(
            "erase",
            "request",
            "--subject",
            SUBJECT,
            "--deployment",
            "staging",
            "--out",
            str(out),
            key="auditor",
        )
        == 0
    )
    assert "memory: none deployed" in capsys.readouterr().out and not out.exists()
    with Journal.open(boot.ledger, load_private_key(boot.keys["gate"]), boot.trust) as journal:
        (request_id,) = journal.state().governance.erasures
        # the same bytes default's run recorded first (evidence is filed by content): default's to erase
        shared = journal.evidence.put(
            Measurement(name="memory", version="1", details=[{"text": f"Dana writes from {SUBJECT}."}])
        )
        for recorder in ("default", "staging"):
            run_body = ScheduledRun(verdict="promote", deployment=recorder, measurements={"memory": shared},
                                    policy=parse_policy(POLICY).ref)  # fmt: skip
            journal.append(run_body, None)
    capsys.readouterr()
    assert run("erase", "done", request_id, "--subject", SUBJECT, key="auditor") == 0
    out = capsys.readouterr().out
    assert "1 measurement(s) quoting it removed" in out
    assert f"kept measurement {shared}: it quotes it but another deployment recorded it first" in out
    with Journal.open(boot.ledger, None, boot.trust) as journal:
        (entry,) = journal.ledger.find("erasure.done")
        assert entry.body["evidence_removed"] == [staged.measurements["memory"]]
        assert journal.evidence.get(staged.measurements["memory"]) is None
        assert journal.evidence.get(shared) is not None
