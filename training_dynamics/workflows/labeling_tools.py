"""Label Studio and Argilla round trip: ranked issues out as tasks / records, their annotations back
as ``corrections.json`` (the review page's format, :mod:`training_dynamics.review.corrections`).

Out (:func:`export_issues`, ``training-dynamics review --format label-studio | argilla``): the rows a
review shows (:func:`training_dynamics.review.scale.select_rows`), one task / record per example (a
token classification ranking: per word; the text is its sentence with the word marked ``⟦word⟧``).
Each carries what binds a choice to the example it was made on, exactly as the review page does:
``guid`` (+ ``word_index``), the example's ``fingerprint`` and the ``dataset_fingerprint``.

* Label Studio (its task import JSON): ``data`` holds ``text``, ``guid``, ``fingerprint``,
  ``dataset_fingerprint``, ``given_label``, ``suggested_label``, ``suggested_score``, ``rank`` and
  ``score``; two ``predictions`` (pre-annotations): model version ``given-label`` (the label in the
  data, to pre-select) and ``training-dynamics`` (the suggested label with its score). The labeling
  config (``label_studio_config.xml``) has a ``Choices`` named ``label`` with every label name and a
  ``TextArea`` named ``note``.
* Argilla 2.x (records as ``rg.Record.to_dict()`` writes them; settings as ``rg.Settings.to_json``):
  a ``text`` field, a ``label`` label question (every label name) with the suggested label as its
  suggestion (``score``, ``agent`` = ``training-dynamics``), an optional ``note`` text question, and
  ``metadata`` ``guid``, ``word_index``, ``fingerprint``, ``dataset_fingerprint``, ``given_label``,
  ``rank``, ``score``.

A kind whose choice is a label *set* (:attr:`Kind.labeling_choice` ``"multiple"``: multi-label runs, ranked
per (example, label) pair) exports one task / record per *example* instead (:meth:`Kind.labeling_examples`):
``given_labels`` (its label set), ``ranked_labels`` (its pairs among the rows), ``suggested_changes``
(add / remove a label, with its probability), ``suggested_labels`` (the set with them made) and
``suggested_score``; Label Studio's ``Choices`` is ``choice="multiple"`` (pre-annotations: the given set, the
suggested set), Argilla's ``label`` question a MultiLabelQuestion (suggestion: the suggested set), and the
kind turns the chosen sets back into its own corrections (:meth:`Kind.labeling_corrections`; multi-label:
one per changed or ranked (example, label) pair, with ``label_index``).

Back (:func:`corrections_from_export`, ``training-dynamics import-labels``): Label Studio's JSON or
JSON-MIN export, Argilla's ``dataset.records.to_json`` (nested) or ``to_list(flatten=True)`` list, or a
``dataset.to_disk`` folder. Per example: the chosen label is a ``keep`` when it is the given label,
else a ``relabel``; a skipped task (Label Studio) or discarded record (Argilla) is ``unsure``; annotators
who disagree give ``unsure`` with a note counting their votes; a note is kept. Examples nobody labelled
are left out. A multiple choice is read as the kind says (:meth:`Kind.labeling_corrections`). ``apply``
then checks the fingerprints as for the page's own export.
"""

from __future__ import annotations

import json
import logging
import os
from collections import Counter
from pathlib import Path
from typing import Any, Sequence
from xml.sax.saxutils import escape, quoteattr

import numpy as np

from training_dynamics.core import fileio
from training_dynamics import kinds
from training_dynamics.core.errors import TrainingDynamicsError
from training_dynamics.decisions.ranking import read_issues

logger = logging.getLogger(__name__)

FORMATS = ("label-studio", "argilla")
#: file names of an export, by format
EXPORT_FILES = {"label-studio": ("label_studio_tasks.json", "label_studio_config.xml"),
                "argilla": ("argilla_records.json", "argilla_settings.json")}
LABEL, NOTE, TEXT = "label", "note", "text"
AGENT = "training-dynamics"
GIVEN_VERSION = "given-label"


class LabelingToolError(TrainingDynamicsError):
    """A labeling tool's export that cannot be read as choices on the ranked examples."""


# -- out ------------------------------------------------------------------------------------------
def review_items(issues_path: str | os.PathLike, *, top_k: int | None = None) -> dict:
    """The review page's payload (:func:`training_dynamics.review.page.review_payload`, no data map) of the rows
    a review of ``issues_path`` shows: the same guids, keys and fingerprints the page would use."""
    from training_dynamics.review.page import label_names_from_rows, review_payload, short_dataset_name
    from training_dynamics.review.scale import select_rows

    issues, settings = read_issues(issues_path)
    kind = kinds.of_meta(settings)
    label_names = settings.get("label_names") or label_names_from_rows(issues)
    issues = select_rows(issues, top_k)
    rows, fingerprint, warnings, extra = kind.review_rows(issues, settings, label_names)
    for w in warnings:
        logger.warning("%s", w)
    payload = review_payload(rows, label_names=label_names, dataset=short_dataset_name(settings),
                             dataset_fingerprint=fingerprint, card=kind.review_card(), kind=kind.name, extra=extra)
    payload["suggested"] = (rows["likely_true"].fillna(-1).to_numpy(np.int64).tolist() if "likely_true" in rows
                            else payload["items"]["predicted"])
    payload["score"] = rows["score"].astype(float).tolist()
    payload["choice"] = kind.labeling_choice
    payload["tool_examples"] = kind.labeling_examples(rows, payload)  # None: one per row (_examples)
    return payload


def _tool_examples(payload: dict) -> list[dict]:
    """What the tool shows: the kind's examples (:meth:`Kind.labeling_examples`), else one per reviewed row."""
    made = payload.get("tool_examples")
    return _examples(payload) if made is None else made


def _multiple(payload: dict) -> bool:
    return payload.get("choice", "single") == "multiple"


def _examples(payload: dict) -> list[dict]:
    """One plain record per reviewed item: key parts, fingerprints, shown text, given / suggested label."""
    it, names, s = payload["items"], payload["label_names"], payload.get("sentences")
    out = []
    for i in range(len(it["gold"])):
        sug = payload["suggested"][i]
        sug = it["predicted"][i] if sug < 0 else sug
        ex = {"guid": it["guid"][i], "fingerprint": it["fp"][i], "dataset_fingerprint": payload["dataset_fingerprint"],
              "given_label": names[it["gold"][i]], "suggested_label": names[sug],
              "suggested_score": round(float(it["probabilities"][i][sug]), 4), "rank": int(it["rank"][i]),
              "score": round(float(payload["score"][i]), 6), "text": it["text"][i]}
        if s is not None:
            w, words = int(it["word_index"][i]), list(s["words"][it["sent"][i]])
            ex.update(word_index=w, word=words[w])
            words[w] = f"\u27e6{words[w]}\u27e7"
            ex["text"] = " ".join(words)
        out.append(ex)
    return out


def label_studio_config(label_names: Sequence[str], *, words: bool = False, multiple: bool = False) -> str:
    """The labeling config XML for the project: the text, the given and suggested label, a ``Choices``
    named ``label`` with every label name (``multiple``: checkboxes, every label the example has), and a ``note``."""
    choices = "\n".join(f"    <Choice value={quoteattr(str(n))}/>" for n in label_names)
    what = "the tag of the word in \u27e6brackets\u27e7" if words else "the label"
    header = (f"Choose {what}. Given: $given_label - training-dynamics suggests: $suggested_label "
              "(p = $suggested_score). Skip = unsure.")
    mode = 'choice="single-radio" showInline="true" required="true"'
    if multiple:
        header = ("Check every label the text has. Given: $given - training-dynamics suggests: $suggested. "
                  "Skip = unsure.")
        mode = 'choice="multiple" showInline="true" required="false"'
    return f"""<View>
  <Header value={quoteattr(header)}/>
  <Text name="{TEXT}" value="${TEXT}"/>
  <Choices name="{LABEL}" toName="{TEXT}" {mode}>
{choices}
  </Choices>
  <TextArea name="{NOTE}" toName="{TEXT}" placeholder="{escape('note (optional)')}" maxSubmissions="1" editable="true"/>
</View>
"""


def _ls_choice(label: str | Sequence[str], score: float | None = None) -> dict:
    r = {"from_name": LABEL, "to_name": TEXT, "type": "choices",
         "value": {"choices": [label] if isinstance(label, str) else list(label)}}
    if score is not None:
        r["score"] = score
    return r


def label_studio_tasks(payload: dict) -> list[dict]:
    """Label Studio's import JSON: one task per reviewed item (module docstring)."""
    tasks = []
    if _multiple(payload):  # pre-annotations: the given label set, the set with the suggested changes made
        for ex in _tool_examples(payload):
            tasks.append({"data": ex, "predictions": [
                {"model_version": GIVEN_VERSION, "score": 1.0,
                 "result": [_ls_choice(ex["given_labels"])] if ex["given_labels"] else []},
                {"model_version": AGENT, "score": ex["suggested_score"],
                 "result": [_ls_choice(ex["suggested_labels"], ex["suggested_score"])] if ex["suggested_labels"]
                 else []}]})
        return tasks
    for ex in _tool_examples(payload):
        tasks.append({"data": ex, "predictions": [
            {"model_version": GIVEN_VERSION, "score": 1.0, "result": [_ls_choice(ex["given_label"])]},
            {"model_version": AGENT, "score": ex["suggested_score"],
             "result": [_ls_choice(ex["suggested_label"], ex["suggested_score"])]}]})
    return tasks


def _ag(kind: str, name: str, title: str, settings: dict, **more) -> dict:
    return {"id": None, "inserted_at": None, "updated_at": None, "name": name, "settings": {"type": kind, **settings},
            "title": title, "dataset_id": None, **more}


def argilla_settings(label_names: Sequence[str], *, words: bool = False, multiple: bool = False) -> dict:
    """The dataset ``Settings`` as ``rg.Settings.to_json`` writes them (``rg.Settings.from_json`` reads them);
    ``multiple``: the label question is a MultiLabelQuestion (every label the example has)."""
    what = "the tag of the word in \u27e6brackets\u27e7" if words else "the label"
    given = [("given_labels", "terms"), ("ranked_labels", "terms"), ("suggested", "terms")] if multiple else [
        ("given_label", "terms")]
    metadata = [("guid", "terms"), ("fingerprint", "terms"), ("dataset_fingerprint", "terms"), *given,
                ("rank", "integer"), ("score", "float")] + ([("word_index", "integer")] if words else [])
    meta_settings = {"terms": {"values": None}, "integer": {"min": None, "max": None}, "float": {"min": None, "max": None}}
    options = {"options": [{"text": str(n), "value": str(n)} for n in label_names], "visible_options": None}
    if multiple:
        guidelines = ("Select every label the text has. The suggestion is the labels in the data with "
                      "training-dynamics' suggested changes made (metadata suggested: add / remove a label, with its "
                      "probability); metadata given_labels are the labels in the data. Discard = unsure.")
        question = _ag("multi_label_selection", LABEL, "the labels", {**options, "options_order": "natural"},
                       description=None, required=False, type="multi_label_selection")
    else:
        guidelines = (f"Choose {what}. The suggestion is training-dynamics' likely true label with its probability; "
                      "metadata given_label is the label in the data. Discard = unsure.")
        question = _ag("label_selection", LABEL, what, options, description=None, required=True, type="label_selection")
    return {
        "guidelines": guidelines,
        "questions": [question,
                      _ag("text", NOTE, "note (optional)", {"use_markdown": False}, description=None, required=False,
                          type="text")],
        "fields": [_ag("text", TEXT, "text", {"use_markdown": False}, required=True, description=None, type="text")],
        "vectors": [],
        "metadata": [_ag(t, n, n, {"visible_for_annotators": True, **meta_settings[t]}, visible_for_annotators=True)
                     for n, t in metadata],
        "allow_extra_metadata": False,
        "distribution": {"strategy": "overlap", "min_submitted": 1},
        "mapping": None}


def argilla_records(payload: dict) -> list[dict]:
    """Records as ``rg.Record.to_dict()`` writes them (``rg.Record.from_dict`` reads them): the text,
    the suggested label as the ``label`` suggestion, the binding in ``metadata``."""
    out = []
    if _multiple(payload):  # the given label set in metadata, the set with the suggested changes as the suggestion
        for ex in _tool_examples(payload):
            meta = {k: ex[k] for k in ("guid", "fingerprint", "dataset_fingerprint", "given_labels", "ranked_labels",
                                       "suggested", "rank", "score")}
            out.append({"id": ex["guid"], "fields": {TEXT: ex["text"]},
                        "metadata": {k: v for k, v in meta.items() if v is not None},
                        "suggestions": {LABEL: {"value": ex["suggested_labels"], "score": ex["suggested_score"],
                                                "agent": AGENT}} if ex["suggested_labels"] else {},
                        "responses": {}, "vectors": {}, "status": "pending", "_server_id": None})
        return out
    for ex in _tool_examples(payload):
        meta = {k: ex[k] for k in ("guid", "fingerprint", "dataset_fingerprint", "given_label", "rank", "score")}
        if "word_index" in ex:
            meta["word_index"] = ex["word_index"]
        out.append({"id": ex["guid"] + (f"#{ex['word_index']}" if "word_index" in ex else ""),
                    "fields": {TEXT: ex["text"]}, "metadata": {k: v for k, v in meta.items() if v is not None},
                    "suggestions": {LABEL: {"value": ex["suggested_label"], "score": ex["suggested_score"],
                                            "agent": AGENT}},
                    "responses": {}, "vectors": {}, "status": "pending", "_server_id": None})
    return out


def export_issues(issues_path: str | os.PathLike, fmt: str, output_dir: str | os.PathLike, *,
                  top_k: int | None = None) -> list[Path]:
    """Write the ranked issues for ``fmt`` (:data:`FORMATS`) into ``output_dir``: tasks + labeling config
    (Label Studio) or records + settings (Argilla), atomically; returns the paths written."""
    if fmt not in FORMATS:
        raise LabelingToolError(f"--format {fmt}: choose one of html, {', '.join(FORMATS)}")
    payload = review_items(issues_path, top_k=top_k)
    words, multiple = payload.get("sentences") is not None, _multiple(payload)
    if payload["dataset_fingerprint"] is None:
        logger.warning("the training data could not be read: the export has no dataset fingerprint, and `apply` "
                       "will ask for --ignore_fingerprint")
    first, second = (Path(output_dir) / n for n in EXPORT_FILES[fmt])
    first.parent.mkdir(parents=True, exist_ok=True)
    if fmt == "label-studio":
        fileio.write_json(first, label_studio_tasks(payload))
        with fileio.atomic_write(second) as fh:
            fh.write(label_studio_config(payload["label_names"], words=words, multiple=multiple))
    else:
        fileio.write_json(first, argilla_records(payload))
        fileio.write_json(second, argilla_settings(payload["label_names"], words=words, multiple=multiple))
    logger.info("%d %s for %s -> %s (+ %s)", len(_tool_examples(payload)),
                "tasks" if fmt == "label-studio" else "records", fmt, first, second.name)
    return [first, second]


# -- back -----------------------------------------------------------------------------------------
class _Choice:
    """What the annotators of one example chose: votes (a tuple of label names each), skips, notes."""

    def __init__(self, ex: dict):
        self.ex, self.votes, self.skipped, self.notes = ex, [], 0, []


def _key(guid: Any, word_index: Any) -> tuple[str, int | None]:
    return str(guid), None if word_index is None else int(word_index)


def _names(value, what: str, where: str) -> list[str] | None:
    if value is None:
        return None
    if not isinstance(value, list) or not all(isinstance(v, (str, int)) and not isinstance(v, bool) for v in value):
        raise LabelingToolError(f"{where}: {what} {value!r} is not a list of label names")
    return [str(v) for v in value]


def _binding(src: dict, where: str) -> dict:
    if not isinstance(src, dict) or src.get("guid") in (None, ""):
        raise LabelingToolError(f"{where}: no guid (was it exported by `training-dynamics review --format ...`?)")
    w = src.get("word_index")
    if w is not None and (isinstance(w, bool) or not isinstance(w, (int, float)) or int(w) != w or w < 0):
        raise LabelingToolError(f"{where}: word_index {w!r} is not a word's position")
    ex = {"guid": str(src["guid"]), "word_index": None if w is None else int(w),
          "fingerprint": src.get("fingerprint"), "dataset_fingerprint": src.get("dataset_fingerprint") or None,
          "given_label": src.get("given_label")}
    for k in ("given_labels", "ranked_labels"):  # a multiple choice's (Kind.labeling_examples)
        if k in src:
            ex[k] = _names(src[k], k, where)
    return ex


def _vote(value, multiple: bool) -> tuple[str, ...] | None:
    """One annotator's choice as a tuple of label names (``None``: no choice; ``()``: the empty set, when the
    task is a multiple choice)."""
    if isinstance(value, dict):
        value = value.get("choices")
    if isinstance(value, (list, tuple)):
        value = tuple(str(v) for v in value if v not in (None, ""))
        return value if value or multiple else None
    if value in (None, ""):
        return () if multiple else None
    return (str(value),)


def _text_value(v) -> str:
    if isinstance(v, list):
        return " ".join(str(x) for x in v)
    return "" if v is None else str(v)


def _label_studio(doc, where: str, multiple: bool = False) -> dict[tuple, _Choice]:
    if not isinstance(doc, list):
        raise LabelingToolError(f"{where}: expected Label Studio's JSON export (a list of tasks)")
    out: dict[tuple, _Choice] = {}
    for i, task in enumerate(doc):
        at = f"{where}: task {i}"
        if not isinstance(task, dict):
            raise LabelingToolError(f"{at}: not an object")
        if "data" in task:  # JSON: the task with all its annotations
            ex = _binding(task["data"], at)
            c = out.setdefault(_key(ex["guid"], ex["word_index"]), _Choice(ex))
            for ann in task.get("annotations") or []:
                if ann.get("was_cancelled"):
                    c.skipped += 1
                    continue
                labels = [r["value"].get("choices") for r in ann.get("result") or []
                          if r.get("from_name") == LABEL and isinstance(r.get("value"), dict)]
                notes = [_text_value(r["value"].get("text")) for r in ann.get("result") or []
                         if r.get("from_name") == NOTE and isinstance(r.get("value"), dict)]
                vote = _vote(labels[0] if labels else None, multiple)  # multiple: none checked is the empty set
                if vote is not None:
                    c.votes.append(vote)
                c.notes += [n for n in notes if n]
        else:  # JSON-MIN: one flat row per annotation, the data's keys beside the choices
            ex = _binding(task, at)
            c = out.setdefault(_key(ex["guid"], ex["word_index"]), _Choice(ex))
            label = task.get(LABEL)
            vote = _vote(label, multiple) if label is not None or "annotation_id" in task else None
            if vote is not None:
                c.votes.append(vote)
            if task.get(NOTE):
                c.notes.append(_text_value(task[NOTE]))
    return out


def _argilla(doc, where: str, multiple: bool = False) -> dict[tuple, _Choice]:
    if not isinstance(doc, list):
        raise LabelingToolError(f"{where}: expected Argilla's records (dataset.records.to_json or to_list)")
    out: dict[tuple, _Choice] = {}
    pending = 0
    for i, rec in enumerate(doc):
        at = f"{where}: record {i}"
        if not isinstance(rec, dict):
            raise LabelingToolError(f"{at}: not an object")
        if isinstance(rec.get("metadata"), dict) or "fields" in rec:  # nested: rg.Record.to_dict()
            ex = _binding(rec.get("metadata") or {}, at)
            c = out.setdefault(_key(ex["guid"], ex["word_index"]), _Choice(ex))
            responses = rec.get("responses") or {}
            if rec.get("status") != "completed":  # the nested form has no response status: drafts look the same
                pending += bool(responses)
                continue
            labels = [_vote(r.get("value"), multiple) for r in responses.get(LABEL) or [] if isinstance(r, dict)]
            c.votes += [v for v in labels if v is not None]
            c.notes += [_text_value(r.get("value")) for r in responses.get(NOTE) or [] if isinstance(r, dict)
                        and r.get("value")]
            if not labels:
                c.skipped += 1  # completed with no label: discarded
        else:  # flattened: to_list(flatten=True), with each response's status
            ex = _binding(rec, at)
            c = out.setdefault(_key(ex["guid"], ex["word_index"]), _Choice(ex))
            values = rec.get(f"{LABEL}.responses") or []
            status = rec.get(f"{LABEL}.responses.status") or ["submitted"] * len(values)
            for v, st in zip(values, status):
                vote = _vote(v, multiple)
                if st == "submitted" and vote is not None:
                    c.votes.append(vote)
                elif st == "discarded":
                    c.skipped += 1
            nv = rec.get(f"{NOTE}.responses") or []
            ns = rec.get(f"{NOTE}.responses.status") or ["submitted"] * len(nv)
            c.notes += [_text_value(v) for v, st in zip(nv, ns) if st == "submitted" and v]
    if pending:
        logger.info("%d records with responses are not completed yet (drafts or pending): left out", pending)
    return out


def read_export(path: str | os.PathLike, fmt: str, *, multiple: bool = False) -> dict[tuple, _Choice]:
    """The choices in a labeling tool's export, by (guid, word_index); ``multiple``: each choice is a label set
    (an annotation with none checked is the empty set)."""
    path = Path(path)
    if path.is_dir():  # Argilla's dataset.to_disk folder
        path = path / "records.json"
    try:
        doc = fileio.json_loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as exc:
        raise LabelingToolError(f"{path}: not valid JSON ({exc.msg}, line {exc.lineno})") from None
    if fmt == "label-studio":
        return _label_studio(doc, str(path), multiple)
    if fmt == "argilla":
        return _argilla(doc, str(path), multiple)
    raise LabelingToolError(f"--format {fmt}: choose one of {', '.join(FORMATS)}")


def _single_corrections(choices: dict[tuple, _Choice], names: list[str], path, issues_path) -> list[dict]:
    """One correction per example: the chosen label is a keep or a relabel; a skip, or annotators who disagree,
    unsure (module docstring)."""
    out = []
    for (guid, w), c in choices.items():
        given = c.ex["given_label"]
        if given is not None and str(given) not in names:
            raise LabelingToolError(f"{path}: guid {guid}: given_label {given!r} is not one of {names} (another "
                                    f"ranking than {issues_path}?)")
        many = [v for v in c.votes if len(v) != 1]
        if many:
            raise LabelingToolError(f"{path}: guid {guid}{'' if w is None else f' word {w}'}: {len(many[0])} labels "
                                    "chosen where one is (is the project's labeling config the exported one?)")
        note = "; ".join(dict.fromkeys(c.notes))
        tally = Counter(v[0] for v in c.votes)
        if not tally and not c.skipped and not note:
            continue  # nobody labelled it
        if len(tally) > 1:
            action, label = "unsure", None
            votes = ", ".join(f"{k} {v}" for k, v in tally.most_common())
            note = f"annotators disagree: {votes}" + (f"; {note}" if note else "")
        elif tally:
            label = next(iter(tally))
            action = "keep" if label == given else "relabel"
        elif c.skipped:
            action, label = "unsure", None
        else:
            action, label = None, None  # a note only
        corr = {"guid": guid, "example_fingerprint": c.ex["fingerprint"], "action": action, "label": label,
                "original_label": given}
        if w is not None:
            corr["word_index"] = w
        if note:
            corr["note"] = note
        out.append(corr)
    return out


def corrections_from_export(path: str | os.PathLike, fmt: str, issues_path: str | os.PathLike) -> dict:
    """``corrections.json`` (as the review page exports it) from a labeling tool's export of tasks / records
    made by :func:`export_issues` from ``issues_path`` (whose settings give the kind and label names; the kind
    reads a multiple choice, :meth:`Kind.labeling_corrections`).

    Raises:
        LabelingToolError: an unreadable export, a label that is not one of the label names, or tasks
            exported from different data (two dataset fingerprints).
    """
    from training_dynamics.review.page import label_names_from_rows, short_dataset_name

    issues, settings = read_issues(issues_path)
    kind = kinds.of_meta(settings)
    names = [str(n) for n in (settings.get("label_names") or label_names_from_rows(issues))]
    choices = read_export(path, fmt, multiple=kind.labeling_choice == "multiple")
    fps = {c.ex["dataset_fingerprint"] for c in choices.values()}
    if len(fps) > 1:
        raise LabelingToolError(f"{path}: its tasks were exported from {len(fps)} versions of the data (dataset "
                                "fingerprints differ); import each export separately")
    for (guid, w), c in choices.items():
        bad = [n for v in c.votes for n in v if n not in names]
        if bad:
            raise LabelingToolError(f"{path}: guid {guid}{'' if w is None else f' word {w}'}: label {bad[0]!r} is not "
                                    f"one of {names} (is the project's labeling config the exported one?)")
    out = kind.labeling_corrections(
        [{"ex": c.ex, "votes": c.votes, "skipped": c.skipped, "note": "; ".join(dict.fromkeys(c.notes))}
         for c in choices.values() if c.votes or c.skipped or c.notes],
        issues=issues, label_names=names, where=str(path))
    if out is None:
        out = _single_corrections(choices, names, path, issues_path)
    counts = Counter(c["action"] or "note" for c in out)
    logger.info("%d choices from %s: %s", len(out), fmt, ", ".join(f"{k} {v}" for k, v in sorted(counts.items())))
    return {"dataset": short_dataset_name(settings), "dataset_fingerprint": next(iter(fps), None) if fps else None,
            "kind": kind.name, "label_names": names, "imported_from": fmt, "corrections": out}


def write_corrections(doc: dict, output: str | os.PathLike) -> Path:
    """Write ``corrections.json`` atomically."""
    output = Path(output)
    output.parent.mkdir(parents=True, exist_ok=True)
    fileio.write_json(output, doc)
    logger.info("%d corrections -> %s (apply them with `training-dynamics apply --corrections %s`)",
                len(doc["corrections"]), output, output)
    return output
