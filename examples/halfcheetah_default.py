"""HalfCheetah-v5's own reward, written as a reward program: forward speed - effort."""

import numpy as np

WEIGHTS = {"forward": 1.0, "ctrl": 0.1}


def compute_reward(s, a):
    forward = WEIGHTS["forward"] * s.forward_velocity
    ctrl = -WEIGHTS["ctrl"] * float(np.sum(np.square(a)))
    return forward + ctrl, {"forward": forward, "ctrl": ctrl}
