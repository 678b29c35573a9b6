"""Where the batch path runs: this process (default), a process pool, or a Ray cluster.

The fit and the calibration always run in the calling process, on the population (or its
seeded sample of whole users) exactly as :func:`core.detectors.population.fit_population`
does; an engine only changes who scores the users with the fitted detector, and who
encodes the item texts. Every engine scores through
:func:`core.detectors.population.score_users`, so results agree with the local engine
(change points identical, scores equal up to floating-point summation order).

- :func:`scorer` -> the users' scorer of an engine (None: this process, as before);
- :class:`core.runner.pool.PoolScorer`: a process pool over user chunks, one machine;
- :mod:`core.runner.ray_detect` / :mod:`core.runner.ray_encode`: a Ray cluster (a local one
  started in process, or ``--address`` / ``RAY_ADDRESS``).
"""

from __future__ import annotations

from core.detectors.population import Scorer
from core.errors import ShiftError

ENGINES = ("local", "ray")


def scorer(engine: str = "local", workers: int = 1, address: str | None = None) -> Scorer | None:
    """The users' scorer of ``engine``: None for the local engine with one worker (score in
    this process, the historical path), a process pool for ``workers`` > 1, Ray for "ray"."""
    if engine not in ENGINES:
        raise ShiftError(f"unknown engine {engine!r}; choose one of: {', '.join(ENGINES)}")
    if workers < 1:
        raise ShiftError(f"--workers must be at least 1, got {workers}")
    if engine == "ray":
        from core.runner.ray_detect import RayScorer

        return RayScorer(address=address)
    if workers > 1:
        from core.runner.pool import PoolScorer

        return PoolScorer(workers)
    return None
