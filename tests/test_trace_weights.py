"""The trace reads the weights as they are at each call: weights changed in place are seen."""
from __future__ import annotations

import numpy as np
import torch

from conftest import make_model
from explorer import trace


def test_weights_changed_in_place_are_seen():
    m = make_model(seed=3)
    before = trace(m, "the cat sat on the mat")
    with torch.no_grad():
        m.lm.rnn.weight_hh_l0.mul_(0.5)
    after = trace(m, "the cat sat on the mat")
    fresh = make_model(seed=3)
    with torch.no_grad():
        fresh.lm.rnn.weight_hh_l0.mul_(0.5)
    ref = trace(fresh, "the cat sat on the mat")
    assert not np.allclose(before.layers[0]["i"], after.layers[0]["i"])
    np.testing.assert_array_equal(after.layers[0]["i"], ref.layers[0]["i"])
