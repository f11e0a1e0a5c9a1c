"""The methods a comparison trains: a distillation mode, at the config's lambda or at one of a sweep."""
from __future__ import annotations

import dataclasses
from typing import Sequence

from pfd_tf.config import Config, ConfigError, Mode, TermConfig

# Modes that need a feature with role: privileged (their teacher reads it).
PRIVILEGED_MODES = (Mode.LUPI, Mode.PFD, Mode.PFD_MD)


@dataclasses.dataclass(frozen=True)
class Method:
    """`mode` trained with distill.lambda = `lambda_` (None: the config's lambda)."""

    mode: Mode
    lambda_: float | None = None

    @property
    def name(self) -> str:
        return self.mode.value if self.lambda_ is None else f"{self.mode.value} λ={self.lambda_:g}"

    @property
    def slug(self) -> str:
        """The method's part of a run directory's name."""
        return self.mode.value if self.lambda_ is None else f"{self.mode.value}-lambda{self.lambda_:g}"

    def overrides(self, terms: Sequence[TermConfig] = ()) -> list[str]:
        """The `--set` items that make the base config this method.

        `terms`: the base config's `distill.terms` as written (empty for a
        shorthand config).  With a list, the baseline drops it (no teacher,
        no term) and a lambda of the sweep is the weight of its soft-label
        terms (`distill.lambda` is the list's shorthand, refused beside it).
        """
        # `teachers`: the config's own teachers: list, left as it is.
        out = [] if self.mode is Mode.TEACHERS else [f"distill.mode={self.mode.value}"]
        if terms and self.mode is Mode.BASELINE:
            out.append("distill.terms=[]")
        if self.lambda_ is not None:
            out += _lambda_overrides(self.lambda_, terms)
        return out


def _lambda_overrides(lambda_: float, terms: Sequence[TermConfig]) -> list[str]:
    if not terms:
        return [f"distill.lambda={lambda_!r}"]
    soft = [i for i, term in enumerate(terms) if term.kind == "soft_label"]
    if not soft:
        raise ConfigError("--lambdas: the config's distill.terms has no soft_label term whose weight a lambda "
                          "could set")
    return [f"distill.terms.{i}.weight={lambda_!r}" for i in soft]


def config_lambda(config: Config) -> float:
    """The config's own lambda: its first soft-label term's weight where it lists `distill.terms`."""
    soft = [term.weight for term in config.distill.terms if term.kind == "soft_label"]
    return soft[0] if soft else config.distill.lambda_


def parse_modes(text: str, config: Config) -> list[Mode]:
    """`baseline,pfd` -> modes; the empty default: the baseline and every mode the config can train."""
    if not text:
        # The baseline, every preset the data allows, and the config's teachers: list when it has one.
        return [m for m in Mode if (m not in PRIVILEGED_MODES or config.privileged_features)
                and (m is not Mode.TEACHERS or config.teachers)]
    modes = []
    for item in (i.strip() for i in text.split(",") if i.strip()):
        try:
            mode = Mode(item)
        except ValueError:
            choices = ", ".join(m.value for m in Mode)
            raise ConfigError(f"--modes: unknown mode {item!r} (choose from: {choices})") from None
        if mode in PRIVILEGED_MODES and not config.privileged_features:
            raise ConfigError(f"--modes: {item} needs a feature with role: privileged; the config has none")
        if mode is Mode.TEACHERS and not config.teachers:
            raise ConfigError("--modes: teachers trains the config's teachers: list; the config has none")
        modes.append(mode)
    if Mode.BASELINE not in modes:
        modes.insert(0, Mode.BASELINE)  # every result is a difference from it
    return list(dict.fromkeys(modes))


def parse_floats(text: str, key: str) -> list[float]:
    values = []
    for item in (i.strip() for i in text.split(",") if i.strip()):
        try:
            values.append(float(item))
        except ValueError:
            raise ConfigError(f"{key}: {item!r} is not a number") from None
    return values


def methods_for(modes: Sequence[Mode], lambdas: Sequence[float], config: Config) -> list[Method]:
    """Each mode at the config's lambda, then PFD at each lambda of the sweep (Table 6 of the paper).

    A lambda equal to the config's is the PFD run itself and is not trained twice.
    """
    for lam in lambdas:
        if not 0.0 <= lam <= 1.0:
            raise ConfigError(f"--lambdas: {lam:g} is not in [0, 1]")
    if lambdas and not config.privileged_features:
        raise ConfigError("--lambdas: a PFD lambda sweep needs a feature with role: privileged")
    methods = [Method(m) for m in modes]
    if lambdas and Mode.PFD not in modes:
        methods.append(Method(Mode.PFD))
    methods += [Method(Mode.PFD, lam) for lam in lambdas if lam != config_lambda(config)]
    return methods
