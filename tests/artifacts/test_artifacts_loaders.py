import json
import shutil
import sqlite3
from pathlib import Path

import numpy as np
import pytest
from gguf import GGUFWriter

from clgate.artifacts import (
    ArtifactKind,
    MemoryEntry,
    detect_kind,
    gguf_architecture,
    iter_dataset,
    load_dataset,
    load_lora_adapter,
    load_memory_store,
    resolve_model_dir,
    write_memory_store,
)
from clgate.artifacts._gguf import dequantised_dir
from clgate.demo import factories
from clgate.errors import InputError


def test_directory_that_is_not_a_model(tmp_path: Path) -> None:
    (tmp_path / "notes.txt").write_text("hello")
    with pytest.raises(InputError, match=r"no config\.json"):
        resolve_model_dir(tmp_path)
    (tmp_path / "config.json").write_text("{}")
    with pytest.raises(InputError, match=r"no \.safetensors weights"):
        resolve_model_dir(tmp_path)
    with pytest.raises(InputError, match="no such model"):
        resolve_model_dir(tmp_path / "missing")


def _write_gguf(path: Path, arch: str) -> Path:
    writer = GGUFWriter(str(path), arch)
    writer.add_tensor("token_embd.weight", np.zeros((4, 4), dtype=np.float32))
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()
    return path


def test_gguf_of_unknown_architecture_is_refused(tmp_path: Path) -> None:
    path = _write_gguf(tmp_path / "odd.gguf", "mamba-xl")
    assert gguf_architecture(path) == "mamba-xl"
    with pytest.raises(InputError, match="architecture 'mamba-xl' is not supported"):
        dequantised_dir(path, tmp_path / "cache")


def test_file_that_is_not_gguf(tmp_path: Path) -> None:
    fake = tmp_path / "fake.gguf"
    fake.write_bytes(b"PK\x03\x04 definitely a zip")
    with pytest.raises(InputError, match="not a GGUF file"):
        resolve_model_dir(fake, tmp_path / "cache")


@pytest.mark.parametrize("suffix", [".jsonl", ".sqlite"])
def test_memory_store_round_trips(tmp_path: Path, suffix: str) -> None:
    entries = factories.make_memory_entries(4)
    entries.append(MemoryEntry(id="e", text="embedded", source=None, embedding=(0.5, -0.25)))
    path = write_memory_store(entries, tmp_path / f"store{suffix}")
    store = load_memory_store(path)
    assert list(store.entries) == entries
    assert detect_kind(path) is ArtifactKind.MEMORY


def test_memory_store_duplicate_ids_and_broken_lines(tmp_path: Path) -> None:
    dup = tmp_path / "dup.jsonl"
    dup.write_text('{"id": "a", "text": "x"}\n{"id": "b", "text": "y"}\n{"id": "a", "text": "z"}\n')
    with pytest.raises(
        InputError, match=r"dup\.jsonl:3: duplicate memory id 'a' \(first at .*dup\.jsonl:1\)"
    ):
        load_memory_store(dup)
    broken = tmp_path / "broken.jsonl"
    broken.write_text('{"id": "a", "text": "x"}\n{"id": "b", "text": \n')
    with pytest.raises(InputError, match=r"broken\.jsonl:2: not valid JSON"):
        load_memory_store(broken)
    missing = tmp_path / "missing_text.jsonl"
    missing.write_text('{"id": "a"}\n')
    with pytest.raises(InputError, match=r"missing_text\.jsonl:1: memory entry field 'text'"):
        load_memory_store(missing)


def test_sqlite_file_that_is_not_a_memory_store(tmp_path: Path) -> None:
    path = tmp_path / "other.sqlite"
    con = sqlite3.connect(path)
    con.execute("CREATE TABLE things (x)")
    con.commit()
    con.close()
    with pytest.raises(InputError, match="not a memory store"):
        load_memory_store(path)


@pytest.mark.parametrize(
    ("metadata", "embedding", "message"),
    [
        (5, None, r"row 1: metadata: expected JSON text, got int"),
        (None, 2.5, r"row 1: embedding: expected JSON text, got float"),
        ('{"n": ' + "1" * 5000 + "}", None, r"row 1: metadata: not valid JSON"),
        ("[" * 100_000, None, r"row 1: metadata: not valid JSON"),
    ],
)
def test_sqlite_columns_of_the_wrong_type_are_bad_input(tmp_path: Path, metadata, embedding, message) -> None:
    """A store whose columns have no declared types holds whatever was written: each is bad input."""
    path = tmp_path / "store.sqlite"
    con = sqlite3.connect(path)
    con.execute("CREATE TABLE memory (id, text, metadata, source, created_at, embedding)")
    con.execute("INSERT INTO memory VALUES ('a', 'x', ?, NULL, NULL, ?)", (metadata, embedding))
    con.commit()
    con.close()
    with pytest.raises(InputError, match=message):
        load_memory_store(path)


def test_naive_and_utc_times_in_one_store_compare(tmp_path: Path) -> None:
    """A time without a zone is read as UTC: a diff of stores mixing both compares them, and sees the
    expiry moved later."""
    from clgate.probes.memory import memory_diff

    old = tmp_path / "old.jsonl"
    old.write_text('{"id": "a", "text": "x", "source": "user:1", "expires_at": "2030-01-01T00:00:00"}\n')
    new = tmp_path / "new.jsonl"
    new.write_text(
        '{"id": "a", "text": "x", "source": "user:1", "expires_at": "2031-01-01T00:00:00+00:00"}\n'
    )
    (row,) = memory_diff(old, new).details
    assert row["expiry_extended"] is True and row["expires_at"] == "2031-01-01T00:00:00+00:00"


def test_dataset_formats_normalise_to_messages(tmp_path: Path) -> None:
    path = tmp_path / "mixed.jsonl"
    lines = [
        {"messages": [{"role": "user", "content": "hi"}, {"role": "assistant", "content": "hello"}]},
        {"instruction": "Add", "input": "2 and 3", "output": "5"},
        {"prompt": "Capital of France?", "completion": "Paris"},
    ]
    path.write_text("".join(json.dumps(x) + "\n" for x in lines) + "\n")
    records = load_dataset(path)
    assert [r.completion for r in records] == ["hello", "5", "Paris"]
    assert records[1].prompt_messages[0].content == "Add\n\n2 and 3"
    assert detect_kind(path) is ArtifactKind.DATASET


def test_dataset_bad_lines_name_file_and_line(tmp_path: Path) -> None:
    path = tmp_path / "bad.jsonl"
    path.write_text('{"prompt": "a", "completion": "b"}\n[1, 2]\n')
    with pytest.raises(InputError, match=r"bad\.jsonl:2: expected a JSON object"):
        load_dataset(path)
    path.write_text('{"question": "a"}\n')
    with pytest.raises(InputError, match=r"bad\.jsonl:1: missing field"):
        load_dataset(path)
    path.write_text('{"messages": [{"role": "wizard", "content": "x"}]}\n')
    with pytest.raises(InputError, match=r"bad\.jsonl:1: field 'messages.0.role'"):
        load_dataset(path)
    path.write_text("")
    with pytest.raises(InputError, match="dataset is empty"):
        load_dataset(path)


def test_dataset_streams_and_refuses_huge_lines(tmp_path: Path) -> None:
    path = factories.make_dataset(tmp_path / "d.jsonl", n=1000)
    stream = iter_dataset(path)
    assert next(stream).completion == "0 plus 0 is 0."
    huge = tmp_path / "huge.jsonl"
    huge.write_text(json.dumps({"prompt": "x" * (2 << 20), "completion": "y"}) + "\n")
    with pytest.raises(InputError, match=r"huge\.jsonl:1: line longer than"):
        load_dataset(huge)


def test_adapter_fit_is_checked_from_headers_alone(tiny_model: Path, tiny_lora: Path, tmp_path: Path) -> None:
    from clgate.artifacts import check_adapter_fits

    check_adapter_fits(tiny_lora, tiny_model)
    wider = factories.make_tiny_model(tmp_path / "wider", hidden_size=96)
    with pytest.raises(InputError, match=r"does not fit base .*self_attn\.q_proj' expects weight \(64, 64\)"):
        check_adapter_fits(tiny_lora, wider)


@pytest.mark.parametrize(
    ("line", "message"),
    [
        ('{"id": "m1", "text": "\\ud800"}', "a string holds a lone surrogate"),
        ('{"id": "m1", "text": "x", "n": ' + "1" * 5000 + "}", "not valid JSON"),
        ('{"a": ' * 5000 + "1" + "}" * 5000, "not valid JSON"),
    ],
)
def test_a_line_json_allows_but_text_cannot_hold_is_bad_input(
    tmp_path: Path, line: str, message: str
) -> None:
    """A lone surrogate decodes and then breaks every hash and embedding of the text; huge numbers and deep
    nesting break the parser itself: each is the file's line, in one sentence."""
    path = tmp_path / "store.jsonl"
    path.write_text('{"id": "m0", "text": "a smile \\ud83d\\ude00 is a surrogate pair"}\n' + line + "\n")
    with pytest.raises(InputError, match=f"store.jsonl:2: {message}"):
        load_memory_store(path)


@pytest.mark.parametrize(
    ("config", "message"),
    [
        ({"r": 0}, "r is 0, not a positive number"),
        ({"lora_alpha": "16"}, "lora_alpha is '16', not a positive number"),
        ({"alpha_pattern": {"q_proj": float("nan")}}, "alpha_pattern\\['q_proj'\\] is nan"),
        ([1, 2], "expected a JSON object, got list"),
    ],
)
def test_an_adapter_config_without_a_scale_is_bad_input(
    tiny_lora: Path, tmp_path: Path, config, message: str
) -> None:
    adapter = Path(shutil.copytree(tiny_lora, tmp_path / "lora"))
    base = json.loads((adapter / "adapter_config.json").read_text())
    (adapter / "adapter_config.json").write_text(
        json.dumps({**base, **config} if isinstance(config, dict) else config)
    )
    with pytest.raises(InputError, match=message):
        load_lora_adapter(adapter)


@pytest.mark.parametrize(
    ("raw", "message"),
    [(b'{"r": 8, "note": "caf\xe9"}', "not valid JSON"), (b"[" * 100_000, "not valid JSON"), (b"{", "not valid JSON")],
)  # fmt: skip
def test_an_adapter_config_that_is_not_json_text_is_bad_input(
    tiny_lora: Path, tmp_path: Path, raw: bytes, message: str
) -> None:
    """Latin-1 bytes and nesting too deep to parse were a UnicodeDecodeError and a RecursionError."""
    adapter = Path(shutil.copytree(tiny_lora, tmp_path / "lora"))
    (adapter / "adapter_config.json").write_bytes(raw)
    with pytest.raises(InputError, match=f"adapter_config.json: {message}"):
        load_lora_adapter(adapter)
