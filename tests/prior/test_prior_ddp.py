"""Two CPU processes through torchrun (gloo): replicas must end identical."""
import os
import subprocess
import sys
import textwrap

import pytest
import torch

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

SCRIPT = textwrap.dedent("""
    import os, sys, torch
    from mrirecon_vdm.prior import TrainConfig, train
    cfg = TrainConfig.load(sys.argv[1])
    res = train(cfg)
    rank = int(os.environ["RANK"])
    torch.save({"params": [p.detach().clone() for p in res.model.parameters()],
                "ema": [p.detach().clone() for p in res.ema.parameters()],
                "step": res.step, "world": torch.distributed.is_initialized()},
               os.path.join(sys.argv[2], f"rank{rank}.pt"))
""")


@pytest.mark.skipif(not torch.distributed.is_available() or
                    not torch.distributed.is_gloo_available(),
                    reason="torch.distributed with gloo is not available")
def test_torchrun_two_processes(tiny_train_config, tmp_path):
    script = tmp_path / "ddp_train.py"
    script.write_text(SCRIPT)
    cfg_path = tmp_path / "cfg.json"
    tiny_train_config.replace(steps=3, val_every=2, save_every=2).save(str(cfg_path))
    env = {**os.environ, "PYTHONPATH": REPO, "OMP_NUM_THREADS": "1"}
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2",
           str(script), str(cfg_path), str(tmp_path)]
    done = subprocess.run(cmd, cwd=REPO, env=env, capture_output=True, text=True, timeout=180)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    r0 = torch.load(tmp_path / "rank0.pt")
    r1 = torch.load(tmp_path / "rank1.pt")
    assert r0["step"] == r1["step"] == 3
    for a, b in zip(r0["params"] + r0["ema"], r1["params"] + r1["ema"]):
        assert torch.equal(a, b)
    # rank 0 wrote the files, with the images of both processes counted
    out = tiny_train_config.out_dir
    state = torch.load(os.path.join(out, "checkpoint.pt"), weights_only=False)
    assert state["world_size"] == 2 and len(state["rng"]["ranks"]) == 2
    assert state["images_seen"] == 3 * 2 * tiny_train_config.batch_size
    # different data on the two ranks: their data generators differ
    g0, g1 = (r["data"] for r in state["rng"]["ranks"])
    assert not torch.equal(g0, g1)
