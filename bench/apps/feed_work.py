"""The work behind one feed update: what an app would fetch or compute, here ~1 ms of numpy."""
import numpy as np

_rng = np.random.default_rng(7)


def next_rows(tick: int) -> dict:
    walk = _rng.normal(size=50_000).cumsum()
    return {"t": [tick], "value": [float(walk[-1] / 100.0)]}
