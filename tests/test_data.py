"""Loading labelled files: what is refused before any model is loaded, with a one-line reason."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from training_dynamics.core.data import MAX_CLASSES, DataError, check_trainable, load_text_classification


def _jsonl(path: Path, rows: list[dict]) -> str:
    path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    return str(path)


def _csv(path: Path, text: str) -> str:
    path.write_text(text, encoding="utf-8")
    return str(path)


def _load(path: str, **kw):
    return load_text_classification(train_file=path, **kw)


# -- classes ------------------------------------------------------------------------------------
def test_one_class_file_is_refused(tmp_path):
    data = _load(_csv(tmp_path / "one.csv", "sentence,label\na,pos\nb,pos\nc,pos\n"))
    with pytest.raises(DataError, match=r"one\.csv: only one class \(\['pos'\]\)"):
        check_trainable(data, data.source["train_file"])


def test_one_class_present_with_two_names_is_refused(tmp_path):
    data = _load(_csv(tmp_path / "ones.csv", "sentence,label\na,1\nb,1\n"), label_names=["neg", "pos"])
    with pytest.raises(DataError, match="every training example has label 'pos'"):
        check_trainable(data, "ones.csv")


def test_one_class_after_max_train_samples_names_the_flag(tmp_path):
    data = _load(_csv(tmp_path / "sorted.csv", "sentence,label\na,0\nb,0\nc,1\n"), max_train_samples=2)
    with pytest.raises(DataError, match=r"every training example \(the first 2, --max_train_samples\) has label '0'"):
        check_trainable(data, "sorted.csv", max_train_samples=2)


def test_two_classes_are_trainable(tmp_path):
    data = _load(_csv(tmp_path / "two.csv", "sentence,label\na,0\nb,1\n"))
    check_trainable(data, "two.csv")
    assert data.label_names == ["0", "1"]


@pytest.mark.parametrize("rows, where", [
    ([{"sentence": "a", "label": 0}, {"sentence": "b", "label": 1}, {"sentence": "c", "label": "1"}],
     r"row 0: 0, row 2: '1'"),
    ([{"sentence": "a", "label": "pos"}, {"sentence": "b", "label": 1}], r"row 0: 'pos', row 1: 1"),
])
def test_numbers_and_strings_in_one_label_column_are_refused(tmp_path, rows, where):
    """``1`` and ``"1"`` would silently be one class (datasets decodes both as 1) or two."""
    path = _jsonl(tmp_path / "mixed.jsonl", rows)
    with pytest.raises(DataError, match=rf"mixed\.jsonl: column 'label' mixes numbers and strings \({where}\)"):
        _load(path)


def test_label_column_that_is_a_text_column_is_refused(tmp_path):
    path = _csv(tmp_path / "t.csv", "sentence,label\na,0\nb,1\n")
    with pytest.raises(DataError, match="column 'sentence' is both the label column and a text column"):
        _load(path, label_column="sentence")


def test_mostly_unique_labels_are_not_classes(tmp_path):
    rows = "".join(f"text {i},title {i // 2 if i < 10 else i}\n" for i in range(60))
    path = _csv(tmp_path / "titles.csv", "sentence,title\n" + rows)
    with pytest.raises(DataError, match="column 'title' has 55 distinct labels in 60 examples: is it a text or id"):
        _load(path, label_column="title")


def test_small_files_may_have_many_classes(tmp_path):
    """Under 50 examples the half-distinct rule does not apply: 30 classes in 40 rows is allowed."""
    rows = "".join(f"text {i},c{i % 30}\n" for i in range(40))
    assert _load(_csv(tmp_path / "small.csv", "sentence,label\n" + rows)).num_labels == 30


def test_more_than_max_classes_are_refused_unless_named(tmp_path):
    n = 2 * (MAX_CLASSES + 1)
    rows = "".join(f"text {i},c{i % (MAX_CLASSES + 1)}\n" for i in range(n))
    path = _csv(tmp_path / "many.csv", "sentence,label\n" + rows)
    with pytest.raises(DataError, match=f"has {MAX_CLASSES + 1} distinct labels in {n} examples"):
        _load(path)
    names = sorted({f"c{i}" for i in range(MAX_CLASSES + 1)})
    assert _load(path, label_names=names).num_labels == MAX_CLASSES + 1


def test_sparse_integer_labels_making_too_many_classes_are_refused(tmp_path):
    path = _csv(tmp_path / "sparse.csv", "sentence,label\na,0\nb,1\nc,5000\n")
    with pytest.raises(DataError, match=r"label 5000 in column 'label' makes 5001 classes \(ids 0..5000\)"):
        _load(path)


# -- ids ----------------------------------------------------------------------------------------
def test_string_ids_are_kept_as_they_are(tmp_path):
    path = _jsonl(tmp_path / "ids.jsonl", [{"idx": f"id-{i}", "sentence": "x", "label": i % 2} for i in range(4)])
    assert _load(path).train["guid"] == ["id-0", "id-1", "id-2", "id-3"]


def test_an_integer_and_its_string_never_merge_silently(tmp_path):
    """The json loader reads a column holding 1 and "1" as one type; the two rows are then refused
    as a repeated id, never merged (a mix that reaches the library as Python values is refused too:
    test_dynamics_file)."""
    path = _jsonl(tmp_path / "ids.jsonl", [{"idx": g, "sentence": "x", "label": i % 2} for i, g in enumerate([1, "1"])])
    with pytest.raises(DataError, match=r"ids\.jsonl: column 'idx' has repeated ids"):
        _load(path)


@pytest.mark.parametrize("suffix", ["jsonl", "csv"])
def test_float_ids_are_refused_not_truncated(tmp_path, suffix):
    if suffix == "jsonl":
        path = _jsonl(tmp_path / "f.jsonl", [{"guid": g, "sentence": "x", "label": i % 2}
                                             for i, g in enumerate([0.0, 1.5, 3.0])])
        expect = r"column 'guid' holds floats \(row 1: 1.5\)"
    else:
        path = _csv(tmp_path / "f.csv", "idx,sentence,label\n2.0,a,0\n2.7,b,1\n")
        expect = r"column 'idx' holds floats \(row 1: 2.7\)"
    with pytest.raises(DataError, match=expect):
        _load(path)


def test_missing_id_is_refused(tmp_path):
    path = _jsonl(tmp_path / "gap.jsonl", [{"idx": 0, "sentence": "a", "label": 0}, {"sentence": "b", "label": 1}])
    with pytest.raises(DataError, match="row 1 has no id in column 'idx'"):
        _load(path)


def test_integer_ids_are_kept(tmp_path):
    path = _jsonl(tmp_path / "ok.jsonl", [{"idx": 10 * i, "sentence": "x", "label": i % 2} for i in range(3)])
    assert list(_load(path).train["guid"]) == [0, 10, 20]


# -- text ---------------------------------------------------------------------------------------
def test_lone_surrogate_names_file_row_and_column(tmp_path):
    path = tmp_path / "sur.jsonl"
    path.write_text('{"sentence": "fine", "label": 0}\n\n{"sentence": "bad \\ud800 text", "label": 1}\n')
    with pytest.raises(DataError, match=r"sur\.jsonl: row 1 \(line 3\), column 'sentence': lone UTF-16 surrogate "
                                        r"'\\ud800' at character 4"):
        _load(str(path))


def test_lone_surrogate_in_validation_file(tmp_path):
    train = _jsonl(tmp_path / "train.jsonl", [{"sentence": "a", "label": 0}, {"sentence": "b", "label": 1}])
    val = tmp_path / "val.jsonl"
    val.write_text('{"sentence": "\\udfff", "label": 0}\n')
    with pytest.raises(DataError, match=r"val\.jsonl: row 0 \(line 1\), column 'sentence': lone UTF-16 surrogate"):
        load_text_classification(train_file=train, validation_file=str(val))


def test_surrogate_pair_is_fine(tmp_path):
    path = tmp_path / "emoji.jsonl"
    path.write_text('{"sentence": "ok \\ud83d\\ude00", "label": 0}\n{"sentence": "b", "label": 1}\n')
    assert _load(str(path)).train["sentence"][0] == "ok \U0001F600"
