"""The chunked training loop: a chunk of steps per call of one TensorFlow function, up to the next
evaluation, with no Python between steps (train.py runs it for data in memory on one device), and the
chunks of Keras's own loop (tf.distribute, a streamed file)."""
from __future__ import annotations

import keras
import numpy as np
import tensorflow as tf


LONGEST_CHUNK = 100  # steps per call at most, when no evaluation falls sooner (ChunkTrainer)
# A larger model's step costs enough that a call's own ~4 ms doesn't matter: it keeps a call per block
# of `eval_every` steps, so a stop (Ctrl-C, the TUI) waits for at most that many of its steps.
LONG_CHUNKS_MAX_PARAMETERS = 200_000


class ChunkTrainer:
    """Trains a chunk of steps per call: `run(blocks, count)` trains `count` steps in a tf.while_loop
    (one XLA program when `xla`), step i on the rows of indices `blocks[i]`, gathered inside from the
    training arrays held as tensors. A block is `every` steps' batches of indices (`eval_every`); a
    call takes from one block, while every chunk is evaluated, up to `longest` blocks (LONGEST_CHUNK
    steps) once evaluations are sparse (`_Observer.blocks_before_evaluation`); one block for a model of
    more than LONG_CHUNKS_MAX_PARAMETERS weights.

    Why: Keras compiles a single step and loops over `steps_per_execution` outside it, paying the
    launch of every op (and of an XLA program) per step, and a tf.data pipeline that shuffles and
    batches dicts of tensors costs about as much again; on small models these overheads are most of
    the step. A call costs ~4 ms beside its steps on the seed spec here (bench/train_rate.py: a call per
    10 steps 1,550 steps/s, per 100 steps 3,596), and a Keras epoch around each call cost as much again:
    hence calls as long as the evaluations allow, made here rather than by `fit`. Keras also turns
    its own `jit_compile` off under op determinism, which training keeps on; an inner XLA function is
    not affected. Each inner step is `keras.Model.train_step` unchanged (losses, sample weights, loss
    trackers, optimizer), so losses and checkpoints are as with plain `fit`. The optimizer's and
    metrics' variables are built first, from one row's shapes: built in the first trace (Keras's way),
    they make tf.function trace the chunk twice (~5 s of CPU on a small spec here).
    """

    def __init__(self, model: keras.Model, every: int, arrays, xla: bool):
        self.model, self.every, self.xla = model, every, xla
        small = model.count_params() <= LONG_CHUNKS_MAX_PARAMETERS
        self.longest = max(1, LONGEST_CHUNK // every) if small else 1
        tensors = tf.nest.map_structure(tf.constant, arrays)
        model._symbolic_build(data_batch=tf.nest.map_structure(lambda t: t[:1], tensors))  # see the docstring

        def steps(indices, count):
            def body(i):
                model.train_step(tf.nest.map_structure(lambda t: tf.gather(t, indices[i]), tensors))
                return i + 1

            tf.while_loop(lambda i: i < count, body, [tf.constant(0)], maximum_iterations=self.longest * every)

        inner = tf.function(steps, jit_compile=xla)

        def chunk(indices, count):
            model.reset_metrics()  # the chunk's losses are its own steps'
            inner(indices, count)
            return model.get_metrics_result()

        self.chunk = tf.function(chunk, input_signature=[tf.TensorSpec([self.longest * every, None], tf.int64),
                                                         tf.TensorSpec([], tf.int32)])

    def run(self, blocks: list[np.ndarray], count: int) -> dict[str, float]:
        """Train the first `count` steps of `blocks` (at most `longest` of them); the chunk's mean losses."""
        indices = np.concatenate(blocks)
        padding = self.longest * self.every - len(indices)
        indices = np.pad(indices, ((0, padding), (0, 0))) if padding else indices
        logs = self.chunk(indices, np.int32(count))
        return {name: float(value) for name, value in logs.items()}


def chunk_sizes(steps: int, every: int) -> list[int]:
    """The steps of each chunk of a phase of `steps`: `every` each, the last one shorter if need be."""
    return [every] * (steps // every) + ([steps % every] if steps % every else [])


class EpochChunks(keras.callbacks.Callback):
    """Keras's loop (tf.distribute, a streamed file): each epoch is a chunk of `eval_every` steps, its
    batches `steps_per_execution` steps, passed to each listener's `end_chunk`; stop at the phase's last step."""

    def __init__(self, listeners, sizes: list[int]):
        super().__init__()
        self.listeners, self.sizes, self.epoch = listeners, sizes, 0

    def on_epoch_begin(self, epoch, logs=None):
        self.epoch = epoch

    def on_train_batch_end(self, batch, logs=None):
        if batch + 1 >= self.sizes[self.epoch] and self.epoch == len(self.sizes) - 1:
            self.model.stop_training = True

    def on_epoch_end(self, epoch, logs=None):
        for listener in self.listeners:
            listener.end_chunk(epoch, self.sizes[epoch], logs or {})


def train_in_chunks(trainer: ChunkTrainer, blocks, first: int, observer, checkpoint) -> None:
    """The phase's blocks from `first` on, as few calls of `trainer` as its evaluations (and exact
    checkpoints) allow; the observer and checkpointer see each call's end."""
    sizes, block = observer.sizes, first
    trainer.model.stop_training = False
    while block < len(sizes) and not trainer.model.stop_training:
        count = observer.blocks_before_evaluation(block, trainer.longest)
        if checkpoint is not None:
            count = min(count, checkpoint.blocks_before_save(sizes[block:]))
        steps = sum(sizes[block:block + count])
        logs = trainer.run([next(blocks) for _ in range(count)], steps)
        block += count
        for listener in [observer] + ([checkpoint] if checkpoint is not None else []):
            listener.end_chunk(block - 1, steps, logs)
