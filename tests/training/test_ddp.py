"""2-process DDP on CPU (gloo) against one process on the same global batch: same losses, same averaged gradients."""
from __future__ import annotations

import json

import torch
import torch.multiprocessing as mp

from actbert.training.distributed import free_port
from actbert.training.pretrain import pretrain
from actbert.training.sampling import RankBatchSampler

from .helpers import GradRecorder, ToyClips, ToyCollate, ToyTokenizer, ddp_config, ddp_train_config, ddp_worker


def _train_losses(path):
    return [r["loss"] for r in map(json.loads, (path / "metrics.jsonl").read_text().splitlines()) if r["split"] == "train"]


def test_rank_split_is_disjoint_and_covers_the_global_batch():
    single = RankBatchSampler(10, 4, 0, 1, seed=5, epochs=2)
    ranks = [RankBatchSampler(10, 4, r, 2, seed=5, epochs=2) for r in range(2)]
    for whole, a, b in zip(single, *ranks):
        assert [i for i, _ in whole] == [i for i, _ in a] + [i for i, _ in b]
        assert a[0][1] != b[0][1]  # collate seeds differ per rank (no correlated masks)
    assert len(single) == 4  # 2 full batches per epoch (the tail of 2 is dropped), 2 epochs


def test_ddp_matches_single_process(tmp_path):
    single, multi = tmp_path / "single", tmp_path / "ddp"
    pretrain(ddp_train_config(), ddp_config(), ToyClips(16, equal=True), None, ToyTokenizer(), single, progress=False,
             collate_fn=ToyCollate(fixed=True), on_step=GradRecorder(f"{single}/grads"))
    multi.mkdir()
    mp.spawn(ddp_worker, args=(2, free_port(), str(multi)), nprocs=2, join=True)

    ref, got = _train_losses(single), _train_losses(multi)
    assert len(ref) == len(got) == 2
    assert torch.allclose(torch.tensor(ref), torch.tensor(got), rtol=1e-5, atol=1e-6), (ref, got)
    for step in range(2):
        g_ref = torch.load(f"{single}/grads-{step}.pt", weights_only=True)
        for rank in range(2):
            g = torch.load(f"{multi}/grads-rank{rank}-{step}.pt", weights_only=True)
            assert g.keys() == g_ref.keys()
            for name in g_ref:
                assert torch.allclose(g[name], g_ref[name], rtol=1e-4, atol=1e-6), (step, rank, name)
    # rank 0 alone wrote the run folder
    assert (multi / "checkpoints" / "step-00000002" / "model.safetensors").is_file()
