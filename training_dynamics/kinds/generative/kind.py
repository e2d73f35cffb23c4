"""The generative kind: a causal LM on prompt/response (or plain text) data, or conversations."""

from __future__ import annotations

import logging
import os
from typing import Sequence

from training_dynamics.core.kind import KindError
from training_dynamics.kinds.base import ExampleKind, check_source
from training_dynamics.kinds.generative.data import KIND as NAME
from training_dynamics.kinds.generative.dynamics import LAYOUT
from training_dynamics.kinds.generative.data import LABEL_NAMES, SEPARATOR, load_generative_columns

logger = logging.getLogger(__name__)


class GenerativeKind(ExampleKind):
    """One row per example (the response); no classes to count between, so mixture decisions only."""

    name = NAME
    example_noun = "response"
    epoch_layout = LAYOUT  #: mean token log-probability, token accuracy and length per response, not logits
    decisions = ("score_mixture", "loss_mixture", "aum_mixture", "none")
    default_decision = "score_mixture"
    metric_columns = {"token_accuracy": "float", "num_tokens": "int"}  #: td_metrics beside the shared columns

    def load_data(self, src: dict, *, label_names: Sequence[str] | None = None, cache_dir: str | None = None,
                  where: str | os.PathLike = "the settings"):
        check_source(src, where, allow_task=False)
        return load_generative_columns(src["train_file"], src.get("text_columns"),
                                       max_train_samples=src.get("max_train_samples"), cache_dir=cache_dir)

    def ranking_extras(self, run, guids, *, data, burn_out=None) -> dict:
        """What the model read of each cut example (``seen``: a conversation's or a prompt/response pair's kept
        characters) and a conversation's least confident assistant turn (``worst_turn``,
        ``worst_turn_confidence``), when the run recorded per-turn values."""
        out: dict = {}
        if data is not None and (run.meta.get("truncation") or {}).get("num_truncated"):
            from training_dynamics.kinds.generative.truncation import seen_conversations, seen_prompt_response

            seen = (seen_conversations if data.conversational else seen_prompt_response)(run, guids, data)
            if seen is not None:
                out["seen"] = seen
        if run.meta.get("max_turns"):
            from training_dynamics.kinds.generative.dynamics import worst_turns

            out.update(worst_turns(run, guids, burn_out))
        return out

    def write_selected_data(self, path, data, guids):
        """Prompt, response and guid: what ``record-clm`` reads (no label column)."""
        from training_dynamics.analysis.selection import write_selected_data

        return write_selected_data(path, data.train, guids, text_columns=data.text_columns,
                                   label_names=data.label_names, with_label=False)

    def check_decision(self, rule: str, *, source: str, where: str) -> None:
        if source == "model" or rule not in self.decisions:
            what = ("--source model scores a classifier" if source == "model"
                    else f"--decision {rule} counts label errors between classes")
            raise KindError(f"{where} is a generative run (responses, no classes): {what}; use --source dynamics with "
                            f"--decision {self.default_decision} (its default), "
                            f"{', '.join(d for d in self.decisions if d != self.default_decision)}")

    def describe_decision(self, dec, label_names: Sequence[str]) -> str:
        n = len(dec.flagged)
        return (f"{dec.rule}: {dec.num_flagged} of {n} responses flagged as suspicious "
                f"({100.0 * dec.num_flagged / max(n, 1):.1f}%)")

    def judge_count(self, df, dec, *, runs, source: str, window=None, burn_out: int | None = None):
        """Flags are supported when the loss fell and the responses were learned
        (:func:`~training_dynamics.kinds.generative.evidence.judge_generative_runs`)."""
        from training_dynamics.kinds.generative.evidence import judge_generative_runs

        return judge_generative_runs(runs, dec, burn_out=burn_out)

    def finish_corrections(self, df):
        """Responses relabelled as bad (``other``) are left out; the rest keep prompt, response and guid."""
        bad = df["corrected_label"] == LABEL_NAMES[1]
        logger.info("left out %d response(s) marked bad (%s); %d prompt/response pairs remain", int(bad.sum()),
                    LABEL_NAMES[1], int((~bad).sum()))
        return df[~bad].drop(columns=["original_label", "corrected_label"]).reset_index(drop=True)

    def review_card(self) -> dict:
        """Prompt and response as two labelled parts, how well the model learned the response
        (its confidence), keep or drop; no classes."""
        return {"title": "Response review", "flag": "suspicious response", "separator": SEPARATOR,
                "parts": ["prompt", "response"], "choices": "keep_drop", "learned": "confidence",
                "warn_integer_labels": False}


KIND = GenerativeKind()
