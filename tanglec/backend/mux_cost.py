"""The cost model behind ``strategy="auto"``: which multiplexer strategy a layer gets, and when XLA pays off.

Calibrated with ``bench/mux_sweep.py`` and ``bench/train_rate.py`` (numbers in the docstrings below).
It needs no TensorFlow: the compiler decides before it builds anything. On CPU without XLA, a
multiplexer whose branches hold ``mux_timing.MEASURE_MIN_PARAMETERS`` weights or more gets the strategy
measured fastest on the machine itself instead (``tanglec.backend.mux_timing``): how they rank there
depends on the CPU more than this table can say. The table decides for smaller multiplexers (where the
choice costs microseconds), on GPU and under XLA.
"""
from __future__ import annotations

# Cost-model constants; see choose_strategy's docstring for the measurements.
_CPU_ROUTED = "partition"  # on CPU the best per-branch strategy in every measured cell (or tied)
_CPU_STACK_BRANCHES = range(8, 33)  # where stacked won or tied on CPU (choose_strategy's docstring)
_GPU_WHERE_MAX_WASTED_FLOPS = 1e8  # GPU: NOT calibrated (no GPU was available), an estimate
_XLA_WHERE_MAX_WASTED_FLOPS = 1e7  # CPU + XLA: ~1 ms of wasted compute at most; seed spec: 7e5

# XLA (CPU): a small model's chunk of steps runs as one XLA program (tanglec.backend.chunks.ChunkTrainer)
# when the run is long enough to earn back the compilation. Per-op overhead is what XLA removes,
# and it dominates only small models: on the seed spec (15k parameters, 2 cores) a step took
# ~0.3-0.4 ms as where + XLA against ~0.8 ms as partition without XLA, in the same chunked loop,
# and compiling cost ~1.3 s more (bench/train_rate.py, and `tanglec compile` of 30 steps: 3.9 s
# against 2.6 s of training). Break-even: ~3,000 steps. From width 256, XLA loses anyway
# (choose_strategy's docstring). partition's data-dependent shapes stay in the graph executor.
XLA_MAX_PARAMETERS = 200_000
XLA_MIN_STEPS = 3_000
XLA_STRATEGIES = {"where", "gather"}


def xla_pays_off(parameters: int, steps: int, device: str = "CPU") -> bool:
    """Whether training should compile its chunks with XLA: a small model and a long run."""
    if "GPU" in device.upper():
        return False  # not measured here (no GPU); the graph executor is the safe default
    return parameters <= XLA_MAX_PARAMETERS and steps >= XLA_MIN_STEPS


def choose_strategy(
    n_branches: int, batch_size: int, branch_flops: float, device: str = "CPU", xla: bool = False,
    stackable: bool = False,
) -> str:
    """The ``auto`` choice: returns one of ``mux.STRATEGIES``.

    ``stackable``: the branches are distinct modules of one Dense chain, used nowhere else
    (``stacked`` is possible). On CPU, ``stacked`` for ``_CPU_STACK_BRANCHES`` (8 to 32)
    branches: one batched matmul per layer instead of K, one fused optimizer update per layer
    instead of K. Outside it, ``partition``: at K = 2 the grouping costs more than the two matmuls
    it merges, and at K = 64 the padding to the largest branch (random routing, ~2.5x the rows at
    batch 256) loses to routing each branch's exact rows. ``bench/mux_sweep.py --quick``, Adam,
    W = 256, ratio to one branch (2026-12-02, load average 7-9, so single cells are noisy;
    ``bench/results/mux_sweep_adam_stacked_quick.json``)::

        routing   K    B     partition  gather  stacked  limit
        random    2    32    0.46       0.51    0.34     0.43
        random    8    256   0.28       0.14    0.35     0.45
        random    32   32    0.03       0.03    0.05     0.04
        random    32   256   0.09       0.07    0.07     0.13
        random    64   256   0.04       0.03    0.02     0.06
        balanced  8    256   0.28       0.36    0.44     0.45
        balanced  32   256   0.09       0.08    0.13     0.12
        balanced  64   256   0.04       0.03    0.03     0.05

    (``limit``: one branch's forward/backward plus the optimizer's update of all K branches'
    weights, what no strategy with a dense optimizer can skip.)

    ``branch_flops`` is the forward cost of one branch for *one* example
    (2 x multiply-adds; a Dense(a -> b) layer is 2ab). ``device`` is ``"CPU"``
    or ``"GPU"`` (``"/device:GPU:0"`` style names are accepted). ``xla``: training
    will run the model as one XLA program (``xla_pays_off``: a small model and a
    long run; ``tanglec.backend.chunks.ChunkTrainer``).

    Small models under XLA (CPU): ``where`` when its wasted work
    ``(n - 1) * B * f`` is at most ``_XLA_WHERE_MAX_WASTED_FLOPS``. XLA fuses
    the branches and the selects into a few kernels, which partition's
    data-dependent shapes prevent; on the seed spec (2 x 2 branches, 15k
    parameters, B = 64) a step took ~130 us as where + XLA against ~500 us as
    partition in the same loop without XLA (bench/train_rate.py); without
    XLA, partition stays the choice.

    Cost model. Per training step, with n branches, batch B, f = branch_flops::

        where      ~ n * (o_branch + o_where) + 3 * n * B * f * c    (every branch, every row)
        partition  ~ n * (o_branch + o_part) + o_route + 3 * B * f * c
        gather     ~ n * (o_branch + o_gather) + o_route' + 3 * B * f * c

    plus a term common to all three (and to a model without routing) that
    grows with the n-fold parameter count: reading every branch's weights,
    writing their gradients and updating them. ``where`` saves routing
    operations but wastes ``(n - 1) * B * f`` FLOPs per forward pass; it can
    only win when its per-branch overhead ``o_where`` is smaller than
    ``o_part`` and the wasted work is negligible.

    Calibration on CPU: 2-core AMD EPYC VM shared with other jobs (load
    average 5-10 during the runs), TF 2.21 / Keras 3.15, graph mode, SGD.
    Branch = Dense(W, relu) -> Dense(W) (f = 4 W^2); every example routed to a
    uniformly random branch. ``bench/mux_sweep.py`` full sweep, W = 256, ratio
    to the steps/s of one plain branch on the same batch, "wall clock / CPU
    time" (best of 4 rounds; the CPU-time ratio is the cross-check that other
    jobs barely disturb; ``noroute`` = the K branches on fixed B/K slices, no
    routing ops at all, i.e. the ceiling for any strategy)::

        K     B     where        partition    gather       gather+XLA   noroute
        2     32    0.52 / 0.49  0.76 / 1.08  1.00 / 1.09  0.84 / 0.96  1.24 / 1.40
        8     32    0.14 / 0.13  0.29 / 0.41  0.22 / 0.40  0.12 / 0.21  0.16 / 0.30
        32    32    0.02 / 0.03  0.06 / 0.11  0.07 / 0.11  0.01 / 0.04  0.06 / 0.08
        2     256   0.36 / 0.50  0.58 / 0.81  0.51 / 0.75  0.29 / 0.48  0.63 / 0.87
        8     256   0.10 / 0.13  0.36 / 0.42  0.40 / 0.44  0.06 / 0.13  0.29 / 0.39
        32    256   0.02 / 0.03  0.13 / 0.18  0.12 / 0.18  0.01 / 0.02  0.11 / 0.21
        2     4096  0.35 / 0.48  0.82 / 0.90  0.71 / 0.87  -            0.92 / 0.97
        8     4096  0.07 / 0.12  1.12 / 0.82  0.53 / 0.74  -            0.44 / 0.79
        32    4096  0.02 / 0.03  0.57 / 0.61  0.63 / 0.59  -            0.94 / 0.64

    Re-measured on a quiet machine (load average ~1, 2026-12-01, best of 6
    rounds; table in README.md): ``partition`` best in 14 of 15 cells by wall
    clock (``gather`` by 1.5 % at K=16, B=4096), ``auto`` within 10 % of the
    best in 15 of 15; K=32, B=256: 0.34x, at the no-routing ceiling (0.37x).

    Under load, by CPU time ``partition`` is best in 12 of the 15 cells of the sweep and
    within 5 % of ``gather`` in 14 (12 % behind at K=4, B=32); by wall clock
    the two trade places with the noise (partition 8 cells, gather 7), and no
    ``gather`` lead survived re-measurement. ``where`` loses
    everywhere: it costs ~K x one branch. Tiny branches, where compute is
    nothing and per-op overhead is everything (micro-benchmark of the same
    train step, microseconds per step, best of 5 rounds)::

        W    B    K    one    where   partition   gather
        4    1    2    23     42      37          43
        4    8    2    28     54      51-55       59
        4    8    4    31     111     81          107
        8    32   2    30     65      59          71
        16   32   4    34     123     120         153
        32   32   2    59     115     94          108

    ``where`` (already reduced to 1 Equal + 2 Select ops per branch) is still
    0-40 % slower than ``partition`` even at W=4. So on CPU:

    * n == 1: ``where`` (nothing to route; the branch runs once);
    * n >= 2: ``partition``, whatever B and f.

    The key cell K=32, B=256, W=256 reaches ~0.2x (0.22-0.33x when the
    machine was quieter) and is capped by the no-routing ceiling, not by
    routing: 32 branches are 32x the weights (4.2 M parameters, 17 MB), and
    every step reads them twice, writes their gradients and updates them,
    with only 8 rows per branch to amortise that traffic over. Tried and
    rejected: sorting rows + one gather/split (same speed), per-branch
    scatter/accumulate (slower at large B), fewer/more TF threads (slower), XLA
    (below). Stacked weights + padded batched matmul reached only 0.10-0.14x under SGD; with
    Adam, whose update of the K weight sets is fused per stacked tensor, it is ``stacked``.

    GPU (not calibrated: no GPU was available): routing needs a device->host
    sync for the data-dependent shapes, so ``where`` is preferred while the
    wasted work ``(n - 1) * B * f`` is at most 1e8 FLOPs (tens of
    microseconds on a current GPU), else ``gather`` (it only uses ops with
    GPU and XLA kernels).

    XLA (``jit_compile=True``) is the compiler's separate decision. On CPU it
    makes tiny models 2-4x faster (W=4, B=8, K=2: one 8 us, where 14 us,
    gather 15 us, partition 16 us, vs 28-59 us without; W=16, B=32, K=2:
    one 16, where 37, gather 40 us) but data-dependent shapes are padded to
    the whole batch, so from W=64 or K>=8 it loses (gather+XLA at W=256 is
    0.1-0.8x of plain gather, 0.01x at K=32, B=256). Keras already turns XLA
    off on CPU-only machines (``jit_compile="auto"``).
    """
    if n_branches < 1:
        raise ValueError(f"n_branches must be >= 1, got {n_branches}")
    if batch_size < 0 or branch_flops < 0:
        raise ValueError("batch_size and branch_flops must be >= 0")
    if n_branches == 1:
        return "where"
    kind = device.upper().replace("/DEVICE:", "").split(":")[0].strip("/")
    if xla and kind == "CPU" and (n_branches - 1) * batch_size * branch_flops <= _XLA_WHERE_MAX_WASTED_FLOPS:
        return "where"
    if kind == "GPU":
        wasted = (n_branches - 1) * batch_size * branch_flops
        return "where" if wasted <= _GPU_WHERE_MAX_WASTED_FLOPS else "gather"
    if stackable and n_branches in _CPU_STACK_BRANCHES:
        return "stacked"
    return _CPU_ROUTED
