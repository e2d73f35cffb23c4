"""Helper of tests/test_generative_distributed.py (not a test): train a causal LM with `record-clm`'s
flags under torchrun, as ``train_and_record`` does up to ``trainer.train()``, and write what the
Trainer and accelerate made of the distributed flags to a JSON report (main process).

    python -m torch.distributed.run --standalone --nproc_per_node 2 tests/clm_distributed_probe.py REPORT.json \\
        [--force_fsdp_on_cpu] <record-clm flags>

``--force_fsdp_on_cpu``: accelerate (1.15) drops its FSDP plugin when the processes are CPU
processes (``DistributedType.MULTI_CPU``: only the GPU-like types switch to ``DistributedType.FSDP``
in ``AcceleratorState.__init__``), so the Trainer silently trains with DDP. This flag applies the
plugin there anyway, so the recorder can be tested under real FSDP2 sharding (torch's
``fully_shard`` works on CPU with gloo). A test shim, not something the project does for users.
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))


def force_fsdp_on_cpu() -> None:
    from accelerate.state import AcceleratorState, PartialState
    from accelerate.utils import DistributedType

    original = AcceleratorState.__init__

    def init(self, *args, fsdp_plugin=None, **kwargs):
        original(self, *args, fsdp_plugin=fsdp_plugin, **kwargs)
        if fsdp_plugin is not None and self.distributed_type == DistributedType.MULTI_CPU:
            self.distributed_type = DistributedType.FSDP
            self.fsdp_plugin = fsdp_plugin
            # as accelerate does at the end of __init__: a later AcceleratorState() copies it back from there
            PartialState._shared_state["distributed_type"] = self.distributed_type

    AcceleratorState.__init__ = init


def main(report: str, argv: list[str]) -> int:
    if "--force_fsdp_on_cpu" in argv:
        argv.remove("--force_fsdp_on_cpu")
        force_fsdp_on_cpu()
    from torch.distributed.fsdp import FSDPModule
    from transformers import set_seed

    from training_dynamics.kinds.generative.arguments import GenerativeDataArguments
    from training_dynamics.cli.record import end_process_group, parse_args
    from training_dynamics.workflows.train import build_clm_trainer

    margs, dargs, yargs, targs, _ = parse_args(argv, prog="clm_distributed_probe", data_class=GenerativeDataArguments)
    set_seed(targs.seed)
    trainer = build_clm_trainer(margs, dargs, yargs, targs)
    trainer.train()
    state = trainer.accelerator.state
    if trainer.is_world_process_zero():
        Path(report).write_text(json.dumps({
            "world_size": targs.world_size, "device": str(targs.device), "fsdp": targs.fsdp,
            "fsdp_plugin_args": targs.fsdp_plugin_args, "distributed_type": str(state.distributed_type),
            "accelerate_fsdp_plugin": getattr(state, "fsdp_plugin", None) is not None,
            "is_fsdp_enabled": trainer.is_fsdp_enabled, "wrapped": type(trainer.model_wrapped).__name__,
            "fsdp_sharded": isinstance(trainer.model_wrapped, FSDPModule),
            "global_step": trainer.state.global_step, "epochs_written": trainer.epochs_written,
            "dynamics_dir": str(trainer.dynamics_dir), "rank": int(os.environ.get("RANK", 0)),
        }, default=str))
    end_process_group()  # as the CLI does: no process exits while another's gloo thread still runs
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1], sys.argv[2:]))
