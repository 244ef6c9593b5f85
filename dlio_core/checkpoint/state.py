"""What each rank writes in one checkpoint: file names and byte counts, by DLIO's rules, without allocating.

DLIO builds every tensor in host memory before writing (``checkpointing/base_checkpointing.py``); we only
do the arithmetic, so a 15 TiB ``llama3_1t`` checkpoint is sized in microseconds. The rules (DLIO HEAD):

- Ranks: ``tp = rank % TP``, ``pp = (rank // TP) % PP``, ``mp = rank % (TP*PP)``, ``dp = rank // (TP*PP)``.
  ``DP = world // (TP*PP)``; in ``checkpoint.mode: subset`` ``DP = model.parallelism.data`` and the ranks
  that exist write their share of that larger job.
- Writers: with ZeRO 0 only ranks ``< TP*PP`` write (one data-parallel replica); otherwise every rank.
- Model tensor (``model.type`` not ``transformer`` and ``model_size_bytes > 0``): one int8 tensor of
  ``model_size_bytes`` in ``model_states-{rank}.pt`` (the CNN case: unet3d, bert).
- Layers (``num_layers > 0``): layers ``0..L+2`` (0 = embedding, 1..L transformer blocks, L+1 = lm_head,
  L+2 = final norm) split over pipeline stages (remainder to the first stages; stage 0 also holds layer 0,
  the last stage L+1 and L+2). Matrices are divided by TP; with ZeRO 3 everything also by DP. Bytes use
  ``model_datatype``. Files: ZeRO 1/2 -> only DP rank 0 writes, ``layer_{l}-model_{mp}_model_states.pt``
  per layer when PP > 1, else one ``model_{mp}_model_states.pt``; ZeRO 0/3 -> one
  ``zero_pp_rank_{dp}_mp_rank_{mp}_model_states.pt``.
- Optimizer (``num_layers > 0``): ``n = N // (DP*TP*PP)`` parameters per rank (ZeRO >= 1) or ``N // (TP*PP)``
  (ZeRO 0); three groups of ``n`` plus three of ``hidden*5`` elements of ``optimizer_datatype`` in
  ``zero_pp_rank_{dp}_mp_rank_{mp}_optim_states.pt`` -- 12 bytes per parameter in fp32.
- Legacy ``layer_parameters`` / ``optimization_groups`` (megatron configs) replace the formula: each layer
  of the rank's stage holds ``p // TP`` int8 elements per listed entry; the optimizer holds ``a``, ``b`` and
  a ``combined`` int8 tensor, i.e. ``3 * sum(groups)`` bytes.

File sizes are the tensor bytes alone: our plain writer has no ``torch.save`` framing (a few KiB per file).
The global size counts what is written; DLIO's logged size agrees except for ZeRO 2 (DLIO also counts the
model replicas of DP ranks > 0, which it never writes) and the legacy lists (DLIO counts 0 for them).

Example (Llama 3 8B, MLPerf's CLOSED 8 processes, ZeRO 3):
    >>> from dlio_core.config import load_config
    >>> plan = CheckpointPlan.from_config(load_config("llama3_8b"), world=8)
    >>> round(plan.total_bytes / 2**30, 1)
    104.7
    >>> plan.rank_files(7)  # doctest: +NORMALIZE_WHITESPACE
    [('zero_pp_rank_7_mp_rank_0_model_states.pt', 2007565312),
     ('zero_pp_rank_7_mp_rank_0_optim_states.pt', 12045637632)]
    >>> plan.folder(1, 3)
    'global_epoch1_step3'
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from dlio_core.config.errors import ConfigError

__all__ = ["ModelShape", "CheckpointPlan", "FileSpec", "dtype_bytes", "num_parameters", "EXTENSION"]

# DLIO's pt_save mechanism names files ``{suffix}.pt``; the plain writer keeps the names so a directory
# listing looks the same to the storage under test.
EXTENSION = "pt"

_DTYPE_BYTES = {"int8": 1, "uint8": 1, "fp16": 2, "bf16": 2, "fp32": 4, "fp64": 8}


def dtype_bytes(name: Any) -> int:
    """Bytes per element of a DLIO datatype name (``fp16`` -> 2).

    >>> dtype_bytes("bf16"), dtype_bytes("fp32")
    (2, 4)
    """
    key = str(getattr(name, "value", name)).lower()
    try:
        return _DTYPE_BYTES[key]
    except KeyError:
        raise ConfigError(f"model datatype {key!r} is not allowed; expected one of {', '.join(_DTYPE_BYTES)}",
                          key="model.model_datatype") from None


@dataclass(frozen=True)
class ModelShape:
    """The config values that size a checkpoint (``model.*`` and ``checkpoint.mode``), checked for sense.

    ``data`` is ``model.parallelism.data`` (-1: unset); ``mode`` is ``default`` or ``subset``.
    """

    model_type: str | None = None
    model_size_bytes: int = 10240
    model_datatype: str = "fp16"
    optimizer_datatype: str = "fp32"
    num_layers: int = -1
    layer_parameters: tuple[int, ...] = ()
    optimization_groups: tuple[int, ...] = ()
    vocab_size: int = 32000
    hidden_size: int = 2048
    ffn_hidden_size: int = 8192
    num_attention_heads: int = 32
    num_kv_heads: int = 8
    tensor: int = 1
    pipeline: int = 1
    data: int = -1
    zero_stage: int = 0
    mode: str = "default"

    @classmethod
    def from_config(cls, cfg: Any) -> ModelShape:
        """Read ``cfg.model`` and ``cfg.checkpoint.mode`` of a :class:`~dlio_core.config.RunConfig`."""
        m, par, tr = cfg.model, cfg.model.parallelism, cfg.model.transformer
        return cls(
            model_type=m.type, model_size_bytes=int(m.model_size_bytes),
            model_datatype=str(getattr(m.model_datatype, "value", m.model_datatype)),
            optimizer_datatype=str(getattr(m.optimizer_datatype, "value", m.optimizer_datatype)),
            num_layers=int(m.num_layers), layer_parameters=tuple(m.layer_parameters),
            optimization_groups=tuple(m.optimization_groups), vocab_size=tr.vocab_size, hidden_size=tr.hidden_size,
            ffn_hidden_size=tr.ffn_hidden_size, num_attention_heads=tr.num_attention_heads,
            num_kv_heads=tr.num_kv_heads, tensor=par.tensor, pipeline=par.pipeline, data=par.data,
            zero_stage=par.zero_stage, mode=str(getattr(cfg.checkpoint.mode, "value", cfg.checkpoint.mode)))

    @property
    def is_transformer(self) -> bool:
        return (self.model_type or "").lower() == "transformer"


def num_parameters(s: ModelShape) -> int:
    """Parameters of a Llama-style model (DLIO's ``get_num_parameters``; 0 when ``num_layers <= 0``).

    Embedding and lm_head ``vocab*h`` each; per layer two norms ``h``, QKV ``h*(h + 2*kv)`` with
    ``kv = h // heads * kv_heads`` (grouped-query attention), output ``h*h``, gated MLP ``3*h*ffn``; final norm ``h``.

    >>> num_parameters(ModelShape(num_layers=32, vocab_size=128256, hidden_size=4096, ffn_hidden_size=14336))
    8030261248
    """
    if s.num_layers <= 0:
        return 0
    h, ffn = s.hidden_size, s.ffn_hidden_size
    kv = h // s.num_attention_heads * s.num_kv_heads
    per_layer = h + h * (h + 2 * kv) + h * h + h + 2 * ffn * h + ffn * h
    return 2 * s.vocab_size * h + per_layer * s.num_layers + h


@dataclass(frozen=True)
class FileSpec:
    """One file of one rank: name (relative to the checkpoint folder), size, what it holds, element type."""

    name: str
    nbytes: int
    part: str  # "model" (model or layer states) or "optimizer"
    dtype: str  # DLIO datatype name of its elements (what randomize_tensor: False fills with ones)
    layers: tuple[int, ...] = ()  # the layers a model file holds (none: the CNN tensor or optimizer states)
    one_layer: bool = False  # a ``layer_{l}-...`` file: that layer's tensors at the top, not keyed by layer


class CheckpointPlan:
    """The files of every rank for a model shape and world size.

    Args:
        shape: what sizes the checkpoint.
        world: number of ranks in this run.

    Raises ``ConfigError`` (naming the key and the fix) for layouts DLIO rejects: ZeRO 3 with pipeline
    parallelism, fewer layers than pipeline stages, a world that is not a multiple of TP*PP, and subset
    mode without ``model.parallelism.data`` or with more ranks than the virtual job has.

    Example:
        >>> plan = CheckpointPlan(ModelShape(model_type="cnn", model_size_bytes=499153191), world=4)
        >>> plan.rank_files(0), plan.rank_files(1), plan.total_bytes
        ([('model_states-0.pt', 499153191)], [], 499153191)
    """

    def __init__(self, shape: ModelShape, world: int = 1) -> None:
        if world < 1:
            raise ValueError(f"world size must be >= 1, got {world}")
        self.shape = shape
        self.world = world
        s = shape
        self.mp = s.tensor * s.pipeline
        self.notes: tuple[str, ...] = ()
        if s.num_layers > 0 and s.num_layers < s.pipeline:
            raise ConfigError(f"model.num_layers: {s.num_layers} is fewer than model.parallelism.pipeline "
                              f"({s.pipeline}); every pipeline stage needs a layer", key="model.num_layers")
        if s.zero_stage == 3 and s.pipeline > 1:
            raise ConfigError(f"model.parallelism.zero_stage: ZeRO 3 cannot be combined with pipeline parallelism "
                              f"({s.pipeline}); set model.parallelism.pipeline=1 or zero_stage<=2",
                              key="model.parallelism.zero_stage")
        if s.mode == "subset":
            if s.data <= 0:
                raise ConfigError(f"model.parallelism.data: {s.data} (unset) but checkpoint.mode is subset, which "
                                  "needs the data parallelism of the full job; set it", key="model.parallelism.data")
            if world > s.data * self.mp:
                job = s.data * self.mp
                raise ConfigError(f"checkpoint.mode: subset with {world} ranks is larger than the job it is a subset "
                                  f"of (data {s.data} x tensor {s.tensor} x pipeline {s.pipeline} = {job}); "
                                  "raise model.parallelism.data or use checkpoint.mode=default", key="checkpoint.mode")
            self.dp = s.data
        else:
            if world % self.mp:
                raise ConfigError(f"model.parallelism: {world} ranks is not a multiple of tensor x pipeline "
                                  f"({s.tensor} x {s.pipeline} = {self.mp}); run a multiple of {self.mp} ranks",
                                  key="model.parallelism")
            self.dp = world // self.mp
            if s.data > 0 and s.data != self.dp:
                # The stock MLPerf llama3 configs carry data: 1 in default mode (DLIO HEAD would refuse them).
                self.notes = (f"model.parallelism.data={s.data} has no effect in checkpoint.mode default; data "
                              f"parallelism is world / (tensor x pipeline) = {self.dp} (set checkpoint.mode=subset "
                              "to write the share of a larger job)",)
        self.num_parameters = num_parameters(s)

    @classmethod
    def from_config(cls, cfg: Any, world: int = 1) -> CheckpointPlan:
        """The plan for a :class:`~dlio_core.config.RunConfig` run on ``world`` ranks."""
        return cls(ModelShape.from_config(cfg), world)

    # ------------------------------------------------------------------ names
    @staticmethod
    def folder(epoch: int, step: int) -> str:
        """The checkpoint's folder under ``checkpoint.checkpoint_folder`` (DLIO: ``global_epoch{E}_step{S}``)."""
        return f"global_epoch{epoch}_step{step}"

    # ------------------------------------------------------------------ topology
    def coordinates(self, rank: int) -> dict[str, int]:
        """``tp``, ``pp``, ``mp`` and ``dp`` rank of ``rank``.

        >>> CheckpointPlan(ModelShape(tensor=2, pipeline=2), world=8).coordinates(5)
        {'tp': 1, 'pp': 0, 'mp': 1, 'dp': 1}
        """
        s = self.shape
        return {"tp": rank % s.tensor, "pp": (rank // s.tensor) % s.pipeline, "mp": rank % self.mp,
                "dp": rank // self.mp}

    def layer_range(self, pp_rank: int) -> range:
        """Layer indices held by pipeline stage ``pp_rank`` (DLIO's ``get_layer_index``).

        >>> list(CheckpointPlan(ModelShape(num_layers=5, pipeline=2), world=2).layer_range(1))
        [4, 5, 6, 7]
        """
        s = self.shape
        per, rem = divmod(s.num_layers, s.pipeline)
        if pp_rank < rem:
            start = pp_rank * (per + 1) + 1
            end = start + per
        else:
            start = rem * (per + 1) + (pp_rank - rem) * per + 1
            end = start + per - 1
        if not s.layer_parameters:  # the legacy lists keep DLIO's older, unadjusted ranges
            if pp_rank == s.pipeline - 1:
                end = s.num_layers + 2
            if pp_rank == 0:
                start = 0
        return range(start, end + 1)

    def layer_counts(self, layer: int) -> list[tuple[int, int]]:
        """``(index, elements)`` of one layer's tensors on one rank, DLIO's ``get_layer_parameters`` order
        (after TP and, for ZeRO 3, DP sharding); empty tensors left out, indices kept as DLIO numbers them.

        >>> CheckpointPlan(ModelShape(num_layers=2, hidden_size=8, vocab_size=10, ffn_hidden_size=16,
        ...     num_attention_heads=2, num_kv_heads=1), world=1).layer_counts(4)
        [(0, 8)]
        """
        s = self.shape
        if s.layer_parameters:
            return [(i, p // s.tensor) for i, p in enumerate(s.layer_parameters) if p // s.tensor > 0]
        sf = self.dp if s.zero_stage == 3 else 1
        h, tp, L = s.hidden_size, s.tensor, s.num_layers
        if layer in (0, L + 1):
            counts = [h * s.vocab_size // tp // sf]
        elif layer == L + 2:
            counts = [h // sf]
        else:
            kv = h // s.num_attention_heads * s.num_kv_heads
            counts = [h // sf, h * (h + 2 * kv) // tp // sf, h * h // tp // sf, h // sf,
                      h * 2 * s.ffn_hidden_size // tp // sf, h * s.ffn_hidden_size // tp // sf]
        return [(i, c) for i, c in enumerate(counts) if c > 0]

    def layer_bytes(self, layer: int) -> int:
        """Bytes of one layer's tensors on one rank (after TP, and for ZeRO 3 DP, sharding)."""
        width = 1 if self.shape.layer_parameters else dtype_bytes(self.shape.model_datatype)  # legacy lists: int8
        return sum(c for _, c in self.layer_counts(layer)) * width

    def optimizer_groups(self) -> list[int]:
        """Element counts of one writing rank's optimizer groups (DLIO's ``get_optimization_groups``): three
        pairs ``[n, hidden*5]`` of ``optimizer_datatype``, or the legacy ``optimization_groups`` list."""
        s = self.shape
        if s.optimization_groups:
            return list(s.optimization_groups)
        if s.num_layers <= 0:
            return []
        n = self.num_parameters // (self.dp * self.mp if s.zero_stage > 0 else self.mp)
        return [n, s.hidden_size * 5] * 3 if n > 0 else []

    def optimizer_bytes(self) -> int:
        """Bytes of one writing rank's optimizer states (0 when there are none)."""
        groups = [g for g in self.optimizer_groups() if g > 0]
        if self.shape.optimization_groups:
            return 3 * sum(groups)  # a, b and combined, int8
        return sum(groups) * dtype_bytes(self.shape.optimizer_datatype)

    # ------------------------------------------------------------------ files
    def writes(self, rank: int) -> bool:
        """Whether ``rank`` writes anything (ZeRO 0: only the first data-parallel replica)."""
        return self.shape.zero_stage != 0 or rank < self.mp

    def rank_specs(self, rank: int) -> list[FileSpec]:
        """Every file ``rank`` writes, with sizes, in DLIO's write order (model, layers, optimizer)."""
        if not 0 <= rank < self.world:
            raise ValueError(f"rank {rank} is outside the world of {self.world} ranks")
        if not self.writes(rank):
            return []
        s, c = self.shape, self.coordinates(rank)
        out: list[FileSpec] = []
        if s.model_size_bytes > 0 and not s.is_transformer:
            out.append(FileSpec(f"model_states-{rank}.{EXTENSION}", s.model_size_bytes, "model", "int8"))
        if s.num_layers > 0:
            layer_dtype = "int8" if s.layer_parameters else s.model_datatype
            layers = self.layer_range(c["pp"])
            if s.zero_stage in (1, 2):
                if c["dp"] == 0:
                    if s.pipeline > 1:
                        out.extend(FileSpec(f"layer_{layer}-model_{c['mp']}_model_states.{EXTENSION}",
                                            self.layer_bytes(layer), "model", layer_dtype, (layer,), True)
                                   for layer in layers)
                    else:
                        out.append(FileSpec(f"model_{c['mp']}_model_states.{EXTENSION}",
                                            sum(self.layer_bytes(layer) for layer in layers), "model", layer_dtype,
                                            tuple(layers)))
            else:
                out.append(FileSpec(f"zero_pp_rank_{c['dp']}_mp_rank_{c['mp']}_model_states.{EXTENSION}",
                                    sum(self.layer_bytes(layer) for layer in layers), "model", layer_dtype,
                                    tuple(layers)))
        opt = self.optimizer_bytes()
        if opt > 0:
            opt_dtype = "int8" if s.optimization_groups else s.optimizer_datatype
            out.append(FileSpec(f"zero_pp_rank_{c['dp']}_mp_rank_{c['mp']}_optim_states.{EXTENSION}", opt,
                                "optimizer", opt_dtype))
        return [f for f in out if f.nbytes > 0]

    def rank_files(self, rank: int) -> list[tuple[str, int]]:
        """``(name, nbytes)`` of every file ``rank`` writes; names are relative to the checkpoint folder."""
        return [(f.name, f.nbytes) for f in self.rank_specs(rank)]

    def rank_bytes(self, rank: int) -> int:
        """Bytes ``rank`` writes per checkpoint."""
        return sum(f.nbytes for f in self.rank_specs(rank))

    def part_bytes(self, part: str) -> int:
        """Bytes of one part (``model`` or ``optimizer``) summed over all ranks."""
        return sum(f.nbytes for r in range(self.world) for f in self.rank_specs(r) if f.part == part)

    @property
    def total_bytes(self) -> int:
        """Bytes of one checkpoint summed over all ranks (DLIO's ``checkpoint_size``, in bytes)."""
        return sum(self.rank_bytes(r) for r in range(self.world))

    def describe(self) -> list[str]:
        """DLIO-style log lines: parameter count and model / optimizer / total sizes in GiB ("GB" as DLIO)."""
        gib = 1024.0**3
        model, opt = self.part_bytes("model"), self.part_bytes("optimizer")
        tag = " (subset)" if self.shape.mode == "subset" else ""
        lines = [f"Total number of parameters in the model: {self.num_parameters}"] if self.num_parameters else []
        lines += [f"Model size: {model / gib:.6f} GB{tag}", f"Optimizer state size: {opt / gib:.6f} GB{tag}",
                  f"Total checkpoint size: {(model + opt) / gib:.6f} GB{tag}"]
        return lines
