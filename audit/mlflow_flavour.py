"""What the gate audits in an MLflow model version's artifacts.

A version is either a PEFT adapter or an HF model folder at the artifacts' root, or a model logged with
MLflow's transformers flavour (`mlflow.transformers.log_model`): the weights nested under `model/` or an
adapter under `peft/`, beside an `MLmodel` file that says how the version is served (task, prompt
template, dtype) and a tokenizer under `components/`. The gate audits the weights; the digest of every
file the version holds is recorded beside them, so that whatever is served with the weights and changes
after the gate (the `MLmodel` file, the tokenizer) is refused at promotion like the weights themselves.
"""

from __future__ import annotations

import filecmp
import json
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from clgate.artifacts import ArtifactKind, artifact_ref, compute_manifest, load_tokenizer
from clgate.errors import InputError
from clgate.ledger.canonical import canonical_json

if TYPE_CHECKING:
    from mlflow.models import Model

MLMODEL = "MLmodel"
TOKENIZER = "tokenizer"
SAMPLING_KEYS = frozenset({
    "do_sample", "temperature", "top_k", "top_p", "min_p", "typical_p", "num_return_sequences",
    "max_new_tokens", "max_length", "return_full_text", "pad_token_id",
})  # fmt: skip
"""`model_config` keys MLflow may pass to the pipeline on every request that the gate's verdict still covers:
it judges the model's distribution over replies (log-likelihoods, greedy replies), which sampling draws
from, and a reply's length. Every other key (`suppress_tokens`, `bad_words_ids`, `sequence_bias`,
`repetition_penalty`, `eos_token_id`, `min_new_tokens`, …) steers which tokens can be chosen, past what
was judged: one suppressed "I" and the model no longer opens a refusal."""


@dataclass(frozen=True)
class VersionFiles:
    """A downloaded version: what the gate audits, and what the proposal records beside it."""

    candidate: Path
    """A PEFT adapter folder or an HF model folder (with its tokenizer)."""
    artifacts_digest: str | None = None
    """For a transformers-flavour version: the root digest of every file it holds, as downloaded (the
    candidate's digest covers a plain version's every file already)."""
    base_model: str | None = None
    """For a transformers-flavour adapter: the base model its `MLmodel` names (hub id@revision or path)."""
    tokenizer: Path | None = None
    """For a transformers-flavour adapter: the tokenizer MLflow serves it with (`components/tokenizer`)."""
    model_config: str | None = None
    """For a transformers-flavour version logged with one: the `model_config` MLflow passes to the pipeline
    on every request (canonical JSON), recorded so the ledger says how the judged version is served."""

    def pipeline(self) -> dict[str, str]:
        recorded = {
            "mlflow.artifacts_digest": self.artifacts_digest,
            "mlflow.base_model": self.base_model,
            "mlflow.model_config": self.model_config,
        }
        return {k: v for k, v in recorded.items() if v is not None}


def version_files(download: Path, uri: str) -> VersionFiles:
    """The files of `download` (version `uri`) the gate audits. A transformers-flavour model's tokenizer
    is copied into its weights' folder, which is how clgate loads a model; the recorded artifacts digest
    is taken before that."""
    if not (download / MLMODEL).is_file():
        return VersionFiles(download)
    digest = compute_manifest(download, ArtifactKind.MODEL, tensors=False).root
    mlmodel = _mlmodel(download / MLMODEL, uri)
    flavours = mlmodel.flavors if isinstance(mlmodel.flavors, dict) else {}
    conf = flavours.get("transformers")
    if not isinstance(conf, dict):
        raise InputError(
            f"{uri} was logged with the {', '.join(sorted(flavours)) or 'no'} flavour: clgate gates the "
            "transformers flavour, or a PEFT adapter or HF model folder at the artifacts' root"
        )
    if conf.get("prompt_template") or (mlmodel.metadata or {}).get("prompt_template"):
        raise InputError(
            f"{uri} wraps every prompt in a template when MLflow serves it (prompt_template), which the gate "
            "does not ask with: log it without one, or gate the template's effect yourself before promoting"
        )
    config = _served_config(download, mlmodel, uri)
    if conf.get("peft_adaptor"):
        if conf.get("model_binary"):
            raise InputError(
                f"{uri} carries a copy of its base model ({conf['model_binary']}/) beside its adapter, which "
                "MLflow serves instead of the deployment's base: log the adapter with base_model_path= set to the "
                "deployment's base, so that the version names its base instead of carrying one"
            )
        base = conf.get("local_base_model_path") or _hub_name(conf)
        served = download / "components" / TOKENIZER
        return VersionFiles(
            _inside(download, conf["peft_adaptor"], uri),
            digest,
            base,
            served if served.is_dir() else None,
            config,
        )
    if not conf.get("model_binary"):
        raise InputError(
            f"{uri} was logged without its weights (save_pretrained=False): it names {_hub_name(conf)} "
            "instead; log the model with its weights to gate it"
        )
    weights = _inside(download, conf["model_binary"], uri)
    tokenizer = download / "components" / TOKENIZER
    if tokenizer.is_dir():
        _copy_beside(tokenizer, weights, uri)
    return VersionFiles(weights, digest, model_config=config)


def _served_config(download: Path, mlmodel: Model, uri: str) -> str | None:
    """The `model_config` MLflow passes to the pipeline with every request, as canonical JSON: the older
    `components/inference_config.txt` where the version has one (MLflow reads it first), else the pyfunc
    flavour's `config`. Refused: a key outside `SAMPLING_KEYS` in either, or as a default of the signature's
    params (MLflow fills those into every request that omits them), and a pyfunc flavour that loads the
    model from anywhere but the transformers flavour's files (`loader_module`, `data`, `code`)."""
    flavours = mlmodel.flavors if isinstance(mlmodel.flavors, dict) else {}
    pyfunc = flavours.get("python_function", {})
    if (
        not isinstance(pyfunc, dict)
        or pyfunc.get("loader_module", "mlflow.transformers") != "mlflow.transformers"
    ):
        raise InputError(
            f"{uri}: its python_function flavour loads the model another way than the transformers flavour"
        )
    if pyfunc.get("data") or pyfunc.get("code"):
        raise InputError(
            f"{uri}: its python_function flavour loads files from {pyfunc.get('data') or pyfunc.get('code')!r}, "
            "not those the gate audits"
        )
    legacy = download / "components" / "inference_config.txt"
    stated = {"config": pyfunc.get("config") or {}}  # mlflow.models.model.MODEL_CONFIG
    if legacy.is_file():
        try:
            stated["components/inference_config.txt"] = json.loads(legacy.read_text(encoding="utf-8"))
        except (UnicodeDecodeError, json.JSONDecodeError) as exc:
            raise InputError(f"{uri}: its components/inference_config.txt is not JSON ({exc})") from None
    params = mlmodel.signature.params if mlmodel.signature is not None else None
    stated["signature params"] = {
        p.name: p.default for p in (params.params if params else []) if p.default is not None
    }
    for where, config in stated.items():
        if not isinstance(config, dict):
            raise InputError(f"{uri}: its {where} is not a mapping of pipeline arguments")
        steering = sorted(
            ((str(k), v) for k, v in config.items() if k not in SAMPLING_KEYS), key=lambda kv: kv[0]
        )
        if steering:
            key, value = steering[0]
            raise InputError(
                f"{uri} is served with {key}={repr(value)[:60]} ({where}), which steers which tokens the model "
                "may choose past the replies the gate judges: log it without, or gate the model it serves with "
                "those settings baked in"
            )
    served = stated.get("components/inference_config.txt", stated["config"])
    return canonical_json(served).decode() if served else None


def _mlmodel(path: Path, uri: str) -> Model:
    from mlflow.models import Model

    try:
        return Model.load(str(path))
    except Exception as exc:  # YAML or schema errors of a file anyone with run write access could edit
        raise InputError(
            f"{uri}: its MLmodel file cannot be read ({str(exc).splitlines()[0][:200]})"
        ) from None


def _hub_name(conf: dict[str, object]) -> str:
    name, revision = conf.get("source_model_name") or "no model", conf.get("source_model_revision")
    return f"{name}@{revision}" if revision else str(name)


def check_served_as_judged(files: VersionFiles, parent: Path, uri: str) -> None:
    """MLflow serves a flavoured adapter on the base its `MLmodel` names, with the tokenizer logged beside
    it; the gate judges it on `parent`, through `parent`'s tokenizer. So the bases must be the same bytes,
    and the tokenizers must agree on what changes a reply: the chat template (a template can put words in
    every prompt), the vocabulary, the special tokens and the stages around the vocabulary (a normaliser
    can rewrite a prompt): the `serving` probe's comparison. A base the gate cannot read (a hub id, a path on
    the machine that logged it) cannot be compared: refused."""
    if files.base_model is None:
        return
    _check_named_base(files.base_model, parent, uri)
    if files.tokenizer is not None:
        _check_tokenizer(files.tokenizer, parent, uri)


def _check_tokenizer(served_dir: Path, parent: Path, uri: str) -> None:
    if not Path(parent).is_dir():
        raise InputError(
            f"{uri} is served with a tokenizer of its own; gate it against --parent as an HF model folder so "
            "the two tokenizers can be compared"
        )
    from clgate.probes.serving import tokenizer_changes

    changes = tokenizer_changes(load_tokenizer(Path(parent)), load_tokenizer(served_dir))
    if changes:
        raise InputError(
            f"{uri} is served with a tokenizer whose {changes[0].where} differs from --parent's, through which "
            f"the gate asks ({changes[0].sentence}): log the adapter with the deployment's base tokenizer, or "
            "gate the model it makes as a whole"
        )


def _check_named_base(base_model: str, parent: Path, uri: str) -> None:
    named = Path(base_model)
    if not named.is_dir():
        raise InputError(
            f"{uri} is served on the base it names ({base_model}), which the gate cannot read to compare "
            "with --parent: log the adapter with base_model_path= set to the deployment's base as the gate sees it"
        )
    if named.resolve() == Path(parent).resolve():
        return
    served, judged = artifact_ref(named).digest, artifact_ref(Path(parent)).digest
    if served != judged:
        raise InputError(
            f"{uri} is served on the base it names ({named}, {served[:19]}…), not on --parent {parent} "
            f"({judged[:19]}…): gate it against the base it runs on"
        )


def _inside(download: Path, name: object, uri: str) -> Path:
    """A folder `MLmodel` names: inside the version's artifacts, whatever the file says."""
    folder = (download / str(name)).resolve()
    if not folder.is_relative_to(download.resolve()) or not folder.is_dir():
        raise InputError(f"{uri}: its MLmodel names {str(name)!r}, which is not a folder inside the version")
    return folder


def _copy_beside(tokenizer: Path, weights: Path, uri: str) -> None:
    for source in sorted(p for p in tokenizer.iterdir() if p.is_file()):
        target = weights / source.name
        if target.exists() and not filecmp.cmp(source, target, shallow=False):
            raise InputError(f"{uri}: {source.name} differs between its tokenizer and its weights' folder")
        shutil.copyfile(source, target)
