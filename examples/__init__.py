"""Example reward programs (one per env, each reproducing the env's own reward) and the demo's
bundled expert clip."""
