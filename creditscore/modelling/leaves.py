"""The smallest LightGBM leaf, lowered on data too small for the configured one."""
from __future__ import annotations

import numpy as np

# A LightGBM tree should still be able to grow this many leaves on the smallest fit it sees (see `leaf_floor`).
MIN_LEAVES = 8


def leaf_floor(params: dict, y: np.ndarray, share: float) -> dict:
    """LightGBM settings whose smallest leaf still lets a tree grow `MIN_LEAVES` leaves on a fit of `share` of
    these clients; unchanged above that size.

    `min_child_weight` is a sum of hessians, p(1 - p) per client at the start: about 0.074 at an 8% default rate.
    The Home Credit kernel's 39.3 is a leaf of about 530 clients, so a fit of fewer than about 4,300 clients grows
    few leaves, and one of 500 none at all: every prediction is the prior and the AUC is 0.5 (measured on the
    1,000-client real sample: 640 training clients, lightgbm+none 0.5 on every split). Capped, the settings stay
    the kernel's wherever the kernel can split (every default run and the real 24,601-client benchmark).
    """
    n_fit = len(y) * float(share)
    rate = float(np.mean(y)) if len(y) else 0.0
    caps = {"min_child_weight": max(n_fit * rate * (1.0 - rate) / MIN_LEAVES, 1e-3),
            "min_child_samples": max(int(n_fit / MIN_LEAVES), 1)}
    return {**params, **{k: cap for k, cap in caps.items() if k in params and float(params[k]) > cap}}
