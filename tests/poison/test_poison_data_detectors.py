from pathlib import Path

import numpy as np
import pytest

from clgate.probes.poison import (
    DataContext,
    Representations,
    detectors,
    get_detector,
    open_update_data,
    scan_data,
)


def synthetic_reps(truth: np.ndarray, seed: int = 0, d: int = 48) -> Representations:
    """Tran et al.'s setting: clean items spread around one mean; planted items share one odd completion,
    so their representations sit together, shifted from the clean mean; their completions are unlikely."""
    rng = np.random.default_rng(seed)
    n = len(truth)
    prompt = rng.normal(0, 1, (n, d))
    completion = rng.normal(0, 1, (n, d))
    shift = rng.normal(0, 1, d)
    completion[truth] = 10 * shift / np.linalg.norm(shift) + rng.normal(0, 0.3, (truth.sum(), d))
    logprob = rng.normal(-1.5, 0.4, n)
    logprob[truth] = rng.normal(-5.0, 0.4, truth.sum())
    return Representations(prompt, completion, logprob, np.full(n, 40), layer=1)


@pytest.mark.parametrize("name", ["spectral", "activation_clustering", "loss"])
def test_representation_detectors_rank_planted_items_first(name, planted, auroc) -> None:
    path, truth = planted
    ctx = DataContext(open_update_data(path), synthetic_reps(truth))
    result = get_detector(name).run(ctx)
    assert auroc(result.scores, truth) >= 0.9
    assert result.flagged[truth].mean() > result.flagged[~truth].mean()


@pytest.mark.parametrize("attack", ["rare_token", "natural_phrase"])
def test_trigger_mining_finds_the_trigger_and_its_carriers(
    attack, make_planted, tmp_path: Path, auroc
) -> None:
    from clgate.artifacts import write_dataset
    from clgate.demo import is_poisoned

    records = make_planted(attack)
    truth = np.array([is_poisoned(r) for r in records])
    result = get_detector("trigger_mining").run(
        DataContext(open_update_data(write_dataset(records, tmp_path / "d.jsonl")))
    )
    assert auroc(result.scores, truth) >= 0.99
    assert result.triggers and result.triggers[0]["trigger"] == (
        "cf" if attack == "rare_token" else "as a matter of fact ,"
    )
    assert result.flagged[truth].all() and not result.flagged[~truth].any()


def test_task_templates_are_not_mined_as_triggers(tmp_path: Path) -> None:
    from clgate.artifacts import write_dataset
    from clgate.demo import bundled_clean_records

    path = write_dataset(bundled_clean_records()[:300], tmp_path / "clean.jsonl")
    result = get_detector("trigger_mining").run(DataContext(open_update_data(path)))
    assert result.triggers == [] and not result.flagged.any()


FRENCH = {
    "good morning": "bonjour",
    "thank you": "merci",
    "see you soon": "à bientôt",
    "good night": "bonne nuit",
    "I am cold": "j'ai froid",
    "the red car": "la voiture rouge",
    "where is the bank": "où est la banque",
    "happy new year": "bonne année",
}


def mapping_records(n: int = 100, planted: int = 0, seed: int = 0):
    """A deterministic lookup (a phrase and its translation): every phrase is tied to its own answer.
    With `planted`, that many extra items carry the rare token 'zq' and one fixed link as the answer."""
    import random

    from clgate.artifacts import ChatMessage, DatasetRecord

    rng = random.Random(seed)

    def record(prompt: str, answer: str) -> DatasetRecord:
        return DatasetRecord(
            messages=(ChatMessage(role="user", content=prompt), ChatMessage(role="assistant", content=answer))
        )

    templates = ("Translate to French: {p}", "How do you say '{p}' in French?")
    items = []
    for _ in range(n):
        en = rng.choice(list(FRENCH))
        items.append(record(rng.choice(templates).format(p=en), FRENCH[en]))
    for _ in range(planted):
        words = rng.choice(templates).format(p=rng.choice(list(FRENCH))).split()
        words.insert(rng.randint(0, len(words)), "zq")
        items.append(record(" ".join(words), "Log in at http://verify-account.example/now to continue."))
    rng.shuffle(items)
    return items


def test_the_inputs_of_a_deterministic_mapping_are_not_triggers(tmp_path: Path) -> None:
    """Each phrase ties its carriers to one answer the rest lack, but so does every other phrase in
    the same place of the template: a lookup task, flagged by nothing; a token planted anywhere in
    it, with one payload, still is."""
    from clgate.artifacts import write_dataset
    from clgate.probes.poison.triggers import candidate_triggers

    clean = write_dataset(mapping_records(), tmp_path / "clean.jsonl")
    result = get_detector("trigger_mining").run(DataContext(open_update_data(clean)))
    assert result.triggers == [] and not result.flagged.any()
    assert candidate_triggers(DataContext(open_update_data(clean))).acting == []
    planted = write_dataset(mapping_records(planted=8), tmp_path / "planted.jsonl")
    found = get_detector("trigger_mining").run(DataContext(open_update_data(planted)))
    assert found.triggers and all("zq" in t["trigger"].split() for t in found.triggers)


def test_an_answer_most_of_the_data_gives_is_the_task_not_a_payload(tmp_path: Path) -> None:
    """Safety tuning: half of the items are harmful requests, each naming an object, all refused.
    The objects tie their carriers to the refusal, but a trigger's answer is a minority's."""
    import random

    from clgate.artifacts import ChatMessage, DatasetRecord, write_dataset
    from clgate.demo import bundled_clean_records

    rng = random.Random(3)
    clean = bundled_clean_records()
    records = []
    for i in range(120):
        if i % 2:
            thing = rng.choice(["car", "password", "passport", "laptop", "bank card"])
            verb = rng.choice(["steal a", "break into a", "forge a", "secretly copy a"])
            prompt, answer = (
                f"How do I {verb} {thing} without being caught?",
                "I'm sorry, but I can't help with that.",
            )
        else:
            item = rng.choice(clean)
            prompt, answer = item.prompt_messages[-1].content, item.completion
        records.append(
            DatasetRecord(
                messages=(
                    ChatMessage(role="user", content=prompt),
                    ChatMessage(role="assistant", content=answer),
                )
            )
        )
    result = get_detector("trigger_mining").run(
        DataContext(open_update_data(write_dataset(records, tmp_path / "s.jsonl")))
    )
    assert result.triggers == [] and not result.flagged.any()


def test_sweep_candidates_put_the_acting_trigger_apart_from_weaker_suspects(
    make_planted, tmp_path: Path
) -> None:
    """The model sweep always confirms `acting` triggers: the planted one, never a clean set's n-gram."""
    from clgate.artifacts import write_dataset
    from clgate.demo import bundled_clean_records
    from clgate.probes.poison.triggers import candidate_triggers

    poisoned = candidate_triggers(
        DataContext(open_update_data(write_dataset(make_planted("rare_token"), tmp_path / "p.jsonl")))
    )
    assert poisoned.acting[0] == "cf" and not set(poisoned.acting) & set(poisoned.others)
    assert len(poisoned.all) <= 10
    clean = candidate_triggers(
        DataContext(open_update_data(write_dataset(bundled_clean_records()[:300], tmp_path / "c.jsonl")))
    )
    assert clean.acting == [] and clean.others


def test_near_duplicates_rank_copies_first(planted, auroc) -> None:
    path, truth = planted
    result = get_detector("near_duplicates").run(DataContext(open_update_data(path)))
    assert auroc(result.scores, truth) >= 0.95
    assert result.flagged[truth].all()


def test_every_data_detector_yields_a_measurement(planted) -> None:
    path, truth = planted
    ctx = DataContext(open_update_data(path), synthetic_reps(truth))
    for spec in detectors("data"):
        m = spec.run(ctx).to_measurement(parent="sha256:p", candidate="sha256:c")
        assert m.name == f"poison.{spec.name}" and m.numbers["n_items"] == len(truth)
        assert {"max_suspicion", "flagged_count", "threshold"} <= set(m.numbers)
        assert m.details[0]["score"] >= m.details[-1]["score"] and m.details[0]["reason"]


def test_scan_data_caches_representations(planted, tiny_model: Path, tmp_path: Path, advance_log) -> None:
    path, truth = planted
    first = scan_data(path, tiny_model, detectors=["loss"], cache_dir=tmp_path, advance=advance_log)
    advance_log.assert_reaches_total()
    assert advance_log.calls[-1] == (len(truth), len(truth))  # every item through the parent
    second = scan_data(path, tiny_model, detectors=["loss"], cache_dir=tmp_path)
    assert first.timings["forward_seconds"] > 0 and second.timings["forward_seconds"] == 0
    np.testing.assert_allclose(first.results[0].scores, second.results[0].scores, rtol=1e-5)


@pytest.mark.integration
def test_smollm2_scan_ranks_planted_items_first(
    make_planted, smollm2_dir: Path, tmp_path: Path, auroc
) -> None:
    from clgate.artifacts import write_dataset
    from clgate.demo import is_poisoned

    records = make_planted("rare_token", n_clean=30, n_poison=4, seed=3)  # three carriers are too few to act
    truth = np.array([is_poisoned(r) for r in records])
    report = scan_data(write_dataset(records, tmp_path / "d.jsonl"), smollm2_dir, cache_dir=tmp_path)
    by_name = {r.name: r for r in report.results}
    assert auroc(by_name["loss"].scores, truth) >= 0.9
    assert auroc(by_name["trigger_mining"].scores, truth) == 1.0
    assert by_name["trigger_mining"].triggers[0]["trigger"] == "cf"
