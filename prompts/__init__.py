"""Prompt templates as text files, one per prompt, named after the node or role that uses it."""
