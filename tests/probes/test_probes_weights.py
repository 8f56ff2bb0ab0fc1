from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from safetensors.torch import load_file

from clgate.artifacts import TensorSpan, compute_manifest, load_lora_adapter
from clgate.audit.cli import main
from clgate.demo import factories
from clgate.errors import InputError
from clgate.probes import _spectrum, layer_index, lora_diff, module_type, weight_diff
from clgate.probes.weights import _checkpoint, _rows
from clgate.runtime import merge_adapter

from .conftest import edited_copy

Q0 = "model.layers.0.self_attn.q_proj.weight"
DOWN1 = "model.layers.1.mlp.down_proj.weight"
NORM0 = "model.layers.0.input_layernorm.weight"


@pytest.mark.parametrize(
    ("name", "kind", "layer"),
    [
        ("model.embed_tokens.weight", "embeddings", None),
        ("model.layers.3.self_attn.q_proj.weight", "attn_q", 3),
        ("model.layers.3.self_attn.k_proj.bias", "attn_k", 3),
        ("model.layers.3.self_attn.v_proj.weight", "attn_v", 3),
        ("model.layers.12.self_attn.o_proj.weight", "attn_o", 12),
        ("model.layers.0.mlp.gate_proj.weight", "mlp_gate", 0),
        ("model.layers.0.mlp.up_proj.weight", "mlp_up", 0),
        ("model.layers.0.mlp.down_proj.weight", "mlp_down", 0),
        ("model.layers.0.post_attention_layernorm.weight", "norm", 0),
        ("model.layers.0.self_attn.q_norm.weight", "norm", 0),
        ("model.norm.weight", "norm", None),
        ("lm_head.weight", "lm_head", None),
        ("transformer.h.5.attn.c_attn.weight", "attn_qkv", 5),
        ("transformer.h.5.attn.c_proj.weight", "attn_o", 5),
        ("transformer.h.5.mlp.c_fc.weight", "mlp_up", 5),
        ("transformer.h.5.mlp.c_proj.weight", "mlp_down", 5),
        ("transformer.h.5.ln_1.weight", "norm", 5),
        ("transformer.ln_f.bias", "norm", None),
        ("transformer.wte.weight", "embeddings", None),
        ("model.layers.2.mlp.experts.7.gate_proj.weight", "mlp_gate", 2),
        ("rotary.inv_freq", "other", None),
    ],
)
def test_tensor_names_map_to_module_types_and_layers(name: str, kind: str, layer: int | None) -> None:
    assert module_type(name) == kind
    assert layer_index(name) == layer


def _scaled(names: dict[str, float]):
    def edit(tensors: dict[str, torch.Tensor]) -> None:
        for name, factor in names.items():
            tensors[name] = tensors[name] * factor

    return edit


def test_identical_checkpoints_change_nothing_and_read_nothing(
    tiny_model: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    copy = edited_copy(tiny_model, tmp_path / "copy", lambda t: None)
    monkeypatch.setattr(_checkpoint.TensorReader, "read", lambda *a: pytest.fail("read an unchanged tensor"))
    m = weight_diff(tiny_model, copy)
    assert m.numbers["weights.tensors_changed"] == 0 and m.details == []
    assert m.numbers["weights.max_relative_change"] == 0.0 and m.meta["changed_modules"] == []
    assert m.parent == compute_manifest(tiny_model).root and m.candidate == compute_manifest(copy).root


def test_only_changed_tensors_are_read_and_reported(
    tiny_model: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    cand = edited_copy(tiny_model, tmp_path / "cand", _scaled({Q0: 1.1, NORM0: 0.5}))
    read: list[str] = []
    original = _checkpoint.TensorReader.read
    monkeypatch.setattr(
        _checkpoint.TensorReader,
        "read",
        lambda self, f, name: read.append(name) or original(self, f, name),
    )
    m = weight_diff(tiny_model, cand)
    assert sorted(set(read)) == sorted([Q0, NORM0]) and len(read) == 4
    assert m.meta["changed_modules"] == ["model.layers.0.input_layernorm", "model.layers.0.self_attn.q_proj"]
    rows = {r["tensor"]: r for r in m.details}
    q = rows[Q0]
    assert q["relative_change"] == pytest.approx(0.1, rel=1e-5)
    assert q["cosine"] == pytest.approx(1.0, abs=1e-9)
    w = load_file(str(tiny_model / "model.safetensors"))[Q0].double()
    assert q["effective_rank"] == pytest.approx(
        _spectrum.effective_rank(torch.linalg.svdvals(0.1 * w)), rel=1e-4
    )
    assert rows[NORM0]["top_singular_values"] is None and rows[NORM0]["relative_change"] == pytest.approx(0.5)
    assert m.numbers["weights.max_relative_change.norm"] == pytest.approx(0.5)
    assert m.numbers["weights.max_relative_change.attn_q"] == pytest.approx(0.1, rel=1e-5)
    assert m.numbers["weights.max_relative_change.mlp_down"] == 0.0
    layer0 = next(r for r in m.meta["per_layer"] if r["layer"] == 0)
    assert layer0["tensors_changed"] == 2 and layer0["tensors"] == 9
    assert next(r for r in m.meta["per_layer"] if r["layer"] == 1)["tensors_changed"] == 0


def test_dense_numbers_match_a_direct_computation(
    tiny_model: Path, tiny_model_other: Path, advance_log
) -> None:
    m = weight_diff(tiny_model, tiny_model_other, top_k=4, advance=advance_log)
    advance_log.assert_reaches_total()
    assert advance_log.calls[-1] == (16, 16)  # one step per changed tensor
    row = next(r for r in m.details if r["tensor"] == DOWN1)
    w = load_file(str(tiny_model / "model.safetensors"))[DOWN1].double()
    w2 = load_file(str(tiny_model_other / "model.safetensors"))[DOWN1].double()
    d = w2 - w
    s = torch.linalg.svdvals(d)
    assert row["delta_norm"] == pytest.approx(float(d.norm()), rel=1e-6)
    assert row["relative_change"] == pytest.approx(float(d.norm() / w.norm()), rel=1e-6)
    assert row["max_abs_delta"] == pytest.approx(float(d.abs().max()), rel=1e-6)
    assert row["cosine"] == pytest.approx(float((w * w2).sum() / (w.norm() * w2.norm())), abs=1e-6)
    assert row["top_singular_values"] == pytest.approx(s[:4].tolist(), rel=1e-6)
    assert row["stable_rank"] == pytest.approx(float(d.norm() ** 2 / s[0] ** 2), rel=1e-6)
    assert row["effective_rank"] == pytest.approx(_spectrum.effective_rank(s), rel=1e-6)
    assert row["spectrum_exact"] is True
    # every weight matrix differs between two random initialisations; norms start at ones in both
    assert m.numbers["weights.tensors_changed"] == 16 and m.numbers["weights.layers_changed"] == 2


def test_sharded_candidate_is_streamed_like_a_single_file(tiny_model: Path, tmp_path: Path) -> None:
    from transformers import AutoModelForCausalLM

    model = AutoModelForCausalLM.from_pretrained(str(tiny_model))
    with torch.no_grad():
        model.model.layers[1].mlp.down_proj.weight.mul_(1.5)
    sharded = tmp_path / "sharded"
    model.save_pretrained(str(sharded), safe_serialization=True, max_shard_size="40KB")
    assert len(list(sharded.glob("*.safetensors"))) > 2
    m = weight_diff(tiny_model, sharded)
    assert [r["tensor"] for r in m.details] == [DOWN1]
    assert m.details[0]["relative_change"] == pytest.approx(0.5, rel=1e-6)


def test_precomputed_manifests_are_not_hashed_again(
    tiny_model: Path, tiny_model_other: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    pm, cm = compute_manifest(tiny_model), compute_manifest(tiny_model_other)
    monkeypatch.setattr(_checkpoint, "compute_manifest", lambda *a, **k: pytest.fail("hashed twice"))
    m = weight_diff(tiny_model, tiny_model_other, parent_manifest=pm, candidate_manifest=cm)
    assert (m.parent, m.candidate) == (pm.root, cm.root)


def test_evidence_page_is_written(tiny_model: Path, tiny_model_other: Path, tmp_path: Path) -> None:
    m = weight_diff(tiny_model, tiny_model_other, evidence=tmp_path / "w.html")
    assert m.evidence == [str(tmp_path / "w.html"), str(tmp_path / "plotly.min.js")]
    page = (tmp_path / "w.html").read_text()
    assert "per layer and module type" in page and '<script src="plotly.min.js">' in page


@settings(max_examples=25, deadline=None)
@given(
    out=st.integers(1, 24),
    inp=st.integers(1, 24),
    rank=st.integers(1, 6),
    scale=st.floats(0.01, 8.0),
    seed=st.integers(0, 2**16),
)
def test_factored_spectrum_equals_the_dense_one(
    out: int, inp: int, rank: int, scale: float, seed: int
) -> None:
    g = torch.Generator().manual_seed(seed)
    a, b = (
        torch.randn(rank, inp, generator=g, dtype=torch.float64),
        torch.randn(out, rank, generator=g, dtype=torch.float64),
    )
    fac = _spectrum.factored_spectrum(a, b, scale, k=4)
    dense = _spectrum.dense_spectrum(scale * b @ a, k=4)
    assert fac.frobenius == pytest.approx(dense.frobenius, rel=1e-9)
    n = len(fac.top)
    assert n == min(rank, out, inp, 4)
    assert fac.top == pytest.approx(dense.top[:n], rel=1e-6)
    assert all(s < 1e-6 * dense.top[0] for s in dense.top[n:])  # ΔW has rank ≤ r
    assert fac.stable_rank == pytest.approx(dense.stable_rank, rel=1e-6)
    assert fac.effective_rank == pytest.approx(dense.effective_rank, rel=1e-4)
    assert fac.effective_rank <= min(rank, out, inp) + 1e-6


@settings(max_examples=25, deadline=None)
@given(seed=st.integers(0, 2**16), m=st.integers(1, 16), n=st.integers(1, 16))
def test_diff_is_symmetric(seed: int, m: int, n: int) -> None:
    g = torch.Generator().manual_seed(seed)
    w, w2 = torch.randn(m, n, generator=g), torch.randn(m, n, generator=g)
    span = TensorSpan("t.weight", "F32", (m, n), 0, 4 * m * n)
    fwd = _rows.dense_row("t.weight", span, w, w2, 4)
    back = _rows.dense_row("t.weight", span, w2, w, 4)
    for key in ("delta_norm", "max_abs_delta", "cosine", "stable_rank", "effective_rank"):
        assert fwd[key] == pytest.approx(back[key], rel=1e-5, abs=1e-6)
    assert fwd["top_singular_values"] == pytest.approx(back["top_singular_values"], rel=1e-5, abs=1e-6)


def test_large_matrices_get_a_randomized_top_k() -> None:
    g = torch.Generator().manual_seed(0)
    delta = torch.randn(300, 3, generator=g) @ torch.randn(3, 200, generator=g)
    exact = _spectrum.dense_spectrum(delta, k=3)
    assert exact.exact is True  # 200²·300 is cheap: exact by default
    approx = _spectrum.dense_spectrum(delta, k=3, exact=False)
    assert approx.exact is False and approx.effective_rank is None
    assert approx.top == pytest.approx(exact.top, rel=1e-4)
    assert approx.stable_rank == pytest.approx(exact.stable_rank, rel=1e-4)
    big = torch.randn(4000, 600, generator=g)
    assert _spectrum.dense_spectrum(big, k=3).exact is False  # 600²·4000 is not


def test_lora_from_factors_equals_the_dense_diff_of_the_merged_model(
    tiny_model: Path, tiny_lora: Path, tmp_path: Path
) -> None:
    from transformers import AutoModelForCausalLM

    merged = merge_adapter(AutoModelForCausalLM.from_pretrained(str(tiny_model)), tiny_lora)
    merged.save_pretrained(str(tmp_path / "merged"), safe_serialization=True)
    dense = weight_diff(tiny_model, tmp_path / "merged", top_k=4)
    factored = lora_diff(tiny_model, tiny_lora, top_k=4)
    assert factored.name == "weights.lora" and factored.meta["mode"] == "lora"
    assert [r["tensor"] for r in factored.details] == [r["tensor"] for r in dense.details]
    assert factored.meta["changed_modules"] == dense.meta["changed_modules"]
    assert len(factored.details) == 4
    for f, d in zip(factored.details, dense.details, strict=True):
        for key in (
            "delta_norm",
            "base_norm",
            "relative_change",
            "max_abs_delta",
            "cosine",
            "effective_rank",
            "stable_rank",
        ):
            assert f[key] == pytest.approx(d[key], rel=1e-4), key
        assert f["top_singular_values"] == pytest.approx(d["top_singular_values"], rel=1e-4)
        assert f["rank"] == 4 and f["effective_rank"] <= 4
    for key, value in dense.numbers.items():
        assert factored.numbers[key] == pytest.approx(value, rel=1e-4, abs=1e-12), key


def test_lora_matches_its_factors_in_float64(tiny_model: Path, tiny_lora: Path, advance_log) -> None:
    adapter = load_lora_adapter(tiny_lora)
    base = load_file(str(tiny_model / "model.safetensors"))
    rows = {r["tensor"]: r for r in lora_diff(tiny_model, tiny_lora, advance=advance_log).details}
    advance_log.assert_reaches_total()
    assert advance_log.calls[-1] == (len(adapter.modules()),) * 2
    for f in adapter.factors():
        w = base[f"{f.module}.weight"].double()
        d = f.scale * f.b.double() @ f.a.double()
        row = rows[f"{f.module}.weight"]
        assert row["delta_norm"] == pytest.approx(float(d.norm()), rel=1e-9)
        assert row["max_abs_delta"] == pytest.approx(float(d.abs().max()), rel=1e-6)
        cos = float((w * (w + d)).sum() / (w.norm() * (w + d).norm()))
        assert row["cosine"] == pytest.approx(cos, rel=1e-6)
        assert row["top_singular_values"] == pytest.approx(
            torch.linalg.svdvals(d)[: f.a.shape[0]].tolist(), rel=1e-6
        )


def test_untrained_lora_changes_nothing(tiny_model: Path, tmp_path: Path) -> None:
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForCausalLM

    model = get_peft_model(
        AutoModelForCausalLM.from_pretrained(str(tiny_model)), LoraConfig(r=2, target_modules=["q_proj"])
    )
    model.save_pretrained(str(tmp_path / "zero"), safe_serialization=True)
    m = lora_diff(tiny_model, tmp_path / "zero")
    assert m.numbers["weights.tensors_changed"] == 0 and m.meta["changed_modules"] == []


# bad input: every path exits 2 with one line naming the problem, and writes nothing


def _cli_fails(args: list[str], capsys: pytest.CaptureFixture[str], message: str, out: Path) -> None:
    code = main([*args, "--json", str(out)])
    err = capsys.readouterr().err
    assert code == 2, err
    assert err.startswith("error: ") and message in err and len(err.strip().splitlines()) == 1
    assert not out.exists() and not out.with_suffix(".html").exists()


def test_missing_tensor_is_named(
    tiny_model: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    cand = edited_copy(tiny_model, tmp_path / "cand", lambda t: t.pop(DOWN1))
    _cli_fails(
        ["diff", "weights", str(tiny_model), str(cand)],
        capsys,
        f"tensor '{DOWN1}' is in the parent but missing",
        tmp_path / "o.json",
    )
    with pytest.raises(InputError, match="in the candidate but missing from the parent"):
        weight_diff(cand, tiny_model)


def test_shape_mismatch_is_named(
    tiny_model: Path, tiny_narrow: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    _cli_fails(
        ["diff", "weights", str(tiny_model), str(tiny_narrow)],
        capsys,
        "tensor 'lm_head.weight': shape [384, 64] in the parent, [384, 32] in the candidate",
        tmp_path / "o.json",
    )


def test_other_architecture_is_refused(
    tiny_model: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    other = edited_copy(tiny_model, tmp_path / "mistral", lambda t: None)
    config = json.loads((other / "config.json").read_text())
    config.update(model_type="mistral", architectures=["MistralForCausalLM"])
    (other / "config.json").write_text(json.dumps(config))
    _cli_fails(
        ["diff", "weights", str(tiny_model), str(other)],
        capsys,
        "different architectures",
        tmp_path / "o.json",
    )


def test_adapter_for_another_base_is_refused(
    tiny_narrow: Path, tiny_lora: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    _cli_fails(
        ["diff", "weights", str(tiny_narrow), str(tiny_lora)],
        capsys,
        "adapter does not fit base",
        tmp_path / "o.json",
    )


def test_not_a_model_is_refused(tmp_path: Path, tiny_model: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (tmp_path / "empty").mkdir()
    _cli_fails(
        ["diff", "weights", str(tiny_model), str(tmp_path / "empty")],
        capsys,
        "not a model or adapter directory",
        tmp_path / "o.json",
    )


def test_cli_writes_json_and_figures(
    tiny_model: Path, tiny_lora: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from clgate.measurement import Measurement

    out = tmp_path / "lora.json"
    assert main(["diff", "weights", str(tiny_model), str(tiny_lora), "--json", str(out)]) == 0
    printed = capsys.readouterr().out
    assert (
        "largest changes (4 of 21 tensors changed)" in printed
        and "model.layers.1.self_attn.q_proj.weight" in printed
    )
    m = Measurement.from_json(out.read_text())
    assert m.name == "weights.lora" and m.numbers["weights.tensors_changed"] == 4.0
    assert out.with_suffix(".html").is_file() and (tmp_path / "plotly.min.js").is_file()
    assert np.isfinite(list(m.numbers.values())).all()
    assert all(math.isfinite(r["delta_norm"]) for r in m.details)


@pytest.mark.integration
def test_lora_on_every_linear_layer_of_smollm2(smollm2_dir: Path, tmp_path: Path) -> None:
    targets = ("q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj")
    adapter = factories.make_tiny_lora(smollm2_dir, tmp_path / "adapter", rank=16, alpha=32, targets=targets)
    m = lora_diff(smollm2_dir, adapter, base_manifest=compute_manifest(smollm2_dir))
    assert m.numbers["weights.tensors_changed"] == 30 * 7 and m.numbers["weights.layers_changed"] == 30
    assert set(m.meta["changed_module_types"]) == {
        "attn_q",
        "attn_k",
        "attn_v",
        "attn_o",
        "mlp_gate",
        "mlp_up",
        "mlp_down",
    }
    assert all(r["effective_rank"] <= 16 + 1e-6 and r["spectrum_exact"] for r in m.details)
    f = next(iter(load_lora_adapter(adapter).factors()))
    d = f.scale * f.b.double() @ f.a.double()
    row = next(r for r in m.details if r["module"] == f.module)
    assert row["delta_norm"] == pytest.approx(float(d.norm()), rel=1e-6)
    assert row["top_singular_values"][:3] == pytest.approx(torch.linalg.svdvals(d)[:3].tolist(), rel=1e-6)


@pytest.mark.integration
def test_smollm2_weight_diff_finds_the_edited_tensors(smollm2_dir: Path, tmp_path: Path) -> None:
    names = ["model.layers.7.mlp.up_proj.weight", "model.layers.21.self_attn.o_proj.weight"]

    def edit(tensors: dict[str, torch.Tensor]) -> None:
        for name in names:
            tensors[name] = tensors[name] + 1e-3 * tensors[name].std() * torch.randn_like(tensors[name])

    cand = edited_copy(smollm2_dir, tmp_path / "cand", edit)
    m = weight_diff(smollm2_dir, cand)
    assert sorted(r["tensor"] for r in m.details) == sorted(names)
    assert m.numbers["weights.tensors"] == 272 and m.numbers["weights.layers_changed"] == 2
    for row in m.details:
        assert row["relative_change"] == pytest.approx(1e-3, rel=0.05)
        assert row["spectrum_exact"] is False and row["effective_rank"] is None  # too large for the default
        assert row["stable_rank"] > 100  # noise is spread over every direction
