"""Which seeds each kind of episode starts from: one scheme, so that the same command gives the
same numbers wherever a policy is measured.

An episode seeded ``s`` starts from the same initial state whatever ran before it
(``env.reset(seed=s)``), MuJoCo is deterministic and evaluated policies act deterministically
(their mean action), so two reports that roll out the same seeds for the same number of steps
report the same numbers. Before this scheme a run's final check rolled out seeds 7000-7004,
``vid2reward evaluate`` seeds 0-9: the summary said a policy fell in 0 of 5 episodes and
``evaluate`` that it fell in 20%.

- **Evaluation** (what a user is told about a policy): the final check of a run (final.json,
  the run's summary, the trace and its HTML), ``evaluate``, ``export`` (its evaluation.json and
  README) and ``render`` (its first episode is the evaluation's first): seeds
  :data:`EVALUATION_SEED`, +1, ... whatever seed the policy was trained with.
- **Clips** (what the critic sees of a candidate): ``run seed + CLIP_SEED_OFFSET + k`` for
  its k-th clip (:func:`clip_seeds`), so runs with other seeds show other episodes.
- **Benchmarks** (``bench nes``, ``bench learning``): :data:`BENCHMARK_SEED` and
  :data:`BENCHMARK_RANDOM_SEED`, kept apart so the figures published in docs/benchmark.md and
  docs/performance.md reproduce.

Training seeds are ``TrainConfig.seed`` (0 by default) + env index, far below all of these.
Frames for reward sources' baselines (VIPER, VLM-RM), the making of the bundled experts and
VLM-CaR's sub-task checks seed their own episodes; no user figure comes from them.
"""

from __future__ import annotations

EVALUATION_SEED = 7000
"""First seed of every evaluation of a policy for its user (the final check, evaluate, export,
render); the others follow (:func:`evaluation_seeds`)."""
CLIP_SEED_OFFSET = 1000
"""A candidate's k-th clip (and its pose episode) is seeded ``run seed + CLIP_SEED_OFFSET + k``."""
BENCHMARK_SEED = 2000
"""First seed of the benchmarks' evaluation episodes (NES, learning curves)."""
BENCHMARK_RANDOM_SEED = 3000
"""First seed of the benchmarks' random-action episodes (the NES's zero)."""


def evaluation_seeds(episodes: int, first: int = EVALUATION_SEED) -> list[int]:
    """The seeds of an evaluation of ``episodes`` episodes starting at ``first``."""
    return [first + k for k in range(episodes)]


def clip_seeds(run_seed: int, clips: int) -> list[int]:
    """The seeds of a candidate's ``clips`` evaluation clips in a run seeded ``run_seed``."""
    return [run_seed + CLIP_SEED_OFFSET + k for k in range(clips)]
