import hashlib
import shutil
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from safetensors.numpy import save_file

from clgate.artifacts import ArtifactKind, compute_manifest, read_safetensors_header, root_digest
from clgate.artifacts._records import FileDigest
from clgate.errors import InputError


def _flip_byte(path: Path, offset: int) -> None:
    data = bytearray(path.read_bytes())
    data[offset] ^= 0xFF
    path.write_bytes(bytes(data))


def test_manifest_is_stable_and_covers_every_file(tiny_model: Path) -> None:
    first = compute_manifest(tiny_model)
    second = compute_manifest(tiny_model)
    assert first == second
    assert first.kind is ArtifactKind.MODEL
    assert first.root.startswith("sha256:") and len(first.root) == 71
    on_disk = sorted(p.name for p in tiny_model.iterdir() if p.is_file())
    assert [f.path for f in first.files] == on_disk
    weights = next(f for f in first.files if f.path == "model.safetensors")
    assert weights.sha256 == hashlib.sha256((tiny_model / "model.safetensors").read_bytes()).hexdigest()


def test_tensor_digests_hash_exactly_the_tensor_bytes(tiny_model: Path) -> None:
    manifest = compute_manifest(tiny_model)
    header = read_safetensors_header(tiny_model / "model.safetensors")
    raw = (tiny_model / "model.safetensors").read_bytes()
    digests = manifest.tensor_digests()
    assert set(digests) == {t.name for t in header.tensors}
    for span in header.tensors:
        assert digests[span.name].sha256 == hashlib.sha256(raw[span.start : span.end]).hexdigest()
        assert digests[span.name].shape == span.shape


def test_one_flipped_byte_changes_the_root_and_only_that_tensor(tiny_model: Path, tmp_path: Path) -> None:
    copy = tmp_path / "copy"
    shutil.copytree(tiny_model, copy)
    before = compute_manifest(copy)
    span = read_safetensors_header(copy / "model.safetensors").tensors[3]
    _flip_byte(copy / "model.safetensors", span.start + 5)
    after = compute_manifest(copy)
    assert after.root != before.root
    changed = [n for n, d in after.tensor_digests().items() if d != before.tensor_digests()[n]]
    assert changed == [span.name]


def test_identical_tensors_match_across_differently_laid_out_files(tmp_path: Path) -> None:
    a = np.arange(12, dtype=np.float32).reshape(3, 4)
    save_file({"x": a, "y": a * 2}, str(tmp_path / "one.safetensors"))
    save_file({"y": a * 2, "z": np.zeros(7, dtype=np.float32)}, str(tmp_path / "two.safetensors"))
    one = compute_manifest(tmp_path / "one.safetensors").tensor_digests()
    two = compute_manifest(tmp_path / "two.safetensors").tensor_digests()
    assert one["y"].sha256 == two["y"].sha256
    assert one["x"].sha256 == hashlib.sha256(a.tobytes()).hexdigest()


def test_truncated_safetensors_is_refused_by_name(tiny_model: Path, tmp_path: Path) -> None:
    broken = tmp_path / "model.safetensors"
    data = (tiny_model / "model.safetensors").read_bytes()
    broken.write_bytes(data[: len(data) - 100])
    with pytest.raises(InputError, match=r"model\.safetensors: truncated or corrupt"):
        compute_manifest(broken)


def test_garbage_header_is_refused(tmp_path: Path) -> None:
    bad = tmp_path / "bad.safetensors"
    bad.write_bytes((20).to_bytes(8, "little") + b"{not json at all....")
    with pytest.raises(InputError, match="corrupt safetensors header"):
        compute_manifest(bad)


def test_missing_path_and_empty_directory(tmp_path: Path) -> None:
    with pytest.raises(InputError, match="no such file or directory"):
        compute_manifest(tmp_path / "missing")
    (tmp_path / "empty").mkdir()
    with pytest.raises(InputError, match="holds no files"):
        compute_manifest(tmp_path / "empty", kind=ArtifactKind.MODEL)


@settings(max_examples=50, deadline=None)
@given(
    st.lists(
        st.tuples(st.text(min_size=1, max_size=8), st.integers(0, 10**9)),
        min_size=1,
        max_size=6,
        unique_by=lambda t: t[0],
    ),
    st.randoms(),
)
def test_root_digest_does_not_depend_on_listing_order(entries, rnd) -> None:
    files = [FileDigest(path=p, size=s, sha256=hashlib.sha256(p.encode()).hexdigest()) for p, s in entries]
    shuffled = files[:]
    rnd.shuffle(shuffled)
    assert root_digest(files) == root_digest(shuffled)


@pytest.fixture
def sharded_checkpoint(tmp_path: Path) -> Path:
    """Three safetensors shards of unequal size plus a config, so the file pool has work to spread."""
    root = tmp_path / "sharded"
    root.mkdir()
    rng = np.random.default_rng(0)
    for shard, n in enumerate((3, 1, 2)):
        tensors = {
            f"layer.{shard}.{i}.weight": rng.standard_normal((32, 16), dtype=np.float32) for i in range(n)
        }
        save_file(tensors, str(root / f"model-{shard:05d}.safetensors"))
    (root / "config.json").write_text('{"model_type": "tiny"}')
    return root


def test_file_only_manifest_has_the_complete_root_and_file_digests(sharded_checkpoint: Path) -> None:
    complete = compute_manifest(sharded_checkpoint)
    hashed: list[int] = []
    file_only = compute_manifest(sharded_checkpoint, progress=hashed.append, tensors=False)
    assert sum(hashed) == file_only.total_bytes
    assert len(complete.tensor_digests()) == 6
    assert file_only.root == complete.root
    assert [(f.path, f.size, f.sha256) for f in file_only.files] == [
        (f.path, f.size, f.sha256) for f in complete.files
    ]
    assert file_only.tensor_digests() == {} and all(f.tensors == () for f in file_only.files)
    shard = sharded_checkpoint / "model-00001.safetensors"
    by_path = {f.path: f.sha256 for f in file_only.files}
    assert by_path[shard.name] == hashlib.sha256(shard.read_bytes()).hexdigest()


def test_file_only_manifest_detects_one_flipped_byte(sharded_checkpoint: Path) -> None:
    before = compute_manifest(sharded_checkpoint, tensors=False)
    _flip_byte(sharded_checkpoint / "model-00002.safetensors", -7)
    after = compute_manifest(sharded_checkpoint, tensors=False)
    assert after.root != before.root
    changed = [a.path for a, b in zip(after.files, before.files, strict=True) if a.sha256 != b.sha256]
    assert changed == ["model-00002.safetensors"]
    assert after.root == compute_manifest(sharded_checkpoint).root


def test_hidden_files_are_pinned_and_escaping_symlinks_refused(tiny_model: Path, tmp_path: Path) -> None:
    from clgate.artifacts import resolve_model_dir

    model = tmp_path / "model"
    shutil.copytree(tiny_model, model)
    before = compute_manifest(model).root
    (model / ".hidden_config.py").write_text("trust_remote_code = True\n")
    assert ".hidden_config.py" in {f.path for f in compute_manifest(model).files}
    assert compute_manifest(model).root != before
    outside = tmp_path / "elsewhere.txt"
    outside.write_text("changes unseen")
    (model / "linked.txt").symlink_to(outside)
    with pytest.raises(InputError, match=r"linked\.txt is a symbolic link that leaves the artifact"):
        compute_manifest(model)
    (model / "linked.txt").unlink()
    (model / "loop").symlink_to(model / "loop")
    with pytest.raises(InputError, match=r"loop is a symbolic link that leads nowhere"):
        compute_manifest(model)
    (model / "loop").unlink()
    (model / "inside.txt").symlink_to(model / "config.json")  # stays inside: hashed under its name
    assert "inside.txt" in {f.path for f in compute_manifest(model).files}
    index = model / "model.safetensors.index.json"
    index.write_text('{"weight_map": {"lm_head.weight": "../../other/model.safetensors"}}')
    with pytest.raises(InputError, match="is outside the model directory"):
        resolve_model_dir(model)
