"""The one place that turns a dataset name into its derived artefacts.

Logs -> store -> **artefacts** -> the CLI, the dashboard and the benchmarks. Every derived
file (item embeddings, detector fits with their calibration, the item map, the encoder's
digest memo) is written atomically as plain data (``.npz``, Parquet, JSON; no pickles)
with a manifest of what it was built from (:mod:`core.derived_files`), and rebuilt when
the manifest does not match or the file does not load. Nothing outside this package opens
a cache file.

Public functions (imported lazily, so ``import core.artefacts`` stays cheap):

- :func:`dataset_version` (the dataset's content digest), :func:`events`, :func:`items`;
- :func:`item_matrix` and :func:`encode_items` (encode what is missing), :func:`cached_item_matrix` (never encodes),
  :func:`item_features` (what a detector reads);
- :func:`finetuned_model` (the encoder fine-tuned on the log, stored or trained now),
  :func:`finetuned_model_path` / :func:`finetuned_model_id` (is a current one stored; never loads torch),
  :func:`encoder_for` (the encoder ``--model pretrained|finetuned|PATH`` names);
- :func:`fitted_detector` (fitted and calibrated, from disk or fitted now), :func:`fit_path`,
  :func:`fit_is_stored` (would it load without fitting);
- :func:`cached_projection`, :func:`build_projection`, :func:`stored_params`, :func:`projection_path`;
- :func:`recommender`, :func:`population_histories`, :func:`trajectories`, :func:`iter_trajectories`, :func:`user_trajectory`;
- detection results stored for readers that fit nothing (big datasets): :func:`ensure_results`
  (written by ``detect``), :func:`needs_precomputed`, :func:`population_summary`,
  :func:`user_table`, :func:`stored_change_points`, :func:`stored_user_signal`,
  :func:`stored_false_alarm_rates`, :func:`scored_users`, :func:`event_windows` (a few users'
  events around given points, without the whole log), :func:`sampled_histories` (whole
  histories of a seeded sample of users), :class:`NotPrecomputed`.
"""

from __future__ import annotations

import importlib

_PUBLIC = {
    "dataset_version": "datasets",
    "events": "datasets",
    "items": "datasets",
    "item_matrix": "items",
    "encode_items": "items",
    "cached_item_matrix": "items",
    "item_features": "items",
    "finetuned_model": "finetuned",
    "finetuned_model_path": "finetuned",
    "finetuned_model_id": "finetuned",
    "encoder_for": "finetuned",
    "fitted_detector": "fits",
    "fit_path": "fits",
    "fit_is_stored": "status",
    "fingerprint": "fits",
    "cached_projection": "maps",
    "build_projection": "maps",
    "store_projection": "maps",
    "stored_params": "maps",
    "projection_path": "maps",
    "store_results": "results",
    "ensure_results": "results",
    "needs_precomputed": "results",
    "population_summary": "results",
    "stored_user_signal": "results",
    "stored_change_points": "results",
    "user_table": "results",
    "stored_false_alarm_rates": "results",
    "scored_users": "results",
    "event_windows": "results",
    "sampled_histories": "results",
    "NotPrecomputed": "results",
    "recommender": "inputs",
    "population_histories": "inputs",
    "trajectories": "inputs",
    "iter_trajectories": "inputs",
    "user_trajectory": "inputs",
}

__all__ = sorted(_PUBLIC)


def __getattr__(name: str):
    # Lazy (PEP 562): the encoder and the embeddings cache use core.derived_files, and
    # must not pull in the detectors and scikit-learn through this package's functions.
    if name in _PUBLIC:
        return getattr(importlib.import_module(f"core.artefacts.{_PUBLIC[name]}"), name)
    raise AttributeError(f"module 'core.artefacts' has no attribute {name!r}")
