"""Plain PyTorch character GPT, written for this benchmark: the shape of kiln's config (layers, heads,
d_model, block size; pre-norm blocks, learned positions, tied input/output embedding), trained with
kiln's recipe (AdamW, betas, weight decay on matrices, warm-up + cosine schedule, gradient clipping,
batch size, iterations; a validation estimate every eval_interval steps over eval_iters batches).
Generation is the usual plain loop: the whole (cropped) context through the network per token."""

from __future__ import annotations

import math
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import mark_ready, parse_args, read_meta, report, threads  # noqa: E402

import torch  # noqa: E402
import torch.nn.functional as F  # noqa: E402
from torch import nn  # noqa: E402


class Attention(nn.Module):
    def __init__(self, width: int, heads: int) -> None:
        super().__init__()
        self.heads = heads
        self.qkv, self.out = nn.Linear(width, 3 * width), nn.Linear(width, width)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, t, c = x.shape
        q, k, v = self.qkv(x).view(b, t, 3, self.heads, c // self.heads).permute(2, 0, 3, 1, 4)
        return self.out(F.scaled_dot_product_attention(q, k, v, is_causal=True).transpose(1, 2).reshape(b, t, c))


class Layer(nn.Module):
    def __init__(self, width: int, heads: int) -> None:
        super().__init__()
        self.norm1, self.norm2 = nn.LayerNorm(width), nn.LayerNorm(width)
        self.attn = Attention(width, heads)
        self.ff = nn.Sequential(nn.Linear(width, 4 * width), nn.GELU(), nn.Linear(4 * width, width))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x + self.attn(self.norm1(x))
        return x + self.ff(self.norm2(x))


class CharGPT(nn.Module):
    def __init__(self, vocab: int, width: int, heads: int, depth: int, context: int) -> None:
        super().__init__()
        self.context = context
        self.embed, self.position = nn.Embedding(vocab, width), nn.Embedding(context, width)
        self.layers = nn.Sequential(*(Layer(width, heads) for _ in range(depth)))
        self.norm = nn.LayerNorm(width)
        for m in self.modules():
            if isinstance(m, (nn.Linear, nn.Embedding)):
                nn.init.normal_(m.weight, std=0.02)
            if isinstance(m, nn.Linear):
                nn.init.zeros_(m.bias)

    def forward(self, idx: torch.Tensor) -> torch.Tensor:
        h = self.embed(idx) + self.position(torch.arange(idx.shape[1]))
        return self.norm(self.layers(h)) @ self.embed.weight.T


def batch(data: torch.Tensor, size: int, context: int, gen: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
    starts = torch.randint(len(data) - context - 1, (size,), generator=gen)
    x = torch.stack([data[s:s + context] for s in starts.tolist()])
    y = torch.stack([data[s + 1:s + context + 1] for s in starts.tolist()])
    return x, y


@torch.no_grad()
def tokens_per_s(net: CharGPT, prompt: torch.Tensor, new: int) -> float:
    idx, start = prompt, time.perf_counter()
    gen = torch.Generator().manual_seed(1)
    for _ in range(new):
        logits = net(idx[:, -net.context:])[:, -1] / 0.8
        top = torch.topk(logits, min(50, logits.shape[-1]))
        logits[logits < top.values[:, -1:]] = -float("inf")
        idx = torch.cat([idx, torch.multinomial(F.softmax(logits, -1), 1, generator=gen)], 1)
    return new / (time.perf_counter() - start)


def main() -> None:
    args = parse_args()
    torch.set_num_threads(threads())
    torch.manual_seed(args.seed)
    meta = read_meta(args.work)
    m, tr = meta["model"], meta["trainer"]
    text = Path(meta["train"]).read_text(encoding="utf-8")
    chars = sorted(set(text))
    lookup = {c: i for i, c in enumerate(chars)}
    data = torch.tensor([lookup[c] for c in text], dtype=torch.long)
    cut = int(len(data) * (1 - meta["validation"]))
    train, val = data[:cut], data[cut:]
    net = CharGPT(len(chars), m["d_model"], m["heads"], m["layers"], m["block_size"])
    decay = [p for p in net.parameters() if p.dim() >= 2]
    rest = [p for p in net.parameters() if p.dim() < 2]
    opt = torch.optim.AdamW([{"params": decay, "weight_decay": tr["weight_decay"]}, {"params": rest, "weight_decay": 0.0}],
                            lr=tr["learning_rate"], betas=tuple(tr["betas"]))
    steps, warm, floor = tr["iterations"], int(tr["lr_schedule"]["warmup"] or 0), tr["lr_schedule"]["min_lr"] / tr["learning_rate"]

    def factor(step: int) -> float:
        if step < warm:
            return (step + 1) / warm
        return floor + 0.5 * (1 + math.cos(math.pi * min(1.0, (step - warm) / max(1, steps - 1 - warm)))) * (1 - floor)

    sched = torch.optim.lr_scheduler.LambdaLR(opt, factor)
    gen = torch.Generator().manual_seed(args.seed)
    val_gen = torch.Generator().manual_seed(args.seed + 1)
    val_batches = [batch(val, tr["batch_size"], m["block_size"], val_gen) for _ in range(tr["eval_iters"])]
    mark_ready()
    val_loss = float("nan")
    for step in range(steps):
        net.train()
        x, y = batch(train, tr["batch_size"], m["block_size"], gen)
        loss = F.cross_entropy(net(x).flatten(0, 1), y.flatten())
        opt.zero_grad(set_to_none=True)
        loss.backward()
        nn.utils.clip_grad_norm_(net.parameters(), tr["grad_clip"])
        opt.step()
        sched.step()
        if (step + 1) % tr["eval_interval"] == 0 or step + 1 == steps:
            net.eval()
            with torch.no_grad():
                val_loss = sum(F.cross_entropy(net(vx).flatten(0, 1), vy.flatten()).item() for vx, vy in val_batches) / len(val_batches)
    net.eval()
    prompt = torch.tensor([[lookup.get(c, 0) for c in "ROMEO:\n\n"]])
    block = m["block_size"]
    report({"validation_loss": val_loss}, iterations=steps,
           gen_tokens_per_s_inside_block=tokens_per_s(net, prompt, block // 2),
           gen_tokens_per_s_past_block=tokens_per_s(net, prompt, block * 4))


if __name__ == "__main__":
    main()
