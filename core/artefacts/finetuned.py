"""A dataset's fine-tuned encoder: a local Hugging Face folder under ``<dataset>.cache/finetuned/``.

The folder holds the model as safetensors (no pickles) with the base model's pooling files,
so :class:`core.encoder.Encoder` loads it like any local model, and a ``manifest.json``
(:class:`core.derived_files.Manifest`: base model id, the dataset's content version, the
fine-tune's parameters, the code version of :mod:`core.finetune` and this module) with the
training report beside it. :func:`finetuned_model` serves the folder only when its
manifest matches, else trains and replaces it: built in a temporary folder, then renamed
into place (the old folder is renamed aside first and removed after, so a reader sees the
old model or the new one; a crash between the two renames leaves no model, and the next
run trains again).

Vectors of the fine-tuned model are cached like any model's, per model id
(:mod:`core.embeddings`): a retrained model has new weights, hence a new id and new vectors.
"""

from __future__ import annotations

import json
import os
import shutil
import sys
from dataclasses import asdict, dataclass
from pathlib import Path

import core.finetune
from core import store
from core.artefacts.datasets import dataset_version, events, items
from core.derived_files import InvalidArtefact, Manifest, code_version, load_or_build
from core.encoder import Encoder, _check_model_folder, default_model_path, model_id_for
from core.errors import ShiftError
from core.finetune import ContrastiveFinetune, FinetuneParams, Progress, co_consumption_pairs, training_users

KIND = "finetuned-encoder"
FOLDER = "all-MiniLM-L6-v2-finetuned"  # the readable part of the model id
MANIFEST = "manifest.json"
MODELS = ("pretrained", "finetuned")  # the names --model accepts besides a folder


@dataclass(frozen=True)
class FinetunedModel:
    path: Path
    report: dict  # core.finetune.TrainingReport as stored, plus the training users' count
    trained_now: bool = False


def finetuned_dir(name: str) -> Path:
    return store.cache_dir(name) / "finetuned" / FOLDER


def _code_version() -> str:
    return code_version(core.finetune, sys.modules[__name__])


def finetune_manifest(name: str, params: FinetuneParams, base: Path | None = None) -> Manifest:
    base_id = model_id_for(base or default_model_path())
    return Manifest(KIND, dataset_version(name), {"base_model": base_id, **params.to_dict()}, _code_version())


def _read(path: Path) -> tuple[str, FinetunedModel]:
    stored = json.loads((path / MANIFEST).read_text())
    if not isinstance(stored, dict) or "manifest" not in stored:
        raise InvalidArtefact(f"{path / MANIFEST}: no manifest")
    try:
        _check_model_folder(path)
    except ShiftError as err:
        raise InvalidArtefact(str(err)) from None
    return json.dumps(stored["manifest"]), FinetunedModel(path, stored.get("report", {}))


def _write(path: Path, trained: tuple[ContrastiveFinetune, dict], manifest: Manifest) -> None:
    finetune, report = trained
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    old = path.with_name(f".{path.name}.{os.getpid()}.old")
    shutil.rmtree(tmp, ignore_errors=True)
    try:
        finetune.save(tmp)
        payload = {"manifest": json.loads(manifest.to_json()), "report": report}
        (tmp / MANIFEST).write_text(json.dumps(payload, indent=1))
        if path.exists():
            os.replace(path, old)
        os.replace(tmp, path)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
        shutil.rmtree(old, ignore_errors=True)


def finetuned_model(
    name: str,
    params: FinetuneParams | None = None,
    device: str = "auto",
    progress: Progress | None = None,
    force: bool = False,
) -> FinetunedModel:
    """The dataset's encoder fine-tuned with ``params``: the stored folder when its manifest
    matches (base model, dataset version, parameters, code), else trained now and stored."""
    params = (params or FinetuneParams()).check()
    base = default_model_path()
    path = finetuned_dir(name)
    manifest = finetune_manifest(name, params, base)
    if force:
        shutil.rmtree(path, ignore_errors=True)
    trained_now = False

    def build() -> tuple[ContrastiveFinetune, dict]:
        nonlocal trained_now
        ev = events(name)
        users = training_users(ev.user_ids, params.split_seed)
        pairs = co_consumption_pairs(ev, users, params.window, params.pairs, params.seed)
        texts = items(name)["text"].astype(str).tolist()
        finetune = ContrastiveFinetune(base, params, device).fit(texts, pairs, progress)
        trained_now = True
        return finetune, asdict(finetune.report_) | {"n_training_users": int(len(users))}

    def read(p: Path):
        return _read(p)

    value = load_or_build(path, manifest, read, build, _write)
    if isinstance(value, tuple):  # just trained: the stored folder is what callers use
        return FinetunedModel(path, value[1], trained_now)
    return value


def finetuned_model_path(name: str) -> Path | None:
    """The dataset's fine-tuned model folder if one is stored and current (trained on this
    version of the dataset from the installed base model by this code, whatever its
    parameters), else None. Never loads torch: the dashboard may call it freely."""
    path = finetuned_dir(name)
    try:
        stored, _ = _read(path)
    except (OSError, ValueError, InvalidArtefact):
        return None
    manifest = json.loads(stored)
    current = json.loads(finetune_manifest(name, FinetuneParams()).to_json())
    same = all(manifest.get(k) == current[k] for k in ("kind", "dataset_version", "code_version"))
    if not same or manifest.get("params", {}).get("base_model") != current["params"]["base_model"]:
        return None
    return path


def finetuned_model_id(name: str) -> str | None:
    """Model id of the dataset's current fine-tuned model (the key of its cached vectors), or None."""
    path = finetuned_model_path(name)
    return model_id_for(path) if path is not None else None


def encoder_for(name: str, model: str | Path | None = None, **encoder_args) -> Encoder:
    """The encoder ``--model`` names: None or "pretrained" → all-MiniLM-L6-v2 as shipped;
    "finetuned" → the dataset's fine-tuned model (an error saying what to run when there is
    none, or when it was trained on an older version of the dataset); else a model folder."""
    if model is None or str(model) == "pretrained":
        return Encoder(None, **encoder_args)
    if str(model) == "finetuned":
        path = finetuned_model_path(name)
        if path is None:
            stale = finetuned_dir(name).exists()
            raise ShiftError(
                f"dataset {name!r} has no {'current ' if stale else ''}fine-tuned model"
                f"{' (it was trained on another version of the dataset or by other code)' if stale else ''}; "
                f"run: python -m core finetune {name}"
            )
        return Encoder(path, **encoder_args)
    return Encoder(model, **encoder_args)
