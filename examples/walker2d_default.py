"""Walker2d-v5's own reward, written as a reward program: forward speed + staying healthy - effort."""

import numpy as np

WEIGHTS = {"forward": 1.0, "healthy": 1.0, "ctrl": 1e-3}


def compute_reward(s, a):
    forward = WEIGHTS["forward"] * s.forward_velocity
    healthy = WEIGHTS["healthy"] * float(s.is_healthy)
    ctrl = -WEIGHTS["ctrl"] * float(np.sum(np.square(a)))
    components = {"forward": forward, "healthy": healthy, "ctrl": ctrl}
    return forward + healthy + ctrl, components
