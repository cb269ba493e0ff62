"""Engines: who plays the critic and the reward engineer (offline numeric, or LLM agents)."""
