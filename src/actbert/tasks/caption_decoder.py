"""The caption decoder of the captioning task: a small transformer decoder over ActBERT's encoded video.

Design (why):
* The memory is ActBERT's **fused** video streams — every region hidden state (global token first) and
  every action hidden state (`[ACT]` first) after the Tangled Transformer — each projected to the decoder
  width, tagged with a learned stream-type embedding and layer-normalised. Regions carry the objects
  ("tomato", "pan"), actions carry the verbs ("cut", "pour"); cross-attention picks per word.
* The encoder's text stream is given only `[CLS] [SEP]`, so nothing of the caption reaches the memory:
  the decoder cannot copy the answer through the TNT blocks (which mix text into the visual streams).
* A separate causal decoder rather than ActBERT's own (bidirectional) text stream: left-to-right
  generation with beam search needs causal self-attention, and keeping the decoder apart lets the
  encoder be frozen or fine-tuned with one flag.
* Word embeddings may start from ActBERT's text embeddings (same vocabulary, same width), and the output
  layer is tied to them (fewer parameters; the usual choice for small captioning data).
* Pre-LN layers (`norm_first=True`): they train stably without warm-up tricks at small widths.

Decoding: `greedy_decode` and `beam_search` (beam `K`, max length, GNMT length penalty
`((5 + len) / 6) ** alpha`; a hypothesis ends at `[SEP]`; the search stops for a sample once `K`
hypotheses have ended). With `K = 1` beam search makes exactly the greedy choices.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass, fields, replace
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn

__all__ = ["CaptionHeadConfig", "CaptionDecoder", "greedy_decode", "beam_search", "length_penalty"]


@dataclass
class CaptionHeadConfig:
    """Architecture and default decoding of the caption head (saved as JSON beside its weights)."""

    vocab_size: int = 30522
    pad_id: int = 0
    bos_id: int = 101  # [CLS] starts every target sequence
    eos_id: int = 102  # [SEP] ends it
    d_model: int | None = None  # None: ActBERT's text width (then word embeddings can be copied)
    num_layers: int = 2
    num_heads: int = 4
    ffn_dim: int | None = None  # None: 4 * d_model
    dropout: float = 0.1
    max_len: int = 20  # generated word pieces, [SEP] excluded; training targets are cut to this too
    memory: str = "region+action"  # which fused streams the decoder attends to: region+action | region | action
    init_from_text_embeddings: bool = True  # copy ActBERT's word embeddings when widths match
    # video window -> tokens (None: the encoder config's max_actions / max_regions)
    max_actions: int | None = None
    max_regions: int | None = None
    # default decoding
    beam_size: int = 5
    length_penalty: float = 0.6
    min_len: int = 1

    def __post_init__(self) -> None:
        if self.memory not in ("region+action", "region", "action"):
            raise ValueError(f"memory must be 'region+action', 'region' or 'action', got {self.memory!r}")
        if self.d_model is not None and self.d_model % self.num_heads:
            raise ValueError(f"d_model {self.d_model} is not divisible by num_heads {self.num_heads}")
        if self.max_len < 1 or self.beam_size < 1:
            raise ValueError(f"max_len and beam_size must be >= 1, got {self.max_len}, {self.beam_size}")
        for name in ("pad_id", "bos_id", "eos_id"):
            if not 0 <= getattr(self, name) < self.vocab_size:
                raise ValueError(f"{name} {getattr(self, name)} is outside the vocabulary (size {self.vocab_size})")

    def resolve(self, encoder_config, tokenizer=None) -> "CaptionHeadConfig":
        """A copy with widths, token ids and window sizes filled in from the encoder and the tokenizer."""
        d = self.d_model or encoder_config.text_hidden
        changes: dict[str, Any] = dict(d_model=d, ffn_dim=self.ffn_dim or 4 * d,
                                       max_actions=self.max_actions or encoder_config.max_actions,
                                       max_regions=self.max_regions or encoder_config.max_regions)
        if tokenizer is not None:
            changes.update(vocab_size=tokenizer.vocab_size, pad_id=tokenizer.pad_id, bos_id=tokenizer.cls_id,
                           eos_id=tokenizer.sep_id)
        if changes["max_actions"] + 1 > encoder_config.max_action_positions:
            raise ValueError(f"max_actions {changes['max_actions']} + [ACT] exceeds the encoder's "
                             f"max_action_positions {encoder_config.max_action_positions}")
        return replace(self, **changes)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> "CaptionHeadConfig":
        unknown = set(data) - {f.name for f in fields(cls)}
        if unknown:
            raise ValueError(f"unknown CaptionHeadConfig fields {sorted(unknown)}")
        return cls(**data)


class CaptionDecoder(nn.Module):
    """Causal transformer decoder; `memory()` turns an `EncoderOutput` into its cross-attention memory."""

    def __init__(self, head: CaptionHeadConfig, region_hidden: int, action_hidden: int):
        super().__init__()
        self.head = h = head
        d = h.d_model
        if d is None or h.ffn_dim is None:
            raise ValueError("CaptionHeadConfig must be resolved (d_model, ffn_dim set): use head.resolve(encoder_config)")
        self.word = nn.Embedding(h.vocab_size, d, padding_idx=h.pad_id)
        self.position = nn.Embedding(h.max_len + 1, d)  # bos + max_len inputs at most
        self.emb_norm = nn.LayerNorm(d)
        self.dropout = nn.Dropout(h.dropout)
        self.mem_region = nn.Linear(region_hidden, d)
        self.mem_action = nn.Linear(action_hidden, d)
        self.mem_type = nn.Embedding(2, d)  # 0 region, 1 action
        self.mem_norm = nn.LayerNorm(d)
        layer = nn.TransformerDecoderLayer(d, h.num_heads, h.ffn_dim, h.dropout, activation="gelu",
                                           batch_first=True, norm_first=True)
        self.layers = nn.TransformerDecoder(layer, h.num_layers, norm=nn.LayerNorm(d))
        self.out_bias = nn.Parameter(torch.zeros(h.vocab_size))  # output weights are tied to `word`
        for m in self.modules():
            if isinstance(m, (nn.Linear, nn.Embedding)):
                nn.init.normal_(m.weight, 0.0, 0.02)
                if isinstance(m, nn.Linear) and m.bias is not None:
                    nn.init.zeros_(m.bias)
        with torch.no_grad():
            self.word.weight[h.pad_id].zero_()

    def memory(self, enc) -> tuple[Tensor, Tensor]:
        """(memory [B, M, d], padding mask [B, M] True = ignore) from the fused region / action streams."""
        parts, pads = [], []
        if "region" in self.head.memory:
            r = self.mem_region(enc.region_hidden) + self.mem_type.weight[0]
            parts.append(r)
            pads.append(~enc.region_mask.bool())
        if "action" in self.head.memory:
            a = self.mem_action(enc.action_hidden) + self.mem_type.weight[1]
            parts.append(a)
            pads.append(~enc.action_mask.bool())
        return self.dropout(self.mem_norm(torch.cat(parts, 1))), torch.cat(pads, 1)

    def forward(self, ids: Tensor, memory: Tensor, memory_pad: Tensor, ids_pad: Tensor | None = None) -> Tensor:
        """Logits [B, T, V] of the next token at every position of `ids` [B, T] (causal)."""
        T = ids.shape[1]
        if T > self.position.num_embeddings:
            raise ValueError(f"decoder input of length {T} exceeds max_len + 1 = {self.position.num_embeddings}")
        pos = torch.arange(T, device=ids.device)
        x = self.dropout(self.emb_norm(self.word(ids) + self.position(pos)[None]))
        causal = torch.triu(torch.ones(T, T, dtype=torch.bool, device=ids.device), 1)
        hid = self.layers(x, memory, tgt_mask=causal, tgt_key_padding_mask=ids_pad,
                          memory_key_padding_mask=memory_pad)
        return F.linear(hid, self.word.weight, self.out_bias)


def length_penalty(length: int, alpha: float) -> float:
    """GNMT's length penalty: scores are divided by ((5 + length) / 6) ** alpha (alpha 0 = plain log-prob)."""
    return ((5.0 + length) / 6.0) ** alpha


def _step_logprobs(decoder: CaptionDecoder, ids: Tensor, memory: Tensor, memory_pad: Tensor, step: int,
                   min_len: int) -> Tensor:
    """log P(next token) [B, V] after `ids`; pad / bos never generated, eos not before `min_len` words."""
    logp = F.log_softmax(decoder(ids, memory, memory_pad)[:, -1].float(), dim=-1)
    h = decoder.head
    logp[:, h.pad_id] = -float("inf")
    if h.bos_id != h.eos_id:
        logp[:, h.bos_id] = -float("inf")
    if step < min_len:
        logp[:, h.eos_id] = -float("inf")
    return logp


@torch.no_grad()
def greedy_decode(decoder: CaptionDecoder, memory: Tensor, memory_pad: Tensor, max_len: int | None = None,
                  min_len: int | None = None) -> list[list[int]]:
    """Most probable next token at every step; each sequence ends at `[SEP]` (not returned) or `max_len`."""
    h = decoder.head
    max_len = min(h.max_len, max_len or h.max_len)
    min_len = h.min_len if min_len is None else min_len
    B = memory.shape[0]
    ids = torch.full((B, 1), h.bos_id, dtype=torch.long, device=memory.device)
    done = torch.zeros(B, dtype=torch.bool, device=memory.device)
    out: list[list[int]] = [[] for _ in range(B)]
    for step in range(max_len):
        nxt = _step_logprobs(decoder, ids, memory, memory_pad, step, min_len).argmax(-1)
        for b in range(B):
            if not done[b]:
                if int(nxt[b]) == h.eos_id:
                    done[b] = True
                else:
                    out[b].append(int(nxt[b]))
        if bool(done.all()):
            break
        ids = torch.cat([ids, nxt[:, None]], 1)
    return out


@torch.no_grad()
def beam_search(decoder: CaptionDecoder, memory: Tensor, memory_pad: Tensor, beam_size: int | None = None,
                max_len: int | None = None, alpha: float | None = None, min_len: int | None = None) -> list[list[int]]:
    """Beam search over `[B]` memories; returns the best hypothesis (ids without bos / eos) per sample.

    Live beams are ranked by summed log-probability; an ended hypothesis (it chose `[SEP]`, or reached
    `max_len`) is scored by log-probability / `length_penalty(words, alpha)`. A sample stops once
    `beam_size` hypotheses have ended; the best ended one is returned.
    """
    h = decoder.head
    K = beam_size or h.beam_size
    max_len = min(h.max_len, max_len or h.max_len)
    alpha = h.length_penalty if alpha is None else alpha
    min_len = h.min_len if min_len is None else min_len
    B, dev = memory.shape[0], memory.device
    mem = memory.repeat_interleave(K, 0)
    mpad = memory_pad.repeat_interleave(K, 0)
    ids = torch.full((B * K, 1), h.bos_id, dtype=torch.long, device=dev)
    scores = torch.full((B, K), -float("inf"), device=dev)
    scores[:, 0] = 0.0  # all beams start identical: keep only one alive at step 0
    finished: list[list[tuple[float, list[int]]]] = [[] for _ in range(B)]
    active = [True] * B
    for step in range(max_len):
        logp = _step_logprobs(decoder, ids, mem, mpad, step, min_len)  # [B*K, V]
        V = logp.shape[1]
        cand = (scores.reshape(-1, 1) + logp).reshape(B, K * V)
        top_s, top_i = cand.topk(min(2 * K, K * V), dim=1)
        new_ids = ids.new_full((B, K, ids.shape[1] + 1), h.pad_id)
        new_scores = torch.full((B, K), -float("inf"), device=dev)
        for b in range(B):
            if not active[b]:
                continue
            n = 0
            for s, i in zip(top_s[b].tolist(), top_i[b].tolist()):
                if s == -float("inf"):
                    break
                beam, tok = divmod(i, V)
                prefix = ids[b * K + beam]
                if tok == h.eos_id:
                    words = prefix[1:].tolist()
                    finished[b].append((s / length_penalty(len(words), alpha), words))
                else:
                    new_ids[b, n, :-1] = prefix
                    new_ids[b, n, -1] = tok
                    new_scores[b, n] = s
                    n += 1
                if n == K:
                    break
            if len(finished[b]) >= K:
                active[b] = False
        if not any(active):
            break
        ids, scores = new_ids.reshape(B * K, -1), new_scores
    for b in range(B):  # live beams at max_len end there
        if active[b]:
            for k in range(K):
                if scores[b, k] > -float("inf"):
                    words = ids[b * K + k, 1:].tolist()
                    finished[b].append((float(scores[b, k]) / length_penalty(len(words), alpha), words))
    return [max(f, key=lambda x: x[0])[1] if f else [] for f in finished]
