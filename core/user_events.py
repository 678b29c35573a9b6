"""Events grouped by user (CSR layout): which user each event belongs to, and where.

Every population in this package is stored the same way: user ``k`` owns event rows
``offsets[k]:offsets[k+1]``. :class:`UserEvents` answers the questions every module asks
of that layout (the user of each event, its index within the user's history, a user's
rows, a user's position from their id), computed once per population and kept.

>>> ev = UserEvents(np.array([0, 3, 5]), np.array(["a", "b"]))
>>> ev.event_user.tolist(), ev.index_in_user.tolist(), ev.user_slice(1), ev.position("b")
([0, 0, 0, 1, 1], [0, 1, 2, 0, 1], slice(3, 5, None), 1)
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property

import numpy as np

from core.errors import UnknownUser


@dataclass(frozen=True, eq=False)
class UserEvents:
    """Event rows by user: ``offsets`` (U+1,) and optionally the users' ids (U,)."""

    offsets: np.ndarray
    user_ids: np.ndarray | None = None

    @property
    def n_users(self) -> int:
        return len(self.offsets) - 1

    @property
    def n_events(self) -> int:
        return int(self.offsets[-1])

    @cached_property
    def counts(self) -> np.ndarray:
        return np.diff(np.asarray(self.offsets, dtype=np.int64))

    @cached_property
    def event_user(self) -> np.ndarray:
        """(N,) position of each event's user."""
        return np.repeat(np.arange(self.n_users), self.counts)

    @cached_property
    def start(self) -> np.ndarray:
        """(N,) first row of each event's user."""
        return np.repeat(np.asarray(self.offsets[:-1], dtype=np.int64), self.counts)

    @cached_property
    def end(self) -> np.ndarray:
        """(N,) row after the last of each event's user."""
        return np.repeat(np.asarray(self.offsets[1:], dtype=np.int64), self.counts)

    @cached_property
    def index_in_user(self) -> np.ndarray:
        """(N,) index of each event within its user's history (0 = the user's first)."""
        return np.arange(self.n_events, dtype=np.int64) - self.start

    def user_slice(self, k: int) -> slice:
        """Rows of the user at position ``k``."""
        return slice(int(self.offsets[k]), int(self.offsets[k + 1]))

    @cached_property
    def _positions(self) -> dict[str, int]:
        if self.user_ids is None:
            raise UnknownUser("these events carry no user ids")
        return {str(u): k for k, u in enumerate(self.user_ids)}

    def position(self, user_id: str) -> int:
        """Position of ``user_id``; UnknownUser when absent."""
        k = self._positions.get(str(user_id))
        if k is None:
            raise UnknownUser(f"user {user_id!r} is not in these events")
        return k
