"""The graph's nodes: each loads what it needs, calls a tool or an agent, and returns a partial
state update. Wiring is in ``vid2reward.agent.graph``."""
