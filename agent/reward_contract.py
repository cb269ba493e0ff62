"""What a learned reward program needs from its env, written out for people who reuse it
(``vid2reward export``): the env and its version, observation, action, termination, and the
state-view fields the program reads, with their units.
"""

from __future__ import annotations

import ast
from typing import Any

from vid2reward.sim.envs import get_spec, make_env
from vid2reward.sim.falls import describe_falls
from vid2reward.sim.gait_clock import declared_clock_hz
from vid2reward.sim.state import STATE_FIELDS, StateView
from vid2reward.tools.gait_comparison import cadence_text, comparison_lines


def state_fields_read(source: str) -> list[str]:
    """The state-view names a program reads: ``p.name`` for ``p`` the first parameter of any of
    its functions (``compute_reward(s, a)`` and helpers that take ``s``), kept when the view
    has that name. Read from the syntax tree; nothing runs."""
    tree = ast.parse(source)
    firsts = {node.args.args[0].arg for node in ast.walk(tree)
              if isinstance(node, ast.FunctionDef | ast.Lambda) and node.args.args}
    names = {node.attr for node in ast.walk(tree)
             if isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name)
             and node.value.id in firsts and hasattr(StateView, node.attr)}
    order = [f.name for f in STATE_FIELDS]
    return sorted(names, key=lambda n: (order.index(n) if n in order else len(order), n))


def env_facts(env_id: str) -> dict[str, Any]:
    """The env's time step, time limit, spaces and termination, as ``gymnasium.make`` builds
    it here."""
    spec = get_spec(env_id)
    env = make_env(env_id)
    try:
        obs, act = env.observation_space, env.action_space
        return {"env_id": env_id, "entry_point": str(env.spec.entry_point if env.spec else ""),
                "make_kwargs": dict(spec.make_kwargs),
                "max_episode_steps": env.spec.max_episode_steps if env.spec else None,
                "dt": float(env.unwrapped.dt),  # type: ignore[attr-defined]  # a MujocoEnv
                "observation_shape": list(obs.shape or ()), "observation_dtype": str(obs.dtype),
                "action_shape": list(act.shape or ()),
                "action_low": [float(x) for x in getattr(act, "low", [])],
                "action_high": [float(x) for x in getattr(act, "high", [])],
                "ends_on_fall": spec.ends_on_fall, "description": spec.description}
    finally:
        env.close()


def contract_readme(*, run_id: str, env_id: str, versions: dict[str, str], source: str,
                    weights: dict[str, Any], components: list[str], evaluation: dict[str, Any],
                    best: dict[str, Any]) -> str:
    """README.md of an exported reward: the exact env and reward contract, how to use it, and
    the policy's evaluation."""
    env = env_facts(env_id)
    fields = {f.name: f for f in STATE_FIELDS}
    read = state_fields_read(source)
    clock = declared_clock_hz(source)
    lo, hi = get_spec(env_id).typical_height
    field_lines = [f"| `s.{name}` | {fields[name].unit} | {fields[name].meaning} |"
                   if name in fields else f"| `s.{name}` | | see the env context |" for name in read]
    e = evaluation["policy"]
    termination = ("ends early when the env's own health test fails (`s.is_healthy` turns "
                   "False; the body below says when)" if env["ends_on_fall"]
                   else "never ends early (the env has no health test)")
    versions_line = ", ".join(f"{k} {versions[k]}" for k in
                              ("gymnasium", "mujoco", "sb3", "torch", "vid2reward", "python")
                              if k in versions) or "unknown versions"
    lines = [
        f"# Reward learned by vid2reward (run `{run_id}`)",
        "",
        "Files: `reward.py` (the reward program), `policy.zip` + `vecnormalize.pkl` (a PPO policy "
        "trained on it), `metrics.json` (its training), `evaluation.json` (below)"
        + (", `clip.mp4`/`sheet.png` (the policy's behaviour)" if best.get("clip") else "") + ".",
        "",
        "## Env",
        "",
        f"- `{env_id}` as `gymnasium.make({env_id!r}"
        + "".join(f", {k}={v!r}" for k, v in env["make_kwargs"].items()) + ")` builds it "
        f"({env['entry_point']}); made with {versions_line}.",
        f"- One step is {env['dt']:.4f} s of simulated time; episodes are truncated after "
        f"{env['max_episode_steps']} steps.",
        (f"- Observation: the unmodified env's vector, shape {tuple(env['observation_shape'])}, "
         f"{env['observation_dtype']}"
         if clock is None else
         f"- Observation: the env's vector, shape {tuple(env['observation_shape'])}, "
         f"{env['observation_dtype']}, followed by the gait clock the program declares "
         f"(`GAIT_CLOCK_HZ = {clock:g}`): sin and cos of 2 pi {clock:g} t, t the time since the "
         f"episode started (shape ({env['observation_shape'][0] + 2},) in all; "
         f"`vid2reward.make_env` builds it so)")
        + ". The policy expects it normalised with the running mean "
        "and variance in `vecnormalize.pkl` (SB3 `VecNormalize`, clipped to ±10).",
        f"- Action: shape {tuple(env['action_shape'])}, each in "
        f"[{min(env['action_low'], default=0):g}, {max(env['action_high'], default=0):g}].",
        f"- Termination: the episode {termination}.",
        f"- The body: {env['description']}",
        "",
        "## Reward contract",
        "",
        "`compute_reward(s, a) -> (total, components)` is called once per env step, after the "
        "physics step: `a` is the action just applied, `s` vid2reward's read-only state view "
        "of the simulator after it (named physical quantities, not the observation vector). "
        "`total` is a float; `components` a dict of named floats that add up to it. The program "
        "may import only `math` and `numpy`.",
        "",
        f"Fields of `s` this program reads (typical torso height here: {lo}-{hi} m):",
        "",
        "| field | unit | meaning |",
        "|---|---|---|",
        *(field_lines or ["| (none) | | |"]),
        "",
        f"Components: {', '.join(f'`{c}`' for c in components) or '(not recorded)'}. "
        f"`WEIGHTS`: `{weights}`.",
        "",
        "To use the reward outside vid2reward, `vid2reward.make_env` builds the env with this "
        "program as its reward (run sandboxed, as in training); any other harness must provide "
        "the same fields with the same units (`vid2reward.sim.state.StateTracker` computes them "
        "from MuJoCo's `MjData`).",
        "",
        "```python",
        "import vid2reward",
        "from stable_baselines3 import PPO",
        "",
        'if __name__ == "__main__":',
        f'    env = vid2reward.make_env("{env_id}", reward="reward.py")',
        '    model = PPO("MlpPolicy", env).learn(100_000)',
        "    env.close()",
        "```",
        "",
        "## Evaluation",
        "",
        f"`vid2reward evaluate --policy .` ran the policy deterministically for "
        f"{e['episodes']} episodes (seeds {e['seed']}..{e['seed'] + e['episodes'] - 1}, at most "
        f"{e['max_steps']} steps) on the unmodified env:",
        "",
        f"- env's own return {e['env_return_mean']:.1f} ± {e['env_return_std']:.1f}",
    ]
    if e.get("program_return_mean") is not None:
        lines.append(f"- this reward's return {e['program_return_mean']:.1f} ± "
                     f"{e['program_return_std']:.1f}")
    m = e["metrics"]
    cadence = cadence_text(m)
    lines += [
        f"- episode length {e['length_mean']:.0f} ± {e['length_std']:.0f}; "
        + describe_falls(e["fall_rate"], e["episodes"], e.get("fall_seconds") or []),
        f"- forward velocity {m['forward_velocity']:+.2f} m/s, "
        + (f"{cadence}, " if cadence else "")
        + f"torso height {m['torso_height_mean']:.2f} m, torso bob frequency "
        f"{m['cadence_hz']:.2f} Hz, flight (no foot down) {m['flight_fraction']:.0%} of the time",
    ]
    expert = evaluation.get("expert")
    if expert:
        x = expert["state_metrics"]
        cadence = cadence_text(x)
        lines.append(f"- the expert: forward velocity {x['forward_velocity']:+.2f} m/s, "
                     + (f"{cadence}, " if cadence else "")
                     + f"torso height {x['torso_height_mean']:.2f} m, torso bob frequency "
                     f"{x['cadence_hz']:.2f} Hz, flight (no foot down) "
                     f"{x['flight_fraction']:.0%} of the time")
    person = comparison_lines(evaluation.get("person") or [])
    if person:
        lines += ["", person[0], "", *(f"- {line.strip()}" for line in person[1:])]
    lines += ["", "## Provenance", "",
              f"Run `{run_id}`, best candidate `{best.get('candidate')}` (similarity to the "
              f"expert video {best.get('similarity')}; 1.0 = the same measured behaviour)."
              + (f" The policy is that reward trained again from scratch for "
                 f"{best['final_steps']:,} steps after the search." if best.get("final_steps")
                 else ""), ""]
    return "\n".join(lines)
