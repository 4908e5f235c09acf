"""The Tangled Transformer block against a naive, loop-based reference written from the paper's Figure 3
(`../shared/spec/tnt-figure3.png`) and, for kv_mode="add", PaddleVideo's `BertEntAttention`:

    w-transformer: Q = h_w, K/V = h_w's own keys/values + the region context c_r   (red line)
    r-transformer: Q = h_r, K/V = h_r's own keys/values + the word context c_w     (blue line)
    a-transformer: self-attention only; c_w and c_r are the action queries' attention over words / regions.
"""
from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F

from actbert.model import get_preset
from actbert.model.tnt import TangledBlock, nearest_resize


def lin(layer, x):  # x: [d_in] -> [d_out], one token at a time
    return layer.weight @ x + layer.bias


def naive_attention(queries, keys, values, valid, heads):
    """queries: list of [D]; keys/values: list of [D]; valid: list of bool. Loops over heads and keys."""
    d = queries[0].shape[0] // heads
    outputs = []
    for q in queries:
        out = torch.zeros_like(q)
        for h in range(heads):
            sl = slice(h * d, (h + 1) * d)
            scores = [float(q[sl] @ k[sl]) / math.sqrt(d) if ok else -math.inf for k, ok in zip(keys, valid)]
            top = max(scores)
            weights = [math.exp(s - top) if s != -math.inf else 0.0 for s in scores]
            total = sum(weights)
            for w, v in zip(weights, values):
                out[sl] += (w / total) * v[sl]
        outputs.append(out)
    return outputs


def naive_resize(ctx, valid, length, over_real):
    """Nearest neighbour: target j takes source floor(j * n / L) of the n (real, in order) action slots."""
    source = [c for c, ok in zip(ctx, valid) if ok] if over_real else ctx
    return [source[(j * len(source)) // length] for j in range(length)]


def naive_block(block: TangledBlock, h_t, m_t, h_r, m_r, h_a, m_a):
    """One sample (no batch axis). h_*: [L, width], m_*: [L] bool."""
    heads, mode = block.heads, block.kv_mode

    def proj(stream, h):
        return ([lin(stream.query, x) for x in h], [lin(stream.key, x) for x in h], [lin(stream.value, x) for x in h])

    q_t, k_t, v_t = proj(block.text, h_t)
    q_r, k_r, v_r = proj(block.region, h_r)
    q_a, k_a, v_a = proj(block.action, h_a)
    mt, mr, ma = m_t.tolist(), m_r.tolist(), m_a.tolist()
    c_w = naive_attention(q_a, k_t, v_t, mt, heads)  # action looks at words
    c_r = naive_attention(q_a, k_r, v_r, mr, heads)  # action looks at regions
    if mode == "stack":  # own keys/values, then the other modality's action-guided context appended
        text_ctx = naive_attention(
            q_t, k_t + [lin(block.region_context_key, c) for c in c_r],
            v_t + [lin(block.region_context_value, c) for c in c_r], mt + ma, heads)
        region_ctx = naive_attention(
            q_r, k_r + [lin(block.word_context_key, c) for c in c_w],
            v_r + [lin(block.word_context_value, c) for c in c_w], mr + ma, heads)
        action_ctx = naive_attention(q_a, k_a, v_a, ma, heads)
    elif mode == "add":  # PaddleVideo: key_av(c_av) onto text keys, key_at(c_at) onto region keys, value_at both
        over_real = block.resize_over_real

        def added(own, ctx, linear):
            sized = naive_resize([lin(linear, c) for c in ctx], ma, len(own), over_real)
            return [o + c for o, c in zip(own, sized)]

        text_ctx = naive_attention(
            q_t, added(k_t, c_r, block.region_context_key), added(v_t, c_r, block.context_value), mt, heads)
        region_ctx = naive_attention(
            q_r, added(k_r, c_w, block.word_context_key), added(v_r, c_w, block.context_value), mr, heads)
        action_ctx = naive_attention(q_a, k_a, v_a, ma, heads)
    else:  # coattention ablation (ViLBERT-style): words look at regions and vice versa
        text_ctx = naive_attention(q_t, k_r + c_r, v_r + c_r, mr + ma, heads)
        region_ctx = naive_attention(q_r, k_t + c_w, v_t + c_w, mt + ma, heads)
        action_ctx = naive_attention(q_a, k_a + c_w + c_r, v_a + c_w + c_r, ma + ma + ma, heads)

    def finish(stream, h, ctx):
        rows = []
        for x, c in zip(h, ctx):
            y = F.layer_norm(x + lin(stream.out, c), x.shape, stream.norm.weight, stream.norm.bias, stream.norm.eps)
            f = lin(stream.ffn.out, F.gelu(lin(stream.ffn.inp, y)))
            rows.append(F.layer_norm(y + f, y.shape, stream.ffn.norm.weight, stream.ffn.norm.bias, stream.ffn.norm.eps))
        return torch.stack(rows)

    return finish(block.text, h_t, text_ctx), finish(block.region, h_r, region_ctx), finish(block.action, h_a, action_ctx)


def _block(**overrides):
    cfg = get_preset("tiny", text_hidden=32, region_hidden=48, action_hidden=40, bi_hidden=24,
                     text_heads=2, region_heads=2, action_heads=2, bi_heads=3, **overrides)
    block = TangledBlock(cfg).eval()
    with torch.no_grad():  # random biases too, so a dropped or swapped bias shows
        for p in block.parameters():
            p.add_(torch.randn_like(p) * 0.1)
    return block


def _inputs(B=2, L=7, N=5, A=4):
    h_t, h_r, h_a = torch.randn(B, L, 32), torch.randn(B, N, 48), torch.randn(B, A, 40)
    m_t = torch.tensor([[1] * 7, [1] * 4 + [0] * 3]).bool()
    m_r = torch.tensor([[1] * 5, [1] + [0] * 4]).bool()
    m_a = torch.tensor([[1] * 4, [1, 0, 1, 0]]).bool()  # a gap, so "real slots in order" is exercised
    return h_t, m_t, h_r, m_r, h_a, m_a


MODES = [dict(kv_mode="stack"), dict(kv_mode="add"), dict(kv_mode="add", context_resize_over="all"),
         dict(kv_mode="coattention")]


@pytest.mark.parametrize("mode", MODES, ids=lambda m: "-".join(m.values()))
def test_tnt_block_matches_naive_reference(mode):
    torch.manual_seed(0)
    block = _block(**mode)
    h_t, m_t, h_r, m_r, h_a, m_a = _inputs()
    with torch.no_grad():
        t, r, a, _ = block(h_t, m_t, h_r, m_r, h_a, m_a)
        for b in range(h_t.shape[0]):
            nt, nr, na = naive_block(block, h_t[b], m_t[b], h_r[b], m_r[b], h_a[b], m_a[b])
            torch.testing.assert_close(t[b], nt, atol=1e-5, rtol=1e-4)
            torch.testing.assert_close(r[b], nr, atol=1e-5, rtol=1e-4)
            torch.testing.assert_close(a[b], na, atol=1e-5, rtol=1e-4)


def _cut_contexts(block):
    """Zero the learned projections through which c_r / c_w enter the word / region streams."""
    for name in ("region_context_key", "region_context_value", "word_context_key", "word_context_value",
                 "context_value"):
        if hasattr(block, name):
            getattr(block, name).weight.data.zero_()
            getattr(block, name).bias.data.zero_()


@pytest.mark.parametrize("kv_mode", ["stack", "add"])
def test_words_and_regions_meet_only_through_the_action_stream(kv_mode):
    torch.manual_seed(2)
    block = _block(kv_mode=kv_mode)
    h_t, m_t, h_r, m_r, h_a, m_a = _inputs()
    other_r, other_t = torch.randn_like(h_r), torch.randn_like(h_t)
    with torch.no_grad():
        t, r, a, _ = block(h_t, m_t, h_r, m_r, h_a, m_a)
        t2, _, a2, _ = block(h_t, m_t, other_r, m_r, h_a, m_a)
        _, r3, a3, _ = block(other_t, m_t, h_r, m_r, h_a, m_a)
        # with the contexts in place, each stream does hear the other modality (through the actions) ...
        assert not torch.allclose(t, t2, atol=1e-4) and not torch.allclose(r, r3, atol=1e-4)
        # ... and the action stream itself does plain self-attention
        torch.testing.assert_close(a, a2)
        torch.testing.assert_close(a, a3)
        _cut_contexts(block)
        t, r, _, _ = block(h_t, m_t, h_r, m_r, h_a, m_a)
        t2, _, _, _ = block(h_t, m_t, other_r, m_r, h_a, m_a)
        _, r3, _, _ = block(other_t, m_t, h_r, m_r, h_a, m_a)
    torch.testing.assert_close(t, t2)  # text no longer depends on the regions
    torch.testing.assert_close(r, r3)  # nor the regions on the words


@pytest.mark.parametrize("mode", MODES[:2] + MODES[3:], ids=lambda m: m["kv_mode"])
def test_padded_action_slots_change_nothing(mode):
    torch.manual_seed(1)
    block = _block(**mode)
    h_t, m_t, h_r, m_r, h_a, m_a = _inputs()
    moved = h_a.clone()
    moved[1, 1] = 100.0  # sample 1's slots 1 and 3 are padding
    moved[1, 3] = -50.0
    with torch.no_grad():
        base = block(h_t, m_t, h_r, m_r, h_a, m_a)
        after = block(h_t, m_t, h_r, m_r, moved, m_a)
    torch.testing.assert_close(base[0], after[0])
    torch.testing.assert_close(base[1], after[1])
    torch.testing.assert_close(base[2][:, m_a[1]], after[2][:, m_a[1]])


def test_paddle_resize_over_all_slots_lets_padding_in():
    """The PaddleVideo quirk `context_resize_over="all"` is real: padded slots' contexts reach the text."""
    torch.manual_seed(1)
    block = _block(kv_mode="add", context_resize_over="all")
    h_t, m_t, h_r, m_r, h_a, m_a = _inputs()
    m_r = torch.ones_like(m_r)
    moved = h_a.clone()
    moved[1, 1] = 100.0
    with torch.no_grad():
        assert not torch.allclose(block(h_t, m_t, h_r, m_r, h_a, m_a)[0][1], block(h_t, m_t, h_r, m_r, moved, m_a)[0][1])


def test_modes_differ():
    torch.manual_seed(3)
    h = _inputs()
    outs = []
    for mode in ("stack", "add", "coattention"):
        torch.manual_seed(4)
        with torch.no_grad():
            outs.append(_block(kv_mode=mode)(*h)[0])
    assert not torch.allclose(outs[0], outs[1]) and not torch.allclose(outs[0], outs[2])


def test_nearest_resize_repeats_by_floor_index():
    x = torch.arange(3.0).view(1, 1, 3, 1)
    assert nearest_resize(x, 7).flatten().tolist() == [0, 0, 0, 1, 1, 2, 2]  # floor(j*3/7)
    assert nearest_resize(x, 2).flatten().tolist() == [0, 1]
    # over real slots only: slots 0 and 2 are real, so 5 targets take floor(j*2/5) of [0, 2]
    mask = torch.tensor([[True, False, True]])
    assert nearest_resize(x, 5, mask).flatten().tolist() == [0, 0, 0, 2, 2]
    assert nearest_resize(x, 5, torch.ones(1, 3, dtype=torch.bool)).flatten().tolist() == \
        nearest_resize(x, 5).flatten().tolist()
