"""The trace keeps each layer's joined [W_ih | W_hh] between calls; it must follow weights that
change in place and must not outlive its model."""
from __future__ import annotations

import gc
import importlib

import numpy as np
import torch

from conftest import make_model
from explorer import trace

T = importlib.import_module("explorer.engine")


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


def test_the_joined_weights_go_with_their_model():
    m = make_model(seed=4)
    trace(m, "a b c")
    keys = {id(m.lm.rnn.weight_ih_l0), id(m.lm.rnn.weight_ih_l1)}
    assert keys <= set(T._JOINED)
    del m
    gc.collect()
    assert not keys & set(T._JOINED)
