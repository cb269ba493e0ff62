"""The one error type for user mistakes (bad input, bad files), shared by every layer.

It lives at the bottom of the import graph so that sim/, tools/ and agent/ can all raise it;
the CLI catches it at the top and prints ``error: <what> (<where>)`` then ``fix: <how>``.
"""

from __future__ import annotations


class UserError(Exception):
    """A mistake the user can fix: printed as one line, never as a traceback.

    Args:
        what: what is wrong, as one sentence without a trailing period.
        where: the file, option or id it concerns (optional).
        fix: how to fix it (optional).
        exit_code: process exit code the CLI uses (2 = bad input).
    """

    def __init__(self, what: str, where: str | None = None, fix: str | None = None,
                 exit_code: int = 2) -> None:
        super().__init__(what)
        self.what = what
        self.where = where
        self.fix = fix
        self.exit_code = exit_code

    def __reduce__(self):  # keep every field when the error crosses a process boundary
        return (type(self), (self.what, self.where, self.fix, self.exit_code))

    def __str__(self) -> str:
        return f"{self.what} ({self.where})" if self.where else self.what


class RewardError(UserError):
    """A reward program that cannot be loaded, or that failed while it ran."""


# Fixes that several errors share (one wording each). User mistakes end in `fix:` (README).
SEED_FIX = "give --seed a whole number from 0 to 4294967295"
RAISED_FIX = ("fix the program at that line; `vid2reward reward test FILE --env ENV` runs it "
              "on random states")
CHECK_FIX = ("`vid2reward reward test FILE --env ENV` runs the program alone, with the same "
             "limits, and says what breaks")
WORKER_FIX = ("a step of the program may run too long or use too much memory: `vid2reward "
              "reward test FILE --env ENV` times it")
STOPPED_FIX = "an earlier failure stopped the reward process: that failure says why"
BUG_FIX = ("not a mistake of yours: run again with --debug and report the traceback to "
           "vid2reward's maintainers")
