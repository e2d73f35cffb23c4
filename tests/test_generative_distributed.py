"""A causal LM recorded by several processes: DDP under torchrun, the Trainer's FSDP flags, and the
gather of the generative (3-value) buffers without processes.

What the Trainer's FSDP does on CPU (torch 2.13, accelerate 1.15, transformers 5.24): transformers
turns ``--fsdp --fsdp_config`` into accelerate FSDP2 plugin arguments, but accelerate's
``AcceleratorState`` switches to ``DistributedType.FSDP`` only for GPU-like process types; for CPU
processes (``MULTI_CPU``, gloo) it drops the plugin without a word, and the Trainer wraps the model
in ``DistributedDataParallel``. ``test_trainer_fsdp_flags_on_cpu_fall_back_to_ddp`` checks that this
is still so (and that the recording is right anyway); ``test_fsdp2_sharded_training_records_each_example_once``
applies the plugin on CPU with a test shim (tests/clm_distributed_probe.py) so that the recorder
runs under real FSDP2 sharding (torch's ``fully_shard`` works on CPU with gloo).
"""

from __future__ import annotations

import json
import math
import sys
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
import torch

from conftest import run_cli
from training_dynamics.kinds.generative import dynamics as gen_dynamics

SCRIPT = "run_clm_and_record_td.py"
PROBE = "tests/clm_distributed_probe.py"
N_TRAIN = 150  # 2 processes x 8 per batch = 16: not a divisor, so the sampler pads the last batch
EPOCHS = 2
VALUES = ("logprob", "token_accuracy")
TORCHRUN = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2"]
ENV = {"OMP_NUM_THREADS": "1"}
FSDP_CONFIG = {"transformer_layer_cls_to_wrap": ["GPT2Block"], "reshard_after_forward": True}  # FSDP2 full shard


@pytest.fixture(scope="module")
def gen_data(tmp_path_factory) -> dict[str, Path]:
    from training_dynamics.demo.data import write_generative_demo

    return write_generative_demo(tmp_path_factory.mktemp("gen_data") / "data", n_train=N_TRAIN, n_validation=20, seed=0)


@pytest.fixture(scope="module")
def tiny_gpt2(gen_data, tmp_path_factory) -> Path:
    from training_dynamics.demo.data import build_tiny_gpt2

    texts = [f"{r['prompt']} {r['response']}" for key in ("train", "validation")
             for r in map(json.loads, open(gen_data[key]))]
    return build_tiny_gpt2(tmp_path_factory.mktemp("tiny_gpt2"), texts, hidden_size=32, num_layers=2, num_heads=2)


def clm_args(model: Path, data: dict, out: Path, *extra) -> list:
    return ["--model_name_or_path", model, "--train_file", data["train"], "--validation_file", data["validation"],
            "--output_dir", out / "model_out", "--dy_log_dir", out / "dy_log", "--dy_model_name", "tiny",
            "--num_train_epochs", EPOCHS, "--per_device_train_batch_size", 8, "--per_device_eval_batch_size", 32,
            "--max_seq_length", 64, "--learning_rate", "5e-3", "--report_to", "none", "--save_strategy", "no",
            "--seed", 1, "--disable_tqdm", "true", *extra]


def dy_dir(out: Path) -> Path:
    return out / "dy_log" / "train" / "tiny" / "training_dynamics"


def read_rows(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines()]


def check_each_example_once(d: Path) -> dict[int, dict[int, dict]]:
    """Every epoch file holds each guid exactly once; returns {epoch: {guid: row}}."""
    assert sorted(p.name for p in d.glob("dynamics_epoch_*")) == [f"dynamics_epoch_{e}.jsonl" for e in range(EPOCHS)]
    by_epoch = {}
    for e in range(EPOCHS):
        rows = read_rows(d / f"dynamics_epoch_{e}.jsonl")
        guids = [r["guid"] for r in rows]
        assert len(guids) == N_TRAIN and sorted(guids) == list(range(N_TRAIN)), f"epoch {e}: not each guid once"
        by_epoch[e] = {r["guid"]: r for r in rows}
    meta = json.loads((d / "dynamics_meta.json").read_text())
    assert (meta["kind"], meta["num_examples"], meta["epochs_completed"]) == ("generative", N_TRAIN, EPOCHS)
    return by_epoch


def check_sane(by_epoch: dict, reference: dict) -> None:
    """Finite values in range; the token count of each example is the one a single process records."""
    for e, rows in by_epoch.items():
        values = np.array([[rows[g][f"{k}_epoch_{e}"] for k in VALUES] for g in range(N_TRAIN)])
        assert np.isfinite(values).all()
        logprob, accuracy = values.T
        assert (logprob <= 0).all() and ((accuracy >= 0) & (accuracy <= 1)).all()
        tokens = [rows[g]["num_tokens"] for g in range(N_TRAIN)]
        assert min(tokens) >= 1
        assert tokens == [reference[0][g]["num_tokens"] for g in range(N_TRAIN)]


@pytest.fixture(scope="module")
def single_run(gen_data, tiny_gpt2, tmp_path_factory) -> dict:
    """One process, same data and flags: the reference token counts."""
    out = tmp_path_factory.mktemp("single")
    run_cli(SCRIPT, *clm_args(tiny_gpt2, gen_data, out), env=ENV)
    return check_each_example_once(dy_dir(out))


@pytest.fixture(scope="module")
def ddp_run(gen_data, tiny_gpt2, tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("ddp")
    run_cli(SCRIPT, *clm_args(tiny_gpt2, gen_data, out), launcher=TORCHRUN, env=ENV)
    return out


def probe(tmp_path: Path, gen_data, tiny_gpt2, *extra) -> tuple[dict, Path]:
    """tests/clm_distributed_probe.py under torchrun with the Trainer's FSDP flags; (its report, output folder)."""
    config = tmp_path / "fsdp_config.json"
    config.write_text(json.dumps(FSDP_CONFIG))
    out, report = tmp_path / "run", tmp_path / "report.json"
    run_cli(PROBE, report, *extra, *clm_args(tiny_gpt2, gen_data, out, "--fsdp", "--fsdp_config", config),
            launcher=TORCHRUN, env=ENV)
    return json.loads(report.read_text()), out


@pytest.mark.slow
def test_torchrun_ddp_records_each_generative_example_once(ddp_run, single_run):
    by_epoch = check_each_example_once(dy_dir(ddp_run))
    check_sane(by_epoch, single_run)
    state = json.loads((ddp_run / "model_out" / "trainer_state.json").read_text())
    assert state["global_step"] == EPOCHS * math.ceil(N_TRAIN / 16)  # the two processes split the data


@pytest.mark.slow
def test_trainer_fsdp_flags_on_cpu_fall_back_to_ddp(gen_data, tiny_gpt2, single_run, tmp_path):
    """The limitation the README states: on CPU processes the Trainer's FSDP is silently DDP."""
    report, out = probe(tmp_path, gen_data, tiny_gpt2)
    # transformers accepted the flags and built accelerate's FSDP2 plugin arguments ...
    assert report["fsdp"] is True and report["world_size"] == 2
    assert report["fsdp_plugin_args"]["fsdp_version"] == 2
    assert report["fsdp_plugin_args"]["transformer_cls_names_to_wrap"] == "GPT2Block"
    # ... which accelerate drops for CPU processes: the model is trained with DDP, not sharded
    assert (report["distributed_type"], report["accelerate_fsdp_plugin"], report["is_fsdp_enabled"],
            report["wrapped"], report["fsdp_sharded"]) == (
        "DistributedType.MULTI_CPU", False, False, "DistributedDataParallel", False), (
        f"accelerate now applies FSDP on CPU processes ({report}): update the README's 'Multi-GPU and "
        "multi-process' section, docs/design.md and this module's docstring; the FSDP test needs no shim any more")
    check_sane(check_each_example_once(dy_dir(out)), single_run)


@pytest.mark.slow
def test_fsdp2_sharded_training_records_each_example_once(gen_data, tiny_gpt2, single_run, ddp_run, tmp_path):
    """Real FSDP2 sharding (GPT2Block auto-wrap, full shard) on 2 CPU processes, via the shim."""
    report, out = probe(tmp_path, gen_data, tiny_gpt2, "--force_fsdp_on_cpu")
    assert (report["distributed_type"], report["is_fsdp_enabled"], report["fsdp_sharded"]) == (
        "DistributedType.FSDP", True, True), report
    assert report["global_step"] == EPOCHS * math.ceil(N_TRAIN / 16) and report["epochs_written"] == [0, 1]
    by_epoch = check_each_example_once(dy_dir(out))
    check_sane(by_epoch, single_run)
    ddp = check_each_example_once(dy_dir(ddp_run))
    for e in range(EPOCHS):  # same data order and the same mathematics as DDP: the same values
        got = [[by_epoch[e][g][f"{k}_epoch_{e}"] for k in VALUES] for g in range(N_TRAIN)]
        want = [[ddp[e][g][f"{k}_epoch_{e}"] for k in VALUES] for g in range(N_TRAIN)]
        np.testing.assert_allclose(got, want, atol=1e-4)


# -- the gather path without processes ----------------------------------------------------------

def _rank_buffers(n: int, world: int, batch: int = 3, seed: int = 0):
    """What each of ``world`` processes records in one epoch: rows from a shuffling DistributedSampler
    (which pads with repeated rows when ``world`` does not divide ``n``), values from token_stats of
    per-process random logits; response lengths differ per row."""
    from torch.utils.data import DistributedSampler

    from training_dynamics.core import dynamics_file
    from training_dynamics.core.recorder import DynamicsRecorder
    from training_dynamics.kinds.generative.record import IGNORE_INDEX, token_stats

    g = torch.Generator().manual_seed(seed)
    seq, vocab = 12, 17
    labels = torch.randint(0, vocab, (n, seq), generator=g)
    prompt = torch.randint(1, seq - 2, (n,), generator=g)  # no loss on the prompt
    labels[torch.arange(seq)[None, :] < prompt[:, None]] = IGNORE_INDEX
    tokens = (labels[:, 1:] != IGNORE_INDEX).sum(1)
    guids = np.arange(1000, 1000 + n)
    recorders, rows_of = [], []
    for rank in range(world):
        rec = DynamicsRecorder(guids, np.zeros(n, dtype=np.int64), len(gen_dynamics.GENERATIVE_VALUES))
        rows = torch.tensor(list(DistributedSampler(range(n), num_replicas=world, rank=rank, shuffle=True, seed=seed)))
        for b in rows.split(batch):
            logits = torch.randn(len(b), seq, vocab, generator=g) * (rank + 1)  # each process sees other values
            rec.update(b, token_stats(logits, labels[b]))
        recorders.append(rec)
        rows_of.append(rows.tolist())
    return recorders, rows_of, tokens


def _gathered_on_rank0(recorders):
    """``DynamicsTrainer._gathered`` of process 0, with accelerate's gather (concatenation over processes
    along dim 0, in process order) replaced by the same concatenation of every process's buffers."""
    from training_dynamics.core.recorder import DynamicsTrainer

    states = [rec.state() for rec in recorders]

    def gather(t):
        return torch.cat([s[0] if t.dim() == 2 else s[1] for s in states])

    fake = SimpleNamespace(recorder=recorders[0], args=SimpleNamespace(world_size=len(recorders), device="cpu"),
                           accelerator=SimpleNamespace(gather=gather))
    return DynamicsTrainer._gathered(fake)


@pytest.mark.parametrize("n, world", [(12, 2), (13, 2), (13, 3), (14, 4)],
                         ids=["disjoint", "padding-1", "padding-2", "padding-2-of-4"])
def test_gathered_generative_buffers_hold_each_row_once_from_one_process(n, world, tmp_path):
    from training_dynamics.core import dynamics_file

    recorders, rows_of, tokens = _rank_buffers(n, world)
    seen = [r for rows in rows_of for r in rows]
    assert (len(seen) - len(set(seen))) == (-n) % world  # the sampler's padding: rows two processes saw
    values, filled = _gathered_on_rank0(recorders)
    assert values.shape == (n, len(gen_dynamics.GENERATIVE_VALUES)) and filled.tolist() == [1] * n
    for row in range(n):  # the whole row (all its values) comes from the first process that saw it
        first = next(rank for rank, rows in enumerate(rows_of) if row in rows)
        assert torch.equal(values[row], recorders[first].state()[0][row])
    assert values[:, -1].tolist() == tokens.float().tolist()  # num_tokens intact, never mixed or summed
    guids, vals, _ = recorders[0].finalize(values, filled)
    path = gen_dynamics.write_generative_epoch(tmp_path, 0, guids, vals)
    written = read_rows(path)
    assert [r["guid"] for r in written] == list(range(1000, 1000 + n))
    assert [r["num_tokens"] for r in written] == tokens.tolist()


def test_gathered_generative_buffers_refuse_a_row_no_process_saw():
    recorders, rows_of, _ = _rank_buffers(13, 2)
    lost = rows_of[1][0]
    if lost in rows_of[0]:
        lost = rows_of[1][1]
    recorders[1]._filled[lost] = 0  # as if process 1 had skipped that batch
    values, filled = _gathered_on_rank0(recorders)
    assert int(filled.sum()) == 12
    with pytest.raises(RuntimeError, match=f"1 of 13 training examples were not recorded this epoch "
                                           f"\\(first guid {1000 + lost}\\)"):
        recorders[0].finalize(values, filled)
