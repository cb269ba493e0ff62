"""vid2reward: learn a reinforcement-learning reward as code from a video of an expert.

The code lives in the repository's top-level folders, installed as subpackages:
``vid2reward.sim`` (simulation), ``vid2reward.tools`` (what agents can do) and
``vid2reward.agent`` (the LangGraph state machine and the CLI).
"""

__version__ = "0.1.0"

import os as _os

# MuJoCo picks its GL backend when it is first imported, so the headless default must be set
# before any submodule imports mujoco: Mesa's EGL renders on the CPU with no display.
_os.environ.setdefault("MUJOCO_GL", "egl")
