"""Benchmarks with ground truth, one concept per module.

- :mod:`~core.benchmark.splices`: benchmark users built from real ones (splices,
  multi-splices, ramps, controls, shuffled histories) and the calibration/test user split;
- :mod:`~core.benchmark.training`: a detector fitted and calibrated on the training users,
  and its change points per benchmark user;
- :mod:`~core.benchmark.detection`: every detector scored on splices and controls, next to
  the never-fire and fire-every-k baselines (``python -m core evaluate``);
- :mod:`~core.benchmark.planted`: planted ground truth of synthetic worlds, and scoring
  detections against it (the Evaluation page);
- :mod:`~core.benchmark.lift`: does acting on a detected shift recommend better? (and the
  fair protocol: settings chosen on validation users, the After list against what users
  consumed);
- :mod:`~core.benchmark.reference`: reference recommenders from ``implicit`` (ALS,
  item-kNN) for context next to ours;
- :mod:`~core.benchmark.report`: the results as Markdown, JSON and CSV.

The metrics themselves are in :mod:`core.metrics`; the bars a result must clear are the
benchmark scripts' (``bench/``).
"""
