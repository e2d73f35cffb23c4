"""DynamicsRecorder on its own (no Trainer): filling by row, sampler padding, merging processes, resuming."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from training_dynamics.core.recorder import DynamicsRecorder


def recorder(n: int = 5, classes: int = 3) -> DynamicsRecorder:
    guids = np.arange(100, 100 + n)
    return DynamicsRecorder(guids, np.arange(n) % classes, classes)


def test_rows_land_in_their_slot_whatever_the_batch_order():
    rec = recorder()
    rec.update(torch.tensor([3, 0]), torch.tensor([[3.0, 3, 3], [0.0, 0, 0]]))
    rec.update(torch.tensor([4, 1, 2]), torch.tensor([[4.0, 4, 4], [1.0, 1, 1], [2.0, 2, 2]]))
    logits, filled = rec.state()
    np.testing.assert_array_equal(logits[:, 0].numpy(), [0, 1, 2, 3, 4])
    assert filled.tolist() == [1] * 5
    guids, lg, gold = rec.finalize(logits, filled)
    np.testing.assert_array_equal(guids, np.arange(100, 105))
    assert lg.dtype == np.float32 and lg.shape == (5, 3)
    np.testing.assert_array_equal(gold, [0, 1, 2, 0, 1])


def test_row_seen_twice_is_overwritten_and_counted_once():
    """DistributedSampler pads the last batch with examples from the start: they come back once more."""
    rec = recorder()
    rec.update(torch.tensor([0, 1, 2, 3, 4]), torch.zeros(5, 3))
    rec.update(torch.tensor([0, 1]), torch.ones(2, 3))  # padding repeats rows 0 and 1
    logits, filled = rec.state()
    assert filled.tolist() == [1, 1, 1, 1, 1] and int(filled.sum()) == 5
    assert logits[:2].eq(1).all() and logits[2:].eq(0).all()
    guids, _, _ = rec.finalize(logits, filled)
    assert len(guids) == len(set(guids.tolist())) == 5


def test_logits_are_detached_float32_copies():
    rec = recorder(n=2, classes=2)
    weight = torch.ones(2, 2, dtype=torch.float16, requires_grad=True)
    out = torch.tensor([[1.5, -2.0], [0.25, 4.0]], dtype=torch.float16) * weight  # part of a graph, half precision
    rec.update(torch.tensor([0, 1]), out)
    logits, _ = rec.state()
    assert logits.dtype == torch.float32 and not logits.requires_grad
    np.testing.assert_allclose(logits.numpy(), [[1.5, -2.0], [0.25, 4.0]])


def test_merge_takes_each_row_from_the_first_process_that_saw_it():
    # process 0 saw rows 0 and 2, process 1 rows 1 and 2 (row 2: padding on both)
    logits = torch.tensor([[[0.0, 0], [-1, -1], [2, 2]],
                           [[-1.0, -1], [1, 1], [9, 9]]])
    filled = torch.tensor([[1, 0, 1], [0, 1, 1]], dtype=torch.int32)
    merged, merged_filled = DynamicsRecorder.merge(logits, filled)
    np.testing.assert_array_equal(merged.numpy(), [[0, 0], [1, 1], [2, 2]])
    assert merged_filled.tolist() == [1, 1, 1]


def test_merge_keeps_rows_no_process_saw_missing():
    logits = torch.zeros(2, 3, 2)
    filled = torch.tensor([[1, 0, 0], [0, 0, 1]], dtype=torch.int32)
    _, merged_filled = DynamicsRecorder.merge(logits, filled)
    assert merged_filled.tolist() == [1, 0, 1]
    rec = DynamicsRecorder(np.array([7, 8, 9]), np.array([0, 1, 0]), 2)
    with pytest.raises(RuntimeError, match="1 of 3 training examples were not recorded this epoch \\(first guid 8\\)"):
        rec.finalize(torch.zeros(3, 2), merged_filled)


def test_finalize_raises_on_missing_rows():
    rec = recorder()
    rec.update(torch.tensor([0, 2, 4]), torch.zeros(3, 3))
    with pytest.raises(RuntimeError, match="2 of 5 training examples were not recorded this epoch \\(first guid 101\\)"):
        rec.finalize(*rec.state())


def test_state_and_load_state_round_trip():
    rec = recorder()
    rec.update(torch.tensor([1, 3]), torch.tensor([[1.0, 2, 3], [4.0, 5, 6]]))
    logits, filled = rec.state()
    saved = {"logits": logits.clone(), "filled": filled.clone().to(torch.int64)}  # as a checkpoint stores them
    other = recorder()
    other.load_state(saved["logits"], saved["filled"])
    restored_logits, restored_filled = other.state()
    assert torch.equal(restored_logits, logits) and torch.equal(restored_filled, filled)
    assert restored_filled.dtype == torch.int32
    saved["logits"][1] = 99  # a copy: the recorder does not alias what it was given
    assert other.state()[0][1, 0] == 1
    other.update(torch.tensor([0, 2, 4]), torch.zeros(3, 3))  # the rest of the epoch
    guids, lg, _ = other.finalize(*other.state())
    np.testing.assert_array_equal(lg[[1, 3]], [[1, 2, 3], [4, 5, 6]])


def test_state_before_any_update_is_empty_and_reset_forgets():
    rec = recorder()
    logits, filled = rec.state()
    assert logits.shape == (5, 3) and not filled.any()
    rec.update(torch.tensor([0]), torch.ones(1, 3))
    rec.reset()
    assert not rec.state()[1].any()


@pytest.mark.parametrize("guids, gold, message", [
    (np.array([1, 2, 3]), np.array([0, 1]), "must be equal 1-d shapes"),
    (np.array([[1, 2]]), np.array([[0, 1]]), "must be equal 1-d shapes"),
    (np.array([1, 1, 2]), np.array([0, 1, 0]), "guids must be unique"),
])
def test_bad_construction(guids, gold, message):
    with pytest.raises(ValueError, match=message):
        DynamicsRecorder(guids, gold, 2)
