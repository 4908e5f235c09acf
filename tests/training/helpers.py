"""Small synthetic stand-ins for the data layer: dict samples, a collate that pads / draws negatives / masks,
and a tokenizer-like object. Shapes follow docs/architecture.md (the model batch)."""
from __future__ import annotations

import torch
from torch.utils.data import Dataset

from actbert.data.masking import MaskingConfig, mask_batch
from actbert.model import get_preset
from actbert.training.config import TrainConfig

VOCAB, D_A, D_R, N_ACT, N_REG = 60, 16, 24, 5, 7


class ToyTokenizer:
    pad_id, unk_id, cls_id, sep_id, mask_id = 0, 1, 2, 3, 4
    vocab_size = VOCAB


def tiny_config(**overrides):
    base = dict(vocab_size=VOCAB, action_feat_dim=D_A, region_feat_dim=D_R, num_action_classes=N_ACT,
                num_region_classes=N_REG)
    return get_preset("tiny", **{**base, **overrides})


def train_config(**overrides) -> TrainConfig:
    base = dict(steps=6, batch_size=4, lr=1e-3, warmup=2, eval_every=3, save_every=3, log_every=1, eval_batches=2,
                eval_retrieval=6, seed=3, device="cpu")
    return TrainConfig(**{**base, **overrides})


class ToyClips(Dataset):
    """`n` clips with random text / features; `equal=True` gives every sample the same lengths (DDP test)."""

    def __init__(self, n: int, seed: int = 0, equal: bool = False, nan_at: int | None = None):
        g = torch.Generator().manual_seed(seed)
        self.items = []
        for i in range(n):
            L = 8 if equal else int(torch.randint(3, 9, (1,), generator=g))
            A = 3 if equal else int(torch.randint(0, 4, (1,), generator=g))
            N = 4 if equal else int(torch.randint(0, 5, (1,), generator=g))
            cls = torch.softmax(torch.randn(N, N_REG, generator=g) * 2, -1)
            item = {
                "text": [2, *torch.randint(5, VOCAB, (L - 2,), generator=g).tolist(), 3],
                "action": torch.randn(A, D_A, generator=g),
                "action_labels": torch.randint(0, N_ACT, (A,), generator=g),
                "region": torch.randn(N, D_R, generator=g),
                "region_loc": torch.rand(N, 5, generator=g),
                "region_cls": cls,
            }
            if i == nan_at:
                item["action"] = torch.full((max(A, 1), D_A), float("nan"))
                item["action_labels"] = torch.zeros(max(A, 1), dtype=torch.long)
            self.items.append(item)

    def __len__(self) -> int:
        return len(self.items)

    def __getitem__(self, i: int) -> dict:
        return self.items[i]


def _pad(seqs, width, fill=0.0, dtype=None):
    shape = (len(seqs), width, *seqs[0].shape[1:])
    out = torch.full(shape, fill, dtype=dtype or seqs[0].dtype)
    mask = torch.zeros(len(seqs), width, dtype=torch.long)
    for i, s in enumerate(seqs):
        out[i, : len(s)] = s
        mask[i, : len(s)] = 1
    return out, mask


class ToyCollate:
    """Pads, replaces half the captions by another sample's (match_labels 0), then masks.

    `fixed=True`: sample at local position p is matched iff p is even, a mismatched sample takes the caption of
    its predecessor, and masking is position-based (text 1-2, action 0, region 0): deterministic and with equal
    target counts per sample, so per-rank loss means average to the global mean (DDP equivalence test).
    """

    def __init__(self, masking: bool = True, negatives: bool = True, fixed: bool = False):
        self.masking, self.negatives, self.fixed = masking, negatives, fixed

    def clean(self) -> "ToyCollate":
        return ToyCollate(masking=False, negatives=False)

    def __call__(self, samples: list[dict], generator: torch.Generator | None = None) -> dict[str, torch.Tensor]:
        B = len(samples)
        texts = [torch.tensor(s["text"]) for s in samples]
        labels = torch.ones(B, dtype=torch.long)
        if self.negatives:
            if self.fixed:
                labels = (torch.arange(B) % 2 == 0).long()
                texts = [texts[i] if labels[i] else texts[i - 1] for i in range(B)]
            else:
                labels = (torch.rand(B, generator=generator) < 0.5).long()
                shift = torch.randint(1, B, (1,), generator=generator).item()
                texts = [texts[i] if labels[i] else texts[(i + shift) % B] for i in range(B)]
        ids, tmask = _pad(texts, max(len(t) for t in texts), 0, torch.long)
        a_max, n_max = max(1, max(len(s["action"]) for s in samples)), max(1, max(len(s["region"]) for s in samples))
        act, amask = _pad([s["action"] for s in samples], a_max)
        alab, _ = _pad([s["action_labels"] for s in samples], a_max, -100, torch.long)
        reg, rmask = _pad([s["region"] for s in samples], n_max)
        loc, _ = _pad([s["region_loc"] for s in samples], n_max)
        cls, _ = _pad([s["region_cls"] for s in samples], n_max)
        batch = {"text_ids": ids, "text_mask": tmask, "action_feats": act, "action_mask": amask, "action_labels": alab,
                 "region_feats": reg, "region_loc": loc, "region_mask": rmask, "region_cls": cls, "match_labels": labels}
        if not self.masking:
            return batch
        if self.fixed:
            out = dict(batch)
            mlm = torch.full_like(ids, -100)
            mlm[:, 1:3] = ids[:, 1:3]
            out["mlm_labels"], out["text_ids"] = mlm, ids.clone().index_fill_(1, torch.tensor([1, 2]), 4)
            out["action_target"] = torch.full_like(alab, -100)
            out["action_target"][:, 0] = alab[:, 0]
            out["region_target_mask"] = torch.zeros_like(rmask, dtype=torch.bool)
            out["region_target_mask"][:, 0] = True
            return out
        special = {"pad": 0, "unk": 1, "cls": 2, "sep": 3, "mask": 4}
        return mask_batch(batch, MaskingConfig(), special, VOCAB, generator=generator)


class PoisonAfter(Dataset):
    """Returns NaN action features from the `calls`-th item read on (with workers=0, reads are in step order)."""

    def __init__(self, dataset: Dataset, calls: int):
        self.dataset, self.calls, self.seen = dataset, calls, 0

    def __len__(self) -> int:
        return len(self.dataset)

    def __getitem__(self, i: int) -> dict:
        self.seen += 1
        item = dict(self.dataset[i])
        if self.seen > self.calls:
            item["action"] = torch.full((max(1, len(item["action"])), D_A), float("nan"))
            item["action_labels"] = torch.zeros(len(item["action"]), dtype=torch.long)
        return item


class GradRecorder:
    """on_step hook: saves the (averaged, unscaled) gradients of every parameter at each step to `prefix-<step>.pt`."""

    def __init__(self, prefix: str):
        self.prefix = prefix

    def __call__(self, step: int, model: torch.nn.Module) -> None:
        grads = {n: p.grad.detach().clone() for n, p in model.named_parameters() if p.grad is not None}
        torch.save(grads, f"{self.prefix}-{step}.pt")


def ddp_config():
    return tiny_config(hidden_dropout=0.0, attention_dropout=0.0)


def ddp_train_config():
    return train_config(steps=2, batch_size=4, grad_accum=2, eval_every=0, save_every=0, warmup=1)


def ddp_worker(rank: int, world: int, port: int, out_dir: str) -> None:
    """One rank of the 2-process DDP test (started by torch.multiprocessing.spawn)."""
    import os

    from actbert.training.distributed import local_env
    from actbert.training.pretrain import pretrain

    os.environ.update(local_env(rank, world, port))
    torch.set_num_threads(1)
    pretrain(ddp_train_config(), ddp_config(), ToyClips(16, equal=True), None, ToyTokenizer(), out_dir,
             progress=False, collate_fn=ToyCollate(fixed=True), on_step=GradRecorder(f"{out_dir}/grads-rank{rank}"))
