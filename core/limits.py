"""The one memory limit of the product: events held in memory for a whole population.

Above ``MAX_EVENTS_IN_MEMORY`` events, per-event features (N x d float64) would not fit
comfortably: a detector is fitted and calibrated on a seeded sample of whole users of at most
this many events and scores every user chunk by chunk; the dashboard reads the results that
``detect`` stored instead of fitting; and readers that need whole histories of the population
(the recommender's co-occurrence) read a sample of this size. Read it at call time
(``limits.MAX_EVENTS_IN_MEMORY``), so a test can lower it in one place.
"""

MAX_EVENTS_IN_MEMORY = 300_000
