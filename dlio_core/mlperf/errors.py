"""The errors ``dl-driver mlperf`` reports as one line with exit code 2 (bad input, not a failed run).

Example:
    >>> issubclass(RulesError, ValueError) and issubclass(UsageError, ValueError)
    True
"""

from __future__ import annotations

__all__ = ["UsageError", "RulesError", "LaunchError"]


class UsageError(ValueError):
    """A bad flag or combination of flags; the message names the flag."""


class RulesError(ValueError):
    """A run the rules refuse; the message is one line naming the flag or parameter."""


class LaunchError(ValueError):
    """A launch that cannot be built (bad hosts or slots); the message names the flag."""
