"""The kinds of run: the interface every kind implements, and the registry that finds a kind by name.

A run's kind is written once, in its meta at recording (``dynamics_meta.json``: ``"kind"``; none means
classification, as the seed's runs are), and that is the only truth. Each kind is a plugin: a package
under :mod:`training_dynamics.kinds` (or any installed package) that implements :class:`Kind` and is
named in the ``training_dynamics.kinds`` entry-point group (``pyproject.toml``). The shared layers
(core, analysis, decisions, review) never import a kind; :attr:`Run.kind
<training_dynamics.analysis.run.Run.kind>` resolves a run's kind here, and everything else calls the
object it gets (``docs/design.md``, "Adding a kind").
"""

from __future__ import annotations

import abc
import logging
import os
from importlib import metadata
from typing import TYPE_CHECKING, Any, Sequence

from training_dynamics.core.errors import TrainingDynamicsError

if TYPE_CHECKING:
    import pandas as pd

logger = logging.getLogger(__name__)

ENTRY_POINT_GROUP = "training_dynamics.kinds"
DEFAULT_KIND = "classification"  #: the kind of a run whose meta names none (the seed's runs)


class KindError(TrainingDynamicsError):
    """A run of an unknown kind, or an action its kind does not support."""


class Kind(abc.ABC):
    """What a kind of run is: one implementation per kind (a package under ``training_dynamics/kinds``).

    Recording (data arguments, loader, model class, tokenize, collator, trainer) is the kind's
    ``record.py`` and ``data.py``; this interface is what the analysis, decision and review layers call.
    """

    #: the name a run's meta records (``"kind"``) and the registry knows the kind by
    name: str = ""
    #: what a decision's summary counts ("labels wrong", "responses flagged")
    example_noun: str = "label"
    #: decisions of :mod:`training_dynamics.decisions.rules` that apply to this kind, and the default
    decisions: tuple[str, ...] = ()
    default_decision: str = ""
    #: how this kind's epoch files hold their values when not as logits
    #: (a :class:`~training_dynamics.core.dynamics_file.EpochLayout`; registered with the kind)
    epoch_layout = None
    #: the ``record --problem_type`` (transformers' ``config.problem_type``) that records this kind, if any
    problem_type: str | None = None
    #: what ``apply --output`` may write for this kind
    output_formats: tuple[str, ...] = (".jsonl", ".json", ".csv", ".tsv", ".parquet")
    #: columns this kind's ``td_metrics`` files hold beyond the shared ones: ``{name: "int" | "float"}``
    metric_columns: dict[str, str] = {}
    #: the meta's counts of recorded rows, which add up over disjoint parts of the data (a cross-fitted run's halves)
    meta_counts: tuple[str, ...] = ("num_examples",)

    # -- data -------------------------------------------------------------------------------------
    @abc.abstractmethod
    def load_data(self, src: dict, *, label_names: Sequence[str] | None = None, cache_dir: str | None = None,
                  where: str | os.PathLike = "the settings"):
        """The data a recorded source names (as a run's meta or a ranking's settings hold it), loaded
        with the recorded columns. The returned object has ``train`` (with ``guid``), ``label_names``,
        ``source`` and the methods ``display_texts()`` and ``binding_labels(label_names=None)``."""

    def recording(self) -> tuple:
        """``(data arguments class, trainer builder)`` of ``record --problem_type`` :attr:`problem_type`."""
        raise KindError(f"a {self.name} run is not recorded by `training-dynamics record --problem_type`")

    def explain_load_failure(self, where: str, train_file: str | None, cache_dir: str | None = None) -> None:
        """When ``apply`` cannot load ``train_file`` as this kind's data: raise a clearer one-line error if the
        file is recognisably another kind's (default: nothing to add)."""

    def check_apply_source(self, train_file: str | None, where: str) -> None:
        """Refuse, in one line, corrections that cannot be applied without ``--train_file``."""
        if not train_file:
            raise KindError(f"{where}: corrections of a {self.name} run apply to its training file: pass --train_file")

    # -- metrics ----------------------------------------------------------------------------------
    @abc.abstractmethod
    def write_metrics(self, run, *, burn_out: int | None, include_ci: bool, progress: bool, output_format: str):
        """Compute the run's metrics tables and write them into the run folder; ``(columns, summary)``."""

    @abc.abstractmethod
    def compute_metrics(self, run, *, burn_out: int | None, include_ci: bool, progress: bool) -> dict:
        """The run's metrics table as columns, written nowhere."""

    def check_metrics_flags(self, run, used: Sequence[str]) -> None:
        """Refuse, in one line, ``metrics`` flags this kind's tables do not support (``used``: partitions,
        parquet; default: a kind with tables of its own writes them whole, as JSON lines)."""
        if used:
            raise KindError(f"{run.path} is a {self.name} run: {', '.join(used)} is not supported for its metrics yet "
                            "(its tables are written whole, as jsonl); run metrics without it")

    def extra_maps(self, run) -> dict:
        """More data maps of a run beside its main map: ``{file name part: (table, title)}``."""
        return {}

    def selection_table(self, rm) -> "pd.DataFrame":
        """The table ``select`` chooses rows of (``rm``: :class:`~training_dynamics.analysis.run.RunMetrics`)."""
        return rm.df

    @abc.abstractmethod
    def write_selected_data(self, path, data, guids):
        """Write the selected examples of ``data`` as a file the recording command of this kind reads."""

    def check_joinable(self, run) -> None:
        """Refuse, in one line, to average or compare runs of this kind (default: they can be)."""

    # -- label issues -----------------------------------------------------------------------------
    @abc.abstractmethod
    def find_issues(self, runs: Sequence, *, data, source: str, score: str, rule: str, **options):
        """Rank (and decide) label issues: ``(table, decision or None, settings)``."""

    def check_decision(self, rule: str, *, source: str, where: str) -> None:
        """Refuse, in one line, a decision (or ``--source model``) this kind cannot make."""
        if source == "model":
            raise KindError(f"{where} is a {self.name} run: --source model scores a classifier; use --source dynamics")
        if rule not in self.decisions:
            raise KindError(f"{where} is a {self.name} run: --decision {rule} does not apply; choose one of "
                            f"{', '.join(self.decisions)} (default {self.default_decision})")

    @abc.abstractmethod
    def describe_decision(self, dec, label_names: Sequence[str]) -> str:
        """The decision's one-line summary, in this kind's words."""

    # -- review and corrections -------------------------------------------------------------------
    @abc.abstractmethod
    def review_card(self) -> dict:
        """How the review page presents an example (JSON for the page's script; see ``web/review.js``)."""

    @abc.abstractmethod
    def review_rows(self, issues, settings: dict, label_names: Sequence[str]):
        """``(rows, dataset fingerprint or None, warnings, extra payload)`` for the review page."""

    def output_writers(self, data) -> dict:
        """Formats this kind writes a corrected dataset in itself: ``{suffix: write(df, path)}`` (default none)."""
        return {}

    def check_corrections(self, data, parsed, *, where: str) -> None:
        """Checks a corrections file must pass before its fingerprints are compared (default none)."""

    @abc.abstractmethod
    def apply_corrections(self, data, parsed, *, where: str, unsure: str, skip_changed: bool, fingerprints):
        """The corrected dataset as a table, in the data's own columns."""

    # -- labeling tools (review --format label-studio | argilla, import-labels) ---------------------
    #: what an annotator picks on one exported task / record: ``"single"`` (one label name) or ``"multiple"``
    #: (every label the example has: Label Studio's ``Choices choice="multiple"``, Argilla's MultiLabelQuestion)
    labeling_choice: str = "single"

    def labeling_examples(self, rows, payload: dict) -> list[dict] | None:
        """The tasks / records a labeling tool shows for the review rows ``rows`` (:meth:`review_rows`' table;
        ``payload``: the review page's payload of them), one plain dict each with ``guid``, ``fingerprint``,
        ``dataset_fingerprint``, ``text``, ``rank``, ``score`` and what this kind's choice needs
        (:mod:`training_dynamics.workflows.labeling_tools`). Default ``None``: one per row, its given label and the
        suggested one (a single choice)."""
        return None

    def labeling_corrections(self, choices: Sequence[dict], *, issues, label_names: Sequence[str],
                             where: str) -> list[dict] | None:
        """The corrections (each as the review page exports it) that the annotators' ``choices`` make:
        per exported example ``{"ex": its exported binding, "votes": [tuple of label names per annotator],
        "skipped": n, "note": text}``; ``issues``: the ranking they were exported from. Default ``None``: one
        correction per example (keep, relabel or unsure), the single-choice reading."""
        return None

    # -- held-out evidence (record --cross_fit 2) -------------------------------------------------
    def heldout_scorer(self, trainer, rows, data):
        """A callable ``score() -> (keys, probabilities (R, C))``: ``trainer``'s model, in eval mode, on ``rows``
        (the other half's rows of the loaded training ``data``), read as the training rows were (the cut in
        ``trainer.dynamics_meta``); ``keys`` holds ``guid`` (and ``word_index`` where a row is a word). Default:
        not supported, in one line."""
        raise KindError(f"--cross_fit 2 is not supported for {self.name} runs yet; record without it")

    def __repr__(self) -> str:
        return f"<kind {self.name}>"


# -- the registry ---------------------------------------------------------------------------------
_KINDS: dict[str, Kind] = {}
_LOADED = False


def register(kind: Kind) -> Kind:
    """Add ``kind`` under its name (a plugin that is not installed with an entry point calls this)."""
    if not isinstance(kind, Kind) or not getattr(kind, "name", ""):  # a named Kind, whatever its name
        raise TypeError(f"{kind!r} is not a named training_dynamics Kind")
    _KINDS[kind.name] = kind
    return kind


def _entry_points():
    return {ep.name: ep for ep in metadata.entry_points(group=ENTRY_POINT_GROUP)}


def _load(name: str) -> None:
    """Load the plugin named ``name`` (only that one: a command pays for the kind it uses)."""
    ep = _entry_points().get(name)
    if ep is not None:
        kind = ep.load()
        _KINDS.setdefault(name, kind() if isinstance(kind, type) else kind)
        _register_layout(_KINDS[name])
    elif not _entry_points():  # a source checkout without installed metadata: the built-in kinds
        import importlib

        for builtin, kind in importlib.import_module("training_dynamics.kinds").BUILTIN.items():
            _KINDS.setdefault(builtin, kind)
            _register_layout(kind)


_LAYOUTS: list = []


def _register_layout(kind: Kind) -> None:
    """The kind's epoch-file layout, for the readers (:func:`~training_dynamics.core.dynamics_file.layout_of`)."""
    if kind.epoch_layout is not None:
        register_layout(kind.epoch_layout)


def register_layout(layout):
    """Add an epoch-file layout (:class:`~training_dynamics.core.dynamics_file.EpochLayout`) the readers try
    before the logits layout; a kind's ``epoch_layout`` is added when the kind is loaded."""
    if all(existing.name != layout.name for existing in _LAYOUTS):
        _LAYOUTS.append(layout)
    return layout


def layouts() -> list:
    """Every registered epoch-file layout (the kind plugins loaded first)."""
    _load_plugins()
    return list(_LAYOUTS)


def _load_plugins() -> None:
    global _LOADED
    if not _LOADED:
        _LOADED = True
        for name in _entry_points() or ["*"]:
            if name not in _KINDS:
                _load(name)


def get(name: str | None) -> Kind:
    """The kind called ``name`` (``None``: classification, the seed's runs)."""
    name = name or DEFAULT_KIND
    if name not in _KINDS:
        _load(name)
    kind = _KINDS.get(name)
    if kind is None:
        raise KindError(f"unknown kind of run {name!r} (known: {', '.join(names())}); a newer version of "
                        "training-dynamics, or a kind plugin that is not installed, recorded it?")
    return kind


def kind_name(meta: dict | None) -> str:
    """The name of the kind a meta (or a data source) records (none: :data:`DEFAULT_KIND`)."""
    return (meta or {}).get("kind") or DEFAULT_KIND


def of_meta(meta: dict | None) -> Kind:
    """The kind a run's (or a ranking's, or a corrections file's) meta records."""
    return get(kind_name(meta))


def of_runs(runs: Sequence[Any]) -> Kind:
    """The one kind of several runs; a one-line error when they mix kinds."""
    kinds = {r.kind.name for r in runs}
    if len(kinds) > 1:
        raise KindError(f"the runs mix kinds ({', '.join(sorted(kinds))}); give runs of one kind")
    return runs[0].kind if runs else get(None)


def for_problem_type(problem_type: str) -> Kind | None:
    """The kind that ``record --problem_type problem_type`` records (``None``: none does)."""
    return next((get(n) for n in names() if get(n).problem_type == problem_type), None)


def problem_types() -> list[str]:
    """Every problem type a registered kind records."""
    return [get(n).problem_type for n in names() if get(n).problem_type]


def metric_columns() -> dict[str, str]:
    """The extra ``td_metrics`` columns of every registered kind (``{name: "int" | "float"}``), for readers that
    hold a metrics file and no run."""
    _load_plugins()
    return {c: t for k in _KINDS.values() for c, t in k.metric_columns.items()}


def names() -> list[str]:
    """Every registered kind's name."""
    _load_plugins()
    return sorted(_KINDS)
