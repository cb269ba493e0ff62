"""Humanoid-v5's own reward, written as a reward program: forward + healthy - effort - contact."""

import numpy as np

WEIGHTS = {"forward": 1.25, "healthy": 5.0, "ctrl": 0.1, "contact": 5e-7}


def compute_reward(s, a):
    forward = WEIGHTS["forward"] * s.forward_velocity
    healthy = WEIGHTS["healthy"] * float(s.is_healthy)
    ctrl = -WEIGHTS["ctrl"] * float(np.sum(np.square(s.ctrl)))
    # The env caps the contact cost at 10.
    contact = -min(WEIGHTS["contact"] * float(np.sum(np.square(s.contact_forces))), 10.0)
    components = {"forward": forward, "healthy": healthy, "ctrl": ctrl, "contact": contact}
    return forward + healthy + ctrl + contact, components
