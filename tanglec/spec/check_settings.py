"""Checks of `train` and `data` settings: known keys, numbers in range, the data source.

Mixed into the checker (spec/checks.py): methods report through self.error/self.warn."""
from __future__ import annotations

from pathlib import Path

from ..lang import ast
from ..lang.diagnostics import Related, did_you_mean
from ..lang.vocabulary import (BATCH_MODES, DATA_KEYS, DISTRIBUTE_STRATEGIES, MUX_STRATEGIES, OPTIMIZERS, SCHEDULES,
                               STREAM_MODES, TRAIN_KEYS, UNTIL_VALUES, UPDATE_MODES, alias_hint)
from ..util.files import data_file_problem
from .composition import check_data_limits
from .check_limits import MAX_SAMPLE


class SettingChecks:
    def check_settings(self) -> None:
        for t in self.spec.of(ast.TrainDecl):
            for s in t.settings:
                self.train_setting(s)
        datas = self.spec.of(ast.DataDecl)
        for extra in datas[1:]:
            self.error("E102", "only one `data` statement is allowed", extra.span,
                       related=[Related(datas[0].span, "first data statement")])
        if datas:
            d = datas[0]
            self.data.source, self.data.span = d.source, d.span
            if d.source == "sample":
                if d.arg < 1:
                    self.error("E119", "sample needs at least 1 example", d.span)
                elif d.arg > MAX_SAMPLE:
                    self.error("E127", f"a sample of {d.arg:,} examples exceeds the limit of {MAX_SAMPLE:,}", d.span)
                self.data.count = d.arg
            elif d.source == "file" and self.stored_rows is not None:
                self.data.path, self.data.in_run = self.stored_rows, True
            elif d.source == "file":
                self.data.path = (Path(self.spec.path).parent / d.arg) if self.spec.path else Path(d.arg)
                problem = data_file_problem(self.data.path)
                if problem:
                    self.error("E119", f"{problem}: {d.arg}", d.span,
                               hints=[f"paths are relative to the spec's folder: looked for {self.data.path}"])
            for s in d.settings:
                self.data_setting(s)
        if self.stream_override is not None:
            self.data.stream = self.stream_override
        if self.data.group and not self.data.eval_fraction:
            self.error("E115", "group says how the evaluation rows are split off: it needs `eval FRACTION`",
                       datas[0].span, hints=[f"e.g. `eval 0.25 group {self.data.group}`"])
        elif self.data.group and self.data.stream == "always":
            self.error("E115", "a split by group reads the data file whole; it can't be streamed", datas[0].span,
                       hints=["drop `stream always`, or the `group` setting"])

    def _number(self, s: ast.Setting, lo: float, hi: float | None, integer: bool) -> float | None:
        """The setting's value if in range (a float unless `integer`: `adam 1` is a learning rate of 1.0)."""
        v = s.value
        ok = isinstance(v, (int, float)) and not isinstance(v, bool) and (not integer or isinstance(v, int))
        if ok and v >= lo and (hi is None or v <= hi):
            return v if integer else float(v)
        rng = f"{lo}.." + (f"{hi}" if hi is not None else "")
        self.error("E115", f"{s.key.text} takes {'an integer' if integer else 'a number'} in {rng}", s.span)
        return None

    def train_setting(self, s: ast.Setting) -> None:
        key, t = s.key.text, self.train
        if key not in TRAIN_KEYS:
            self.error("E115", f"unknown training setting '{key}'", s.key.span,
                       hints=alias_hint(key) + did_you_mean(key, TRAIN_KEYS) + ["settings: " + ", ".join(sorted(TRAIN_KEYS))])
        elif key in ("steps", "batch", "eval_every", "decay_every", "patience"):
            v = self._number(s, 1, 10_000_000, True)
            if v is not None:
                setattr(t, key, v)
        elif key == "seed":
            v = self._number(s, 0, 2**31 - 1, True)
            if v is not None:
                t.seed = v
        elif key in OPTIMIZERS or key == "lr":
            v = self._number(s, 1e-9, 10, False)
            if v is not None:
                t.lr = v
            if key != "lr":
                t.optimizer = key
        elif key == "optimizer":
            if not isinstance(s.value, ast.Name) or s.value.text not in OPTIMIZERS:
                self.error("E115", "optimizer is one of " + ", ".join(sorted(OPTIMIZERS)), s.span)
            else:
                t.optimizer = s.value.text
        elif key == "until":
            if not isinstance(s.value, ast.Name) or s.value.text not in UNTIL_VALUES:
                self.error("E115", "until is `until exact` (every evaluation row right) or `until loss` (the "
                                   "evaluation loss stops improving for `patience` evaluations)", s.span)
            elif s.value.text == "exact":
                t.until_exact = True
            else:
                t.until_loss = True
        elif key in ("schedule", "update", "batches"):
            choices = {"schedule": SCHEDULES, "update": UPDATE_MODES, "batches": BATCH_MODES}[key]
            if not isinstance(s.value, ast.Name) or s.value.text not in choices:
                self.error("E115", f"{key} is one of " + ", ".join(choices), s.span,
                           hints=did_you_mean(getattr(s.value, "text", str(s.value)), choices))
            else:
                setattr(t, key, s.value.text)
        elif key == "warmup":
            v = self._number(s, 0, 10_000_000, True)
            if v is not None:
                t.warmup = v
        elif key == "decay":
            v = self._number(s, 0.0001, 1, False)
            if v is not None:
                t.decay = v
        elif key == "mux":
            if not isinstance(s.value, ast.Name) or s.value.text not in MUX_STRATEGIES:
                self.error("E122", "mux is one of " + ", ".join(sorted(MUX_STRATEGIES)), s.span)
            else:
                t.mux = s.value.text
        elif key == "memory":
            v = self._number(s, 0.001, 1_000_000, False)
            if v is not None:
                t.memory_gb = v
        elif key == "strategy":
            if not isinstance(s.value, ast.Name) or s.value.text not in DISTRIBUTE_STRATEGIES:
                self.error("E115", "strategy is one of " + ", ".join(DISTRIBUTE_STRATEGIES), s.span)
            else:
                t.strategy = s.value.text
        elif key == "weight":
            if not isinstance(s.value, tuple):
                self.error("E115", "weight is written `weight decoder:1.5`", s.span)
                return
            name, w = s.value
            if name.text not in self.g.decoders:
                self.error("E101", f"unknown decoder '{name.text}'", name.span,
                           hints=did_you_mean(name.text, self.g.decoders))
            elif not isinstance(w, (int, float)) or w < 0:
                self.error("E115", "a loss weight is a number >= 0", s.span)
            else:
                t.weights[name.text] = float(w)

    def data_setting(self, s: ast.Setting) -> None:
        key = s.key.text
        if check_data_limits(self, s):
            return
        if key not in DATA_KEYS:
            self.error("E115", f"unknown data setting '{key}'", s.key.span,
                       hints=did_you_mean(key, DATA_KEYS) + ["settings: seed N, eval FRACTION"])
        elif key == "seed":
            v = self._number(s, 0, 2**31 - 1, True)
            if v is not None:
                self.data.seed = v
        elif key == "eval":
            v = self._number(s, 0, 0.9, False)
            if v is not None:
                self.data.eval_fraction = float(v)
        elif key == "group":
            self.group_setting(s)
        elif key == "stream":
            if not isinstance(s.value, ast.Name) or s.value.text not in STREAM_MODES:
                self.error("E115", "stream is one of " + ", ".join(STREAM_MODES), s.span)
            elif self.data.source != "file":
                self.error("E115", "only a data file is streamed", s.span)
            else:
                self.data.stream = s.value.text

    def group_setting(self, s: ast.Setting) -> None:
        """`group FIELD`: the evaluation split keeps every row of one value of an input on one side (an
        image written once per operation is evaluated on images never trained on, through every operation)."""
        name = s.value.text if isinstance(s.value, ast.Name) else None
        if name is None:
            self.error("E115", "group names an input field: `group img`", s.span)
        elif name not in self.g.inputs:
            self.error("E101", f"unknown input '{name}' to group by", s.value.span,
                       hints=did_you_mean(name, self.g.inputs))
        else:
            self.data.group = name

