"""The Tangled Transformer block against a naive, loop-based reference written from the spec's equations."""
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


def naive_block(block: TangledBlock, h_t, m_t, h_r, m_r, h_a, m_a, kv_mode):
    """One sample (no batch axis). h_*: [L, width], m_*: [L] bool."""
    heads = block.heads

    def proj(stream, h):
        return ([lin(stream.query, x) for x in h], [lin(stream.key, x) for x in h], [lin(stream.value, x) for x in h])

    q_t, k_t, v_t = proj(block.text, h_t)
    q_r, k_r, v_r = proj(block.region, h_r)
    q_a, k_a, v_a = proj(block.action, h_a)
    mt, mr, ma = m_t.tolist(), m_r.tolist(), m_a.tolist()
    c_w = naive_attention(q_a, k_t, v_t, mt, heads)  # action looks at words
    c_r = naive_attention(q_a, k_r, v_r, mr, heads)  # action looks at regions
    if kv_mode == "stack":
        text_ctx = naive_attention(q_t, k_r + c_r, v_r + c_r, mr + ma, heads)
        region_ctx = naive_attention(q_r, k_t + c_w, v_t + c_w, mt + ma, heads)
        action_ctx = naive_attention(q_a, k_a + c_w + c_r, v_a + c_w + c_r, ma + ma + ma, heads)
    else:
        def resize(ctx, length):  # nearest neighbour: target j takes source floor(j * A / L)
            return [ctx[(j * len(ctx)) // length] for j in range(length)]

        cr, cw = resize(c_r, len(k_r)), resize(c_w, len(k_t))
        text_ctx = naive_attention(q_t, [k + c for k, c in zip(k_r, cr)], [v + c for v, c in zip(v_r, cr)], mr, heads)
        region_ctx = naive_attention(q_r, [k + c for k, c in zip(k_t, cw)], [v + c for v, c in zip(v_t, cw)], mt, heads)
        action_ctx = naive_attention(q_a, k_a, v_a, ma, heads)

    def finish(stream, h, ctx):
        rows = []
        for x, c in zip(h, ctx):
            y = F.layer_norm(x + lin(stream.out, c), x.shape, stream.norm.weight, stream.norm.bias, stream.norm.eps)
            f = lin(stream.ffn.out, F.gelu(lin(stream.ffn.inp, y)))
            rows.append(F.layer_norm(y + f, y.shape, stream.ffn.norm.weight, stream.ffn.norm.bias, stream.ffn.norm.eps))
        return torch.stack(rows)

    return finish(block.text, h_t, text_ctx), finish(block.region, h_r, region_ctx), finish(block.action, h_a, action_ctx)


@pytest.mark.parametrize("kv_mode", ["stack", "add"])
def test_tnt_block_matches_naive_reference(kv_mode):
    torch.manual_seed(0)
    cfg = get_preset("tiny", kv_mode=kv_mode, text_hidden=32, region_hidden=48, action_hidden=40, bi_hidden=24,
                     text_heads=2, region_heads=2, action_heads=2, bi_heads=3)
    block = TangledBlock(cfg).eval()
    B, L, N, A = 2, 7, 5, 4
    h_t, h_r, h_a = torch.randn(B, L, 32), torch.randn(B, N, 48), torch.randn(B, A, 40)
    m_t = torch.tensor([[1] * 7, [1] * 4 + [0] * 3]).bool()
    m_r = torch.tensor([[1] * 5, [1] + [0] * 4]).bool()
    m_a = torch.tensor([[1] * 4, [1, 1, 0, 0]]).bool()
    with torch.no_grad():
        t, r, a, _ = block(h_t, m_t, h_r, m_r, h_a, m_a)
        for b in range(B):
            nt, nr, na = naive_block(block, h_t[b], m_t[b], h_r[b], m_r[b], h_a[b], m_a[b], kv_mode)
            torch.testing.assert_close(t[b], nt, atol=1e-5, rtol=1e-4)
            torch.testing.assert_close(r[b], nr, atol=1e-5, rtol=1e-4)
            torch.testing.assert_close(a[b], na, atol=1e-5, rtol=1e-4)


def test_kv_modes_differ_and_padding_is_ignored():
    torch.manual_seed(1)
    cfg = get_preset("tiny")
    block = TangledBlock(cfg).eval()
    h_t, h_r, h_a = torch.randn(1, 6, 64), torch.randn(1, 4, 64), torch.randn(1, 3, 64)
    m_t, m_r, m_a = torch.ones(1, 6).bool(), torch.ones(1, 4).bool(), torch.tensor([[1, 1, 0]]).bool()
    with torch.no_grad():
        base = block(h_t, m_t, h_r, m_r, h_a, m_a)
        h_a2 = h_a.clone()
        h_a2[0, 2] = 100.0  # a padded action token must not change any real output
        moved = block(h_t, m_t, h_r, m_r, h_a2, m_a)
        torch.testing.assert_close(base[0], moved[0])
        torch.testing.assert_close(base[1], moved[1])
        torch.testing.assert_close(base[2][:, :2], moved[2][:, :2])
        block.kv_mode = "add"
        added = block(h_t, m_t, h_r, m_r, h_a, m_a)
    assert not torch.allclose(base[0], added[0])


def test_nearest_resize_repeats_by_floor_index():
    x = torch.arange(3.0).view(1, 1, 3, 1)
    assert nearest_resize(x, 7).flatten().tolist() == [0, 0, 0, 1, 1, 2, 2]  # floor(j*3/7)
    assert nearest_resize(x, 2).flatten().tolist() == [0, 1]
