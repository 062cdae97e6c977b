"""The transfer report's baseline (variant c): a plain network per route, trained on that route's rows alone."""
from __future__ import annotations

from ..data.selection import route_mask


def naive_routes(checked, examples, module: str, seed: int, steps: int, until_exact: bool) -> tuple[list[dict], int]:
    """Per route through `module`: a fresh network made of the route's modules (same layers, nothing
    shared), trained only on that route's training rows; no rows, no network (accuracy 0)."""
    g = checked.graph
    routes, steps_total = [], 0
    for index, route in enumerate(g.routes()):
        if module not in route.modules:
            continue
        train_rows = examples.train_index[route_mask(g, examples.columns, route, examples.train_index)]
        eval_rows = examples.eval_index[route_mask(g, examples.columns, route, examples.eval_index)]
        if len(train_rows) == 0:
            routes.append({"name": route.name, "status": "unseen", "training_rows": 0, "accuracy": 0.0,
                           "decoders_accuracy": {d: 0.0 for d in route.decoders}, "network": False})
            continue
        entry, steps_run = _train_naive(checked, examples, route, train_rows, eval_rows, seed + 1000 * index,
                                        steps, until_exact)
        steps_total += steps_run
        routes.append({"name": route.name, "status": "trained", "training_rows": int(len(train_rows)),
                       "accuracy": entry["accuracy"], "decoders_accuracy": entry["decoders_accuracy"],
                       "network": True})
    return routes, steps_total


def naive_model(checked, route, seed: int):
    """The route's modules wired as in the tangle (a decoder read by a module feeds its soft form), with
    fresh weights and no multiplexers: a plain network from the raw input field to the route's decoders."""
    import keras

    from ..backend.codegen import field_encoder, field_input, module_model

    g = checked.graph
    inputs, tensors = {}, {}
    for i, node in enumerate(n for n in g.topological() if n in route.modules):
        producer = _producer(g, route, node)
        if g.kind(producer) == "input":
            if producer not in inputs:
                inputs[producer] = field_input(producer, g.inputs[producer].type)
            x = field_encoder(g.inputs[producer], g.modules[node].input, f"encode_{producer}")(inputs[producer])
        else:
            x = tensors[producer]
            kind = g.modules[producer].output.family
            if kind in ("onehot", "bits", "gray", "table"):
                x = keras.layers.Activation("softmax" if kind == "onehot" else "sigmoid")(x)
        tensors[node] = module_model(g.modules[node], seed + i)(x)
    return keras.Model(inputs, {d: tensors[d] for d in route.decoders}, name="naive")


def _producer(g, route, node: str) -> str:
    for p in g.predecessors(node):
        kind = g.kind(p)
        if kind == "input":
            return p
        if kind == "mux":
            mux = g.muxes[p]
            if mux.module_for(route.selection.get(mux.selector.text, "")) in route.modules:
                return mux.module_for(route.selection[mux.selector.text])
        elif p in route.modules:
            return p
    raise ValueError(f"no producer of {node} on route {route.name}")


def _train_naive(checked, examples, route, train_rows, eval_rows, seed, steps, until_exact):
    import keras
    import numpy as np
    import tensorflow as tf

    from ..data import codecs
    from ..data.evaluate import route_report
    from ..backend.train import dataset, losses_for, make_optimizer, set_determinism

    g = checked.graph
    set_determinism(seed)
    model = naive_model(checked, route, seed)
    fields = list(model.input.keys()) if isinstance(model.input, dict) else list(g.inputs)

    def inputs_of(rows):
        return {f: examples.columns[f][rows].astype(np.int32 if examples.columns[f].dtype.kind in "iu"
                                                     else np.float32) for f in fields}

    y, w = {}, {}
    for d in route.decoders:
        t, live = codecs.target_array(g.modules[d].output, examples.targets[g.decoders[d]][train_rows])
        y[d], w[d] = t, live
    losses = {d: loss for d, loss in losses_for(checked).items() if d in route.decoders}
    weights = {d: checked.train.weights.get(d, 1.0) for d in route.decoders}
    every = checked.train.eval_every
    model.compile(optimizer=make_optimizer(checked.train.optimizer, checked.train.lr), loss=losses,
                  loss_weights=weights, steps_per_execution=every)
    ev = examples.take(eval_rows)
    ev_x = {k: tf.constant(v) for k, v in inputs_of(eval_rows).items()}
    state = {"entry": None, "steps": 0}

    class Observer(keras.callbacks.Callback):
        def on_epoch_end(self, epoch, logs=None):
            state["steps"] += every
            out = {k: np.asarray(v) for k, v in model(ev_x, training=False).items()}
            report = route_report(checked, ev, out)
            state["entry"] = next(r for r in report["routes"] if r["name"] == route.name)
            if until_exact and state["entry"]["accuracy"] == 1.0:
                model.stop_training = True

    data = dataset(inputs_of(train_rows), y, w, checked.train.batch, seed)
    model.fit(data, steps_per_epoch=every, epochs=max(1, -(-steps // every)), callbacks=[Observer()], verbose=0)
    return state["entry"], state["steps"]


# ---- the whole report ---------------------------------------------------------------------------
