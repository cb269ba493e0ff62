"""Ant-v5's own reward, written as a reward program: forward + healthy - effort - contact forces."""

import numpy as np

WEIGHTS = {"forward": 1.0, "healthy": 1.0, "ctrl": 0.5, "contact": 5e-4}


def compute_reward(s, a):
    forward = WEIGHTS["forward"] * s.forward_velocity
    healthy = WEIGHTS["healthy"] * float(s.is_healthy)
    ctrl = -WEIGHTS["ctrl"] * float(np.sum(np.square(a)))
    # The env clips each contact force and torque to [-1, 1] before squaring.
    contact = -WEIGHTS["contact"] * float(np.sum(np.square(np.clip(s.contact_forces, -1.0, 1.0))))
    components = {"forward": forward, "healthy": healthy, "ctrl": ctrl, "contact": contact}
    return forward + healthy + ctrl + contact, components
