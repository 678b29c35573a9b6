"""Connect to a Ray cluster, or start a local one in this process.

``address`` (``--address``) or ``RAY_ADDRESS`` names a running cluster (``ray://head:10001``
for Ray Client, ``head:6379`` from a node of the cluster); without either a local Ray is
started with one CPU per core of this machine. Workers import this repository's ``core``
package: a local Ray finds it on ``PYTHONPATH``, a remote cluster receives it as a
``py_modules`` upload (the package only, never the data folder).
"""

from __future__ import annotations

import os
from pathlib import Path

import core
from core.errors import ShiftError

_CORE_DIR = Path(core.__file__).resolve().parent
_started_here = False  # whether init_ray started (or joined) the Ray of this process


def init_ray(address: str | None = None, num_cpus: int | None = None):
    """The ``ray`` module, connected (idempotent: an initialised Ray is reused as it is)."""
    global _started_here
    try:
        import ray
    except ImportError as err:  # pragma: no cover - ray is in requirements.txt
        raise ShiftError("--engine ray needs the 'ray' package: pip install -r requirements.txt") from err
    if ray.is_initialized():  # started by the caller (a test, a notebook): theirs to stop
        return ray
    address = address or os.environ.get("RAY_ADDRESS")
    quiet = {"log_to_driver": False, "configure_logging": True, "logging_level": "warning"}
    if address:
        try:
            ray.init(address=address, runtime_env={"py_modules": [str(_CORE_DIR)]}, **quiet)
            _started_here = True
        except (ConnectionError, RuntimeError, ValueError) as err:
            raise ShiftError(f"could not connect to the Ray cluster at {address!r}: {err}") from err
    else:
        ray.init(
            num_cpus=num_cpus or os.cpu_count() or 1,
            include_dashboard=False,
            runtime_env={"env_vars": {"PYTHONPATH": str(_CORE_DIR.parent)}},
            **quiet,
        )
        _started_here = True
    return ray


def shutdown_ray() -> None:
    """Stop the local Ray :func:`init_ray` started, or disconnect from the cluster it joined
    (which keeps running); a Ray initialised by the caller is left alone."""
    global _started_here
    if _started_here:
        import ray

        ray.shutdown()
        _started_here = False
