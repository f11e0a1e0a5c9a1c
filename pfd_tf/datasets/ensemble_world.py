"""The ensemble world's parameters: the frozen :class:`EnsembleWorld`, its 20 fields, which of them are
hashed, and the orders of interaction each part of the click logit uses.

The generative story is in :mod:`pfd_tf.datasets.ensemble`; the config it writes in
:mod:`pfd_tf.datasets.ensemble_config`.
"""
from __future__ import annotations

import dataclasses

from pfd_tf.datasets.sampling import vocab
from pfd_tf.datasets.writer import Column

LABEL = "click"
EMBEDDING_DIM = 16
"""Every field's embedding size: FM, CIN and AutoInt stack the fields as ``[batch, fields, dim]``."""
N_FIELDS = 20
ID_FIELDS = ("c19", "c20")
"""The id-like fields, ``id_cardinality`` values each; the others have ``cardinalities``."""
PAIR_FIELDS = ("c03", "c05", "c08", "c10", "c12", "c14", "c16", "c18", "c19", "c20")
"""The fields of the second-order part: every pair of them interacts (45 pairs)."""
TRIPLES = (("c02", "c09", "c13"), ("c04", "c11", "c15"), ("c06", "c12", "c14"), ("c07", "c10", "c17"))
"""The 3-field crosses of the higher-order part (cardinalities 3x16x50, 5x24x200, 8x32x100, 10x20x1000)."""
VOCABULARY_MAX = 1000
"""Fields with at most this many values are written with their vocabulary, so that no hash
collision blurs a cross (every field of TRIPLES has at most 1,000); larger ones (c18) and the
id-like fields, whatever their size, are hashed into twice their values' count, as the CVR and
CTR worlds' ids."""
DEFAULT_ROWS = 400_000


@dataclasses.dataclass(frozen=True)
class EnsembleWorld:
    """Sizes and scales of the synthetic ensemble world (tune here)."""

    rows: int = DEFAULT_ROWS
    """Number of impressions (CSV rows), all days together."""
    days: int = 8
    """Days of impression logs; the last one is the held-out test day."""
    cardinalities: tuple[int, ...] = (2, 3, 4, 5, 6, 8, 10, 12, 16, 20, 24, 32, 50, 100, 200,
                                      500, 1000, 3000)
    """Number of values of the fields c01 .. c18 (in order)."""
    id_cardinality: int = 20_000
    """Number of values of each id-like field (c19, c20); ``for_rows`` makes it rows // 20."""
    value_zipf: float = 1.0
    """Zipf exponent of every field's value popularity (1: the top value of an id-like field
    of 20,000 values is ~9 % of its impressions)."""

    # --- click logit ---------------------------------------------------------
    first_order_scale: float = 1.0
    """Std of the first-order part (per-field, per-value weights)."""
    field_importance_std: float = 0.5
    """Fields differ in how much their first-order weights matter: field f's weights are
    N(0, 1) times exp(field_importance_std * N(0, 1)), before the part is scaled."""
    second_order_scale: float = 0.8
    """Std of the second-order part (FM's pairwise inner products over PAIR_FIELDS)."""
    pair_dim: int = 4
    """Dimension of the second-order latent vectors."""
    higher_order_scale: float = 0.8
    """Std of the higher-order part (the TRIPLES' products of three factors)."""
    triple_rank: int = 4
    """Number of three-factor products summed per triple."""
    click_rate: float = 0.15
    """Target click rate; the base logit is solved to match it."""

    @classmethod
    def for_rows(cls, rows: int, days: int = 8, **overrides) -> "EnsembleWorld":
        """A world whose id-like fields are sized for ``rows`` impressions (~20 per id on average)."""
        sizes = dict(rows=rows, days=days, id_cardinality=max(100, rows // 20))
        sizes.update(overrides)
        return cls(**sizes)

    def field_cardinalities(self) -> dict[str, int]:
        """``{field: number of values}`` for c01 .. c20."""
        cards = list(self.cardinalities) + [self.id_cardinality] * len(ID_FIELDS)
        return dict(zip(field_names(), cards))

    def validate(self) -> None:
        if self.days < 2:
            raise ValueError(f"days must be >= 2 (train + test days), got {self.days}")
        if self.rows < 10 * self.days:
            raise ValueError(f"rows must be >= 10 * days, got {self.rows}")
        if len(self.cardinalities) != N_FIELDS - len(ID_FIELDS):
            raise ValueError(f"cardinalities must give {N_FIELDS - len(ID_FIELDS)} fields, "
                             f"got {len(self.cardinalities)}")
        if min(self.cardinalities) < 2 or self.id_cardinality < 2:
            raise ValueError("every field needs at least 2 values (cardinalities, id_cardinality)")
        for name in ("first_order_scale", "second_order_scale", "higher_order_scale",
                     "field_importance_std", "value_zipf"):
            if getattr(self, name) < 0:
                raise ValueError(f"{name} must be >= 0, got {getattr(self, name)}")
        if self.pair_dim < 1 or self.triple_rank < 1:
            raise ValueError("pair_dim and triple_rank must be >= 1")
        if self.pair_dim + self.triple_rank > EMBEDDING_DIM:
            raise ValueError(f"pair_dim + triple_rank must be <= {EMBEDDING_DIM} (the embedding "
                             "dimension), or no model of the zoo could express the logit")
        if not 0 < self.click_rate < 1:
            raise ValueError(f"click_rate must be in (0, 1), got {self.click_rate}")


def field_names() -> tuple[str, ...]:
    return tuple(f"c{i:02d}" for i in range(1, N_FIELDS + 1))


def _hashed(name: str, card: int) -> bool:
    return name in ID_FIELDS or card > VOCABULARY_MAX


def ensemble_features(world: EnsembleWorld) -> tuple[Column, ...]:
    """The columns: every field categorical, regular, with EMBEDDING_DIM dims; all but the
    id-like and the largest ones by vocabulary."""
    return tuple(Column(name, "int", "categorical", "regular", "context", EMBEDDING_DIM,
                        None if _hashed(name, card) else vocab(card))
                 for name, card in world.field_cardinalities().items())


def ensemble_hash_buckets(world: EnsembleWorld) -> dict[str, int]:
    """Hash bucket counts (2x the values) of the fields written without a vocabulary."""
    return {name: 2 * card for name, card in world.field_cardinalities().items() if _hashed(name, card)}
