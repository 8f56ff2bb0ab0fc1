"""Personal data found in update data and memory, per kind, with checksums holding; values leave the
scan only masked; names and places only through an NER pipeline; no network touched."""

from __future__ import annotations

import socket
from pathlib import Path

import pytest

from clgate.artifacts import DatasetRecord, MemoryEntry, write_dataset, write_memory_store
from clgate.audit.cli import main
from clgate.errors import InputError
from clgate.probes.privacy import PiiScanner, TextItem, privacy_scan

PLANTED = {
    "emails": "jane.doe@example.com",
    "phone_numbers": "+1 415-862-0371",
    "card_numbers": "4111 1111 1111 1111",
    "ibans": "DE89 3704 0044 0532 0130 00",
    "national_ids": "AB123456C",
    "ip_addresses": "203.0.113.42",
}
LOOK_ALIKES = [
    "What is 12345 * 6789?",
    "The card 4111 1111 1111 1112 fails its Luhn check.",  # one digit off a valid card
    "IBAN DE89 3704 0044 0532 0130 01 has a wrong check.",  # mod-97 does not hold
    "Version 3.14.159 shipped in 2024.",
]


def _record(user: str, assistant: str) -> DatasetRecord:
    return DatasetRecord.model_validate(
        {"messages": [{"role": "user", "content": user}, {"role": "assistant", "content": assistant}]}
    )


@pytest.fixture(scope="module")
def scanner() -> PiiScanner:
    return PiiScanner()


def test_each_kind_is_found_once_and_look_alikes_are_not(tmp_path: Path, scanner: PiiScanner) -> None:
    records = [
        _record(f"Please keep my {kind.replace('_', ' ')[:-1]}.", f"Saved: {value}.")
        for kind, value in PLANTED.items()
    ]
    records += [_record(text, "Noted.") for text in LOOK_ALIKES]
    data = write_dataset(records, tmp_path / "data.jsonl")
    measured = privacy_scan(data, scanner=scanner)
    for kind in PLANTED:
        assert measured.numbers[kind] == measured.numbers[f"data.{kind}"] == 1, kind
    assert measured.numbers["items_with_personal_data"] == len(PLANTED)
    assert measured.numbers["items_scanned"] == 2 * len(records)
    card = next(row for row in measured.details if row["kind"] == "card_numbers")
    assert (card["item"], card["field"], card["masked"]) == (
        "record 3",
        "messages[1].assistant",
        "4****************11",
    )
    assert "record 3 (4****************11)" in measured.explain["card_numbers"]
    written = measured.to_json()
    assert not [v for v in PLANTED.values() if v in written]  # masked everywhere, explanations included


def test_memory_counts_what_the_update_added_or_edited(tmp_path: Path, scanner: PiiScanner) -> None:
    old = [
        MemoryEntry(id="m1", text="Dana's phone is +1 415-862-0371."),
        MemoryEntry(id="m2", text="Dana likes tea."),
    ]
    new = [
        old[0],  # unchanged: counted in the store, not against this update
        MemoryEntry(id="m2", text="Dana likes tea; her card is 4111 1111 1111 1111."),
        MemoryEntry(id="m3", text="Write to dana@example.org."),
    ]
    measured = privacy_scan(
        memory_new=write_memory_store(new, tmp_path / "new.jsonl"),
        memory_old=write_memory_store(old, tmp_path / "old.jsonl"),
        scanner=scanner,
    )
    assert (measured.numbers["memory.card_numbers"], measured.numbers["memory.emails"]) == (1, 1)
    assert measured.numbers["memory.phone_numbers"] == 0
    assert measured.numbers["store.items_with_personal_data"] == 3
    assert {row["item"] for row in measured.details} == {"m2", "m3"}


def test_names_and_places_come_from_an_installed_ner_pipeline(tmp_path: Path, scanner: PiiScanner) -> None:
    import spacy

    nlp = spacy.blank("en")
    nlp.add_pipe("entity_ruler").add_patterns(
        [
            {"label": "PERSON", "pattern": [{"LOWER": "dana"}, {"LOWER": "kowalski"}]},
            {"label": "GPE", "pattern": "Lisbon"},
        ]
    )
    nlp.to_disk(tmp_path / "ner")
    text = [TextItem("m1", "text", "Dana Kowalski moved to Lisbon in May.")]
    found = PiiScanner(str(tmp_path / "ner")).scan(text)
    assert sorted((s.kind, s.value) for s in found) == [("locations", "Lisbon"), ("names", "Dana Kowalski")]
    assert scanner.scan(text) == [] and "names" not in scanner.kinds  # not searched: absent, never 0
    with pytest.raises(InputError, match="no spaCy pipeline 'en_core_web_nope' is installed"):
        PiiScanner("en_core_web_nope")


def test_the_scan_never_reaches_the_network(monkeypatch: pytest.MonkeyPatch) -> None:
    """Presidio's e-mail check downloads the public suffix list; clgate's uses the one tldextract ships."""
    looked_up: list[str] = []

    def refuse(host: str, *args: object, **kwargs: object) -> list:
        looked_up.append(host)
        raise OSError("no network in this test")

    monkeypatch.setattr(socket, "getaddrinfo", refuse)
    found = PiiScanner().scan([TextItem("r", "t", "mail jane.doe@example.co.uk or bob@example.com")])
    assert [s.value for s in found] == ["jane.doe@example.co.uk", "bob@example.com"]
    assert looked_up == []


def test_cli_exits_1_on_personal_data_0_on_none_2_on_bad_input(tmp_path: Path, capsys) -> None:
    dirty = write_dataset([_record("Card?", f"It is {PLANTED['card_numbers']}.")], tmp_path / "dirty.jsonl")
    clean = write_dataset([_record("Hi", "Hello.")], tmp_path / "clean.jsonl")
    assert main(["scan", "privacy", "--data", str(dirty), "--out", str(tmp_path / "m.json")]) == 1
    out = capsys.readouterr().out
    assert "record 1 messages[1].assistant: card_numbers 4****************11" in out
    assert PLANTED["card_numbers"] not in out + (tmp_path / "m.json").read_text()
    assert main(["scan", "privacy", "--data", str(clean)]) == 0
    assert main(["scan", "privacy", "--data", str(tmp_path / "missing.jsonl")]) == 2
    assert main(["scan", "privacy"]) == 2
    assert "give --data, --memory or both" in capsys.readouterr().err
    for threshold in ("nan", "2", "0"):  # no score reaches it: the dirty file would pass as clean
        assert main(["scan", "privacy", "--data", str(dirty), "--threshold", threshold]) == 2
        assert "is not a score in (0, 1]" in capsys.readouterr().err
