import numpy as np

from edgefuse.train.class_weights import median_frequency_weights


def test_median_frequency_by_hand():
    # label 0 = void is ignored; classes 1..4 with 10, 20, 40, 0 pixels of 70.
    w = median_frequency_weights(np.array([999, 10, 20, 40, 0]))
    freq = np.array([10, 20, 40]) / 70
    med = np.median(freq)
    np.testing.assert_allclose(w[:3], med / freq, rtol=1e-6)
    assert w[3] == 0.0 and w[1] == 1.0   # the median class gets 1, an absent class 0
