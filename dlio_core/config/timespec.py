"""Time values: ``train.computation_time``, ``evaluation.eval_time``, ``reader.preprocess_time``,
``checkpoint.time_between_checkpoints``.

DLIO accepts a number, ``{mean[, stdev]}`` (normal when stdev is given), or ``{type: normal|uniform|gamma|
exponential|poisson, ...}`` with ``mean/stdev``, ``min/max``, ``shape/scale``, ``scale`` or ``lam``; a
``*_stdev`` sibling key turns a number into a normal distribution. Draws are made non-negative with
``abs()``, exactly as DLIO's ``utils/utility.py:sleep`` does.

>>> import numpy as np
>>> t = TimeSpec.parse({"mean": 0.323, "stdev": 0.01}, key="train.computation_time")
>>> t.kind, round(t.mean_s, 3), t.is_zero
('normal', 0.323, False)
>>> float(TimeSpec.parse(0.5, key="x").sample(np.random.default_rng(0)))
0.5
>>> TimeSpec.parse({"type": "uniform", "min": 1, "max": 2}, key="x").to_config()
{'type': 'uniform', 'min': 1.0, 'max': 2.0}
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from .convert import fail, number
from .errors import ConfigError

if TYPE_CHECKING:  # numpy is imported when sampling, not when parsing
    import numpy as np

__all__ = ["TimeSpec", "TIME_KINDS"]

# kind -> the DLIO dict keys it takes (beyond "type")
TIME_KINDS: dict[str, tuple[str, ...]] = {
    "fixed": (),
    "normal": ("mean", "stdev"),
    "uniform": ("min", "max"),
    "gamma": ("shape", "scale"),
    "exponential": ("scale",),
    "poisson": ("lam",),
}
_NONNEG = number(min=0.0)
_POSITIVE = number(min=0.0, min_exclusive=True)


@dataclass(frozen=True)
class TimeSpec:
    """A time in seconds: fixed, or a distribution sampled per use (per step, per sample, per checkpoint).

    Fields not used by ``kind`` stay 0. ``fixed`` keeps its value in ``mean``; only
    ``checkpoint.time_between_checkpoints`` may hold a negative fixed value (DLIO's default ``-1``, which
    DLIO sleeps as ``abs(-1)`` = 1 s).
    """

    kind: str = "fixed"
    mean: float = 0.0
    stdev: float = 0.0
    low: float = 0.0
    high: float = 0.0
    shape: float = 0.0
    scale: float = 0.0
    lam: float = 0.0

    def __post_init__(self) -> None:
        if self.kind not in TIME_KINDS:
            raise ConfigError(f"TimeSpec.kind: {self.kind!r} is not allowed; expected one of {', '.join(TIME_KINDS)}")
        for name in ("mean", "stdev", "low", "high", "shape", "scale", "lam"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
                raise ConfigError(f"TimeSpec.{name}: {value!r} is not allowed; expected a finite number")
            object.__setattr__(self, name, float(value))
        if self.kind == "uniform" and self.low > self.high:
            raise ConfigError(f"TimeSpec: min {self.low} > max {self.high}; expected min <= max")

    # ----------------------------------------------------------------- constructors
    @classmethod
    def fixed(cls, seconds: float) -> TimeSpec:
        """A constant ``seconds``."""
        return cls("fixed", mean=seconds)

    @classmethod
    def parse(cls, value: Any, *, key: str, stdev: Any = None, allow_negative: bool = False) -> TimeSpec:
        """The ``TimeSpec`` for a DLIO time value at ``key``; ``stdev`` is the ``{key}_stdev`` sibling if given.

        >>> TimeSpec.parse(1.0, key="train.computation_time", stdev=0.1).kind
        'normal'
        """
        spec = cls._parse(value, key=key, allow_negative=allow_negative)
        if stdev is not None:
            sd = _NONNEG(f"{key}_stdev", stdev)
            if spec.kind not in ("fixed", "normal"):
                raise ConfigError(f"{key}_stdev: {sd!r} is not allowed with {key}.type {spec.kind}; "
                                  f"expected it only with a fixed or normal time", key=f"{key}_stdev")
            if sd > 0:
                spec = cls("normal", mean=spec.mean, stdev=sd)
        return spec

    @classmethod
    def _parse(cls, value: Any, *, key: str, allow_negative: bool) -> TimeSpec:
        if isinstance(value, TimeSpec):
            return value
        if value is None:
            return cls.fixed(0.0)
        if not isinstance(value, Mapping):
            try:
                seconds = number()(key, value) if allow_negative else _NONNEG(key, value)
            except ConfigError:
                raise fail(key, value, "seconds (a number >= 0), {mean[, stdev]} or {type: normal|uniform|"
                                       "gamma|exponential|poisson, ...}") from None
            return cls.fixed(seconds)
        params = {str(k): v for k, v in value.items()}
        kind = params.pop("type", None)
        if kind is None:
            kind = "normal" if "stdev" in params else "fixed"
            if "mean" not in params:
                raise ConfigError(f"{key}: {dict(value)!r} is not allowed; expected a number, {{mean[, stdev]}} "
                                  f"or {{type: normal|uniform|gamma|exponential|poisson, ...}}", key=key)
        else:
            kind = str(kind).strip().lower()
            if kind not in TIME_KINDS or kind == "fixed":
                raise fail(f"{key}.type", value.get("type"), "one of normal, uniform, gamma, exponential, poisson")
        wanted = ("mean",) if kind == "fixed" else TIME_KINDS[kind]
        for name in params:
            if name not in wanted:
                raise ConfigError(f"{key}.{name}: not used by a {kind} time; expected only "
                                  f"{', '.join(('type', *wanted)) if kind != 'fixed' else 'mean[, stdev]'}",
                                  key=f"{key}.{name}")
        for name in wanted:
            if name not in params:
                raise ConfigError(f"{key}.{name}: missing; a {kind} time needs {', '.join(wanted)}", key=f"{key}.{name}")
        get = {n: params[n] for n in wanted}
        if kind == "fixed":
            return cls.fixed(_NONNEG(f"{key}.mean", get["mean"]))
        if kind == "normal":
            mean, sd = _NONNEG(f"{key}.mean", get["mean"]), _NONNEG(f"{key}.stdev", get["stdev"])
            return cls.fixed(mean) if sd == 0 else cls("normal", mean=mean, stdev=sd)
        if kind == "uniform":
            low, high = _NONNEG(f"{key}.min", get["min"]), _NONNEG(f"{key}.max", get["max"])
            if low > high:
                raise ConfigError(f"{key}: min {low} > max {high}; expected min <= max", key=key)
            return cls("uniform", low=low, high=high)
        if kind == "gamma":
            return cls("gamma", shape=_POSITIVE(f"{key}.shape", get["shape"]), scale=_POSITIVE(f"{key}.scale", get["scale"]))
        if kind == "exponential":
            return cls("exponential", scale=_POSITIVE(f"{key}.scale", get["scale"]))
        return cls("poisson", lam=_NONNEG(f"{key}.lam", get["lam"]))

    # ----------------------------------------------------------------- figures
    @property
    def is_zero(self) -> bool:
        """True when every draw is exactly 0 (nothing to emulate)."""
        if self.kind == "fixed":
            return self.mean == 0.0
        if self.kind == "uniform":
            return self.low == self.high == 0.0
        if self.kind == "poisson":
            return self.lam == 0.0
        return False

    @property
    def mean_s(self) -> float:
        """Expected value of ``sample()`` in seconds (for normal: of the ``abs()``-folded draw)."""
        if self.kind == "fixed":
            return abs(self.mean)
        if self.kind == "normal":
            mu, sd = self.mean, self.stdev
            z = mu / sd  # sd > 0 for a normal; z is inf when mu >> sd, giving mu
            # folded normal: E|X| = sd*sqrt(2/pi)*exp(-z^2/2) + mu*erf(z/sqrt 2)
            return sd * math.sqrt(2 / math.pi) * math.exp(-z * z / 2) + mu * math.erf(z / math.sqrt(2))
        if self.kind == "uniform":
            return (self.low + self.high) / 2
        if self.kind == "gamma":
            return self.shape * self.scale
        if self.kind == "exponential":
            return self.scale
        return self.lam

    def sample(self, rng: np.random.Generator, n: int | None = None) -> float | np.ndarray:
        """One draw (``float``) or ``n`` draws (``ndarray``), all >= 0 as in DLIO (``abs`` of negative draws)."""
        import numpy as np

        size = None if n is None else int(n)
        if self.kind == "fixed":
            value = abs(self.mean)
            return value if size is None else np.full(size, value)
        if self.kind == "normal":
            draws = rng.normal(self.mean, self.stdev, size)
        elif self.kind == "uniform":
            draws = rng.uniform(self.low, self.high, size)
        elif self.kind == "gamma":
            draws = rng.gamma(self.shape, self.scale, size)
        elif self.kind == "exponential":
            draws = rng.exponential(self.scale, size)
        else:
            draws = rng.poisson(self.lam, size)
        if size is None:
            return float(abs(draws))
        return np.abs(np.asarray(draws, dtype=np.float64))

    def to_config(self) -> float | dict[str, Any]:
        """The DLIO spelling: a number, ``{mean, stdev}`` for normal, else ``{type, ...}``."""
        if self.kind == "fixed":
            return self.mean
        if self.kind == "normal":
            return {"mean": self.mean, "stdev": self.stdev}
        if self.kind == "uniform":
            return {"type": "uniform", "min": self.low, "max": self.high}
        if self.kind == "gamma":
            return {"type": "gamma", "shape": self.shape, "scale": self.scale}
        if self.kind == "exponential":
            return {"type": "exponential", "scale": self.scale}
        return {"type": "poisson", "lam": self.lam}

    def __float__(self) -> float:
        return self.mean_s

    def __repr__(self) -> str:
        used = {"fixed": ("mean",), "normal": ("mean", "stdev"), "uniform": ("low", "high"),
                "gamma": ("shape", "scale"), "exponential": ("scale",), "poisson": ("lam",)}[self.kind]
        return f"TimeSpec({self.kind!r}, {', '.join(f'{n}={getattr(self, n)!r}' for n in used)})"
