"""Classification: texts (one or a pair) with one label each, the seed's runs (a meta without ``"kind"``)."""

from __future__ import annotations

import os
from typing import Sequence

from training_dynamics.core.data import load_text_classification
from training_dynamics.core.kind import DEFAULT_KIND, KindError
from training_dynamics.decisions.rules import DECISIONS
from training_dynamics.kinds.base import ExampleKind, check_source
from training_dynamics.web import DEFAULT_CARD

NAME = DEFAULT_KIND  #: the kind of a run whose meta names none (the seed's runs)


class ClassificationKind(ExampleKind):
    """Texts with one label each: every decision applies, ``--source model`` scores the classifier."""

    name = NAME
    example_noun = "label"
    decisions = DECISIONS
    default_decision = "rank_count"

    def load_data(self, src: dict, *, label_names: Sequence[str] | None = None, cache_dir: str | None = None,
                  where: str | os.PathLike = "the settings"):
        """A GLUE task or a file, read with the recorded text and label columns."""
        check_source(src, where, allow_task=True)
        return load_text_classification(
            task_name=src.get("task_name"), train_file=src.get("train_file"), text_columns=src.get("text_columns"),
            label_column=src.get("label_column"), label_names=label_names,
            max_train_samples=src.get("max_train_samples"), cache_dir=cache_dir)

    def check_apply_source(self, train_file: str | None, where: str) -> None:
        """A Hub task (``--task_name``) works as well as a file."""

    def check_decision(self, rule: str, *, source: str, where: str) -> None:
        if rule not in self.decisions:
            super().check_decision(rule, source="dynamics", where=where)

    def describe_decision(self, dec, label_names: Sequence[str]) -> str:
        n = len(dec.flagged)
        share = f"({100.0 * dec.num_flagged / max(n, 1):.1f}%)"
        pairs = ", ".join(f"{p['given']} -> {p['likely_true']}: {p['count']}"
                          for p in dec.summary(label_names)["by_class_pair"])
        return f"{dec.rule}: estimated {dec.num_flagged} of {n} labels wrong {share}{': ' + pairs if pairs else ''}"

    def explain_load_failure(self, where: str, train_file: str | None, cache_dir: str | None = None) -> None:
        """The data did not load as texts with labels: say so in one line when the file is another kind's data
        (sentences of words and tags given classification corrections)."""
        if not train_file:
            return
        try:
            from training_dynamics.core.data import _load_file

            first = _load_file(train_file, cache_dir)[0]
        except Exception:  # noqa: BLE001 - the loader's own error says what is wrong
            return
        if any(isinstance(v, list) and v and all(isinstance(x, str) for x in v) for v in first.values()):
            raise KindError(f"{where} holds corrections of a classification run (one label per example), but "
                            f"{train_file} holds sentences of words and tags (a token classification run's data): "
                            "give apply the corrections.json that this NER run's review page exported")

    def check_corrections(self, data, parsed, *, where: str) -> None:
        """The corrections name the data's own labels."""
        from training_dynamics.review.corrections import check_label_names

        check_label_names(data, parsed, where=where)

    def review_card(self) -> dict:
        """Gold and predicted label, a button per class."""
        return dict(DEFAULT_CARD)

    def heldout_scorer(self, trainer, rows, data):
        """Softmax of ``trainer.predict`` (no grad, eval mode; the next training step puts the model back in train
        mode) on ``rows``, cut by the one cutter as the training texts were."""
        import numpy as np

        from training_dynamics.analysis.metrics import log_softmax
        from training_dynamics.kinds.recording import cut_like_training

        tok = cut_like_training(trainer, rows, data)
        keys = {"guid": np.asarray(rows["guid"])}

        def score():
            logits = np.asarray(trainer.predict(tok, metric_key_prefix="heldout").predictions, dtype=np.float64)
            return keys, np.exp(log_softmax(logits))

        return score


KIND = ClassificationKind()
