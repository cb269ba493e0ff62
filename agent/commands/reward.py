"""`vid2reward reward` (being built)."""

from __future__ import annotations

import argparse


def register(verbs: argparse._SubParsersAction) -> None:
    pass
