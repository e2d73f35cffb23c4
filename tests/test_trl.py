"""Recording inside TRL's SFTTrainer: TRL's data handling and loss unchanged, every example once per epoch."""

from __future__ import annotations


import numpy as np
import pytest

trl = pytest.importorskip("trl")

from training_dynamics.kinds.generative import dynamics as gen_dynamics
from training_dynamics.kinds.generative import data as clm_data

from training_dynamics.demo.data import (TINY_CHAT_TEMPLATE_TAGGED, build_tiny_gpt2, chat_texts,  # noqa: E402
                                         write_chat_demo)
from training_dynamics.kinds.generative.record import count_turns  # noqa: E402
from training_dynamics.analysis.run import Run  # noqa: E402


def _config(out, **kw):
    kw = {"max_length": 96, **kw}
    return trl.SFTConfig(output_dir=str(out), num_train_epochs=2, per_device_train_batch_size=8, learning_rate=1e-2,
                         logging_steps=1, save_strategy="no", report_to="none", seed=0,
                         assistant_only_loss=True, dataloader_pin_memory=False, disable_tqdm=True, bf16=False, **kw)


@pytest.mark.slow
def test_sft_trainer_records_each_example_once_per_epoch_with_trls_loss_unchanged(tmp_path):
    from datasets import load_dataset
    from transformers import AutoModelForCausalLM, AutoTokenizer, set_seed

    from training_dynamics.kinds.generative.trl import DynamicsSFTTrainer, PackingError

    paths = write_chat_demo(tmp_path / "data", n_train=36, n_validation=4, seed=2)
    model_dir = build_tiny_gpt2(tmp_path / "gpt2", chat_texts(paths["train"]), hidden_size=32, max_length=96)

    def train(cls, config=None, **extra):
        set_seed(0)
        tok = AutoTokenizer.from_pretrained(model_dir)
        tok.chat_template = TINY_CHAT_TEMPLATE_TAGGED  # TRL's assistant_only_loss needs {% generation %} tags
        ds = load_dataset("json", data_files=str(paths["train"]), split="train")
        trainer = cls(model=AutoModelForCausalLM.from_pretrained(model_dir), train_dataset=ds, processing_class=tok,
                      args=config or _config(tmp_path / cls.__name__), **extra)
        trainer.train()
        return [h["loss"] for h in trainer.state.log_history if "loss" in h], tok

    plain, tok = train(trl.SFTTrainer)
    recorded, _ = train(DynamicsSFTTrainer, dynamics_dir=tmp_path / "dy" / "training_dynamics")
    assert len(plain) == 10 and recorded == plain  # TRL's loss, step by step, bit for bit
    run = Run(tmp_path / "dy")
    assert run.meta["kind"] == "generative" and run.meta["max_turns"] == 2 and run.meta["epochs_completed"] == 2
    assert run.meta["trainer"] == "trl.SFTTrainer"
    dyn = run.dynamics(progress=False)
    assert sorted(dyn.guids.tolist()) == list(range(36)) and dyn.values.shape == (36, 2, 3)  # once per epoch
    # TRL's assistant mask learns the tokens record-clm's own masking learns
    data = clm_data.load_generative(train_file=str(paths["train"]))
    ours = clm_data.tokenize_generative(data.train, tok, data.text_columns, 96)
    n_ours = np.array([sum(t != -100 for t in lab[1:]) for lab in ours["labels"]])
    np.testing.assert_array_equal(dyn.values[np.argsort(dyn.guids), 0, 2], n_ours)
    guids, turns = gen_dynamics.read_turns(run.dynamics_dir, np.arange(36))
    assert ((turns[..., 2] > 0).sum(axis=-1) == count_turns(ours["labels"])[:, None]).all()
    assert dyn.values[:, 1, 0].mean() > dyn.values[:, 0, 0].mean()  # it learns

    # padding-free: the batch is one row; each example's values come from its own stretch of it
    flat_plain, _ = train(trl.SFTTrainer, config=_config(tmp_path / "fp", padding_free=True, max_length=None))
    flat, _ = train(DynamicsSFTTrainer, config=_config(tmp_path / "fr", padding_free=True, max_length=None),
                    dynamics_dir=tmp_path / "flat" / "training_dynamics")
    assert flat == flat_plain
    flat_dyn = Run(tmp_path / "flat").dynamics(progress=False)
    assert sorted(flat_dyn.guids.tolist()) == list(range(36))
    np.testing.assert_array_equal(flat_dyn.values[np.argsort(flat_dyn.guids), :, 2], dyn.values[np.argsort(dyn.guids), :, 2])
    _, flat_turns = gen_dynamics.read_turns(flat_dyn.dy_dir, np.arange(36))
    np.testing.assert_array_equal(flat_turns[..., 2], turns[..., 2])  # the same tokens in the same turns

    with pytest.raises(PackingError, match="packing=True: .* set packing=False to record") as err:
        DynamicsSFTTrainer(model=str(model_dir), args=_config(tmp_path / "p", packing=True), train_dataset=None,
                           dynamics_dir=tmp_path / "p")
    assert "\n" not in str(err.value)
