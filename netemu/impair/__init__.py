"""netemu.impair: netem-style impairments between the host and the link, seeded
and on injected time (see pipeline.py).

Layer rule: sans-IO, frames as bytes in and out; imports nothing of netemu's.
"""

from .model import CorrelatedRandom, GilbertElliott
from .pipeline import Fate, ImpairConfig, Impairment, ImpairStats

__all__ = [
    "CorrelatedRandom",
    "Fate",
    "GilbertElliott",
    "ImpairConfig",
    "ImpairStats",
    "Impairment",
]
