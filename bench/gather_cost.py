#!/usr/bin/env python
"""What gathering an epoch onto one process costs, against one file per process (issue 22).

    python bench/gather_cost.py P N1,N2,...      # e.g. 4 100000,1000000,4000000

P CPU processes (gloo) each hold a recorder buffer of N examples x 2 classes (float32) and its
"filled" flags (int32), as DynamicsTrainer does before writing an epoch; the script times the
all_gather plus the merge on process 0 and process 0 writing the one npz file, against each
process writing an npz of its own rows. Prints one line per N.
"""
import os, sys, time, tempfile
import numpy as np, torch, torch.distributed as dist, torch.multiprocessing as mp

def work(rank, world, sizes, port, out):
    os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port))
    torch.set_num_threads(1)
    dist.init_process_group("gloo", rank=rank, world_size=world)
    for n in sizes:
        lg = torch.randn(n, 2); filled = torch.ones(n, dtype=torch.int32)
        dist.barrier(); t0 = time.perf_counter()
        gl = [torch.empty_like(lg) for _ in range(world)]; gf = [torch.empty_like(filled) for _ in range(world)]
        dist.all_gather(gl, lg); dist.all_gather(gf, filled)
        merged = torch.stack(gl)[torch.stack(gf).argmax(0), torch.arange(n)] if rank == 0 else None
        dist.barrier(); t_gather = time.perf_counter() - t0
        # one file per process: its own rows only (N / world), no gather
        own = np.arange(rank, n, world)
        t0 = time.perf_counter()
        np.savez(f"{out}/p{rank}.npz", guid=own, logits=lg.numpy()[own], gold=np.zeros(len(own), np.int64))
        dist.barrier(); t_own = time.perf_counter() - t0
        t0 = time.perf_counter()
        if rank == 0:
            np.savez(f"{out}/all.npz", guid=np.arange(n), logits=merged.numpy(), gold=np.zeros(n, np.int64))
        dist.barrier(); t_one = time.perf_counter() - t0
        if rank == 0:
            print(f"P={world} N={n:>10,}: gather+merge {t_gather:6.2f} s, then rank 0 writes {t_one:5.2f} s | one file per process {t_own:5.2f} s", flush=True)
    dist.destroy_process_group()

if __name__ == "__main__":
    world = int(sys.argv[1]); sizes = [int(x) for x in sys.argv[2].split(",")]
    with tempfile.TemporaryDirectory() as out:
        mp.spawn(work, args=(world, sizes, 29500 + world, out), nprocs=world)
