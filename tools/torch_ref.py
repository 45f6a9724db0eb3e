#!/usr/bin/python3
"""The scalevec model written independently in PyTorch: the project's independent reference
(VERIFICATION.md §6) and the peer of `scalevec bench`.

It reads the checkpoints that `scalevec` writes (safetensors, parsed here with json + torch, since
Debian has no `safetensors` package), builds the same architecture as ref/ from the config stored
in the checkpoint, and either

  check   computes the loss, logits and every parameter gradient on a saved batch and compares
          them with the values scalevec saved (exit 1 on mismatch), or
  bench   times full training steps (forward, backward, clip_grad_norm_, AdamW) on a saved batch
          and prints one JSON line.

Run it with Debian's interpreter, /usr/bin/python3 (python3-torch); `scalevec bench` sets
LD_LIBRARY_PATH to the OpenMP build of OpenBLAS and OMP_NUM_THREADS to its own thread count.

Files in a check/bench directory D (all written by scalevec):
  D/model.safetensors   parameters by layout name, metadata "config" (JSON model config)
  D/batch.safetensors   "inputs", "targets": I32 (B, T)
  D/grads.safetensors   (check) scalevec's gradient for each parameter, metadata "loss"
  D/logits.safetensors  (check, optional) scalevec's "logits" (B, T, V)
"""

import argparse
import json
import math
import statistics
import struct
import sys
import time
import zlib

import torch
import torch.nn as nn
import torch.nn.functional as F

# ------------------------------------------------------------------------------------------------
# safetensors: 8-byte little-endian header length, a JSON header, then the raw tensor bytes.

_DTYPES = {"F32": torch.float32, "F64": torch.float64, "I32": torch.int32}


def read_safetensors(path):
    """Returns ({name: tensor}, metadata) for a safetensors file, checking offsets and the
    "data_crc32" checksum scalevec writes into the metadata."""
    with open(path, "rb") as f:
        raw = f.read()
    if len(raw) < 8:
        raise ValueError(f"{path}: truncated ({len(raw)} bytes)")
    (n,) = struct.unpack("<Q", raw[:8])
    if n > len(raw) - 8:
        raise ValueError(f"{path}: header length {n} exceeds the file size {len(raw)}")
    header = json.loads(raw[8:8 + n].decode("utf-8"))
    data = bytearray(raw[8 + n:])  # writable, so torch.frombuffer does not warn
    metadata = header.pop("__metadata__", {}) or {}
    if "data_crc32" in metadata and str(zlib.crc32(data)) != metadata["data_crc32"]:
        raise ValueError(f"{path}: data does not match its data_crc32 checksum")
    if sys.byteorder != "little":
        raise ValueError("this reader assumes a little-endian machine")
    tensors = {}
    for name, info in header.items():
        begin, end = info["data_offsets"]
        dtype = _DTYPES.get(info["dtype"])
        if dtype is None:
            raise ValueError(f"{path}: tensor {name} has unsupported dtype {info['dtype']}")
        shape = list(info["shape"])
        numel = math.prod(shape)
        item = torch.empty((), dtype=dtype).element_size()
        if not (0 <= begin <= end <= len(data)) or end - begin != numel * item:
            raise ValueError(f"{path}: tensor {name} has bad data offsets [{begin}, {end}]")
        t = torch.frombuffer(data, dtype=dtype, count=numel, offset=begin) if numel else \
            torch.empty(0, dtype=dtype)
        tensors[name] = t.reshape(shape).clone()
    return tensors, metadata


# ------------------------------------------------------------------------------------------------
# The model (SCALE_VECTORS.md §2): Pre-Norm Llama-style blocks, RMSNorm, RoPE, SwiGLU, no biases.

class RMSNorm(nn.Module):
    """gamma * x / sqrt(mean(x^2) + eps); without a gamma when the scale strategy is "none"."""

    def __init__(self, dim, eps, learnable):
        super().__init__()
        self.eps = eps
        self.gamma = nn.Parameter(torch.ones(dim)) if learnable else None

    def forward(self, x):
        n = x / torch.sqrt(x.pow(2).mean(dim=-1, keepdim=True) + self.eps)
        return n if self.gamma is None else self.gamma * n


def rope_tables(context, head_size, base):
    """cos and sin of t * base^(-2i/hs), (context, hs/2) each, in float64."""
    i = torch.arange(head_size // 2, dtype=torch.float64)
    inv_freq = base ** (-2.0 * i / head_size)
    angle = torch.arange(context, dtype=torch.float64)[:, None] * inv_freq[None, :]
    return angle.cos(), angle.sin()


def apply_rope(x, cos, sin):
    """Rotate-half RoPE on x (B, NH, T, hs): channel i pairs with channel i + hs/2."""
    x1, x2 = x.chunk(2, dim=-1)
    return torch.cat((x1 * cos - x2 * sin, x1 * sin + x2 * cos), dim=-1)


class Attention(nn.Module):
    def __init__(self, d_model, n_head):
        super().__init__()
        self.n_head = n_head
        self.wq = nn.Linear(d_model, d_model, bias=False)
        self.wk = nn.Linear(d_model, d_model, bias=False)
        self.wv = nn.Linear(d_model, d_model, bias=False)
        self.wo = nn.Linear(d_model, d_model, bias=False)

    def forward(self, x, cos, sin, mask):
        B, T, C = x.shape
        hs = C // self.n_head
        q = self.wq(x).view(B, T, self.n_head, hs).transpose(1, 2)  # (B, NH, T, hs)
        k = self.wk(x).view(B, T, self.n_head, hs).transpose(1, 2)
        v = self.wv(x).view(B, T, self.n_head, hs).transpose(1, 2)
        q, k = apply_rope(q, cos, sin), apply_rope(k, cos, sin)
        att = (q @ k.transpose(-2, -1)) * (1.0 / math.sqrt(hs))     # (B, NH, T, T)
        att = att.masked_fill(mask, float("-inf"))
        att = F.softmax(att, dim=-1)
        y = (att @ v).transpose(1, 2).contiguous().view(B, T, C)
        return self.wo(y)


class SwiGLU(nn.Module):
    def __init__(self, d_model, d_ff):
        super().__init__()
        self.w_gate = nn.Linear(d_model, d_ff, bias=False)
        self.w_up = nn.Linear(d_model, d_ff, bias=False)
        self.w_down = nn.Linear(d_ff, d_model, bias=False)

    def forward(self, x):
        return self.w_down(F.silu(self.w_gate(x)) * self.w_up(x))


class Block(nn.Module):
    def __init__(self, cfg, learnable_scale):
        super().__init__()
        self.attn_norm = RMSNorm(cfg["d_model"], cfg["norm_eps"], learnable_scale)
        self.attn = Attention(cfg["d_model"], cfg["n_head"])
        self.mlp_norm = RMSNorm(cfg["d_model"], cfg["norm_eps"], learnable_scale)
        self.mlp = SwiGLU(cfg["d_model"], cfg["d_ff"])

    def forward(self, x, cos, sin, mask):
        x = x + self.attn(self.attn_norm(x), cos, sin, mask)
        return x + self.mlp(self.mlp_norm(x))


class Transformer(nn.Module):
    def __init__(self, cfg):
        super().__init__()
        if cfg["scale"] not in ("baseline", "none"):
            raise ValueError(f"scale strategy '{cfg['scale']}' is not implemented here")
        learnable = cfg["scale"] == "baseline"
        self.cfg = cfg
        self.tok_emb = nn.Embedding(cfg["vocab_size"], cfg["d_model"])
        self.layers = nn.ModuleList(Block(cfg, learnable) for _ in range(cfg["n_layer"]))
        self.final_norm = RMSNorm(cfg["d_model"], cfg["norm_eps"], learnable)
        self.head = nn.Linear(cfg["d_model"], cfg["vocab_size"], bias=False)
        # RoPE tables in float64, kept out of the module's buffers so that model.to(dtype) does
        # not round them; forward casts them once to the activations' dtype (as ref/ does).
        hs = cfg["d_model"] // cfg["n_head"]
        self.rope_cos, self.rope_sin = rope_tables(cfg["context"], hs, cfg["rope_base"])
        T = cfg["context"]
        causal = torch.triu(torch.ones(T, T, dtype=torch.bool), diagonal=1)  # True = masked
        self.register_buffer("mask", causal, persistent=False)

    def forward(self, idx, targets=None):
        B, T = idx.shape
        x = self.tok_emb(idx)
        cos, sin = self.rope_cos[:T].to(x.dtype), self.rope_sin[:T].to(x.dtype)
        mask = self.mask[:T, :T]
        for layer in self.layers:
            x = layer(x, cos, sin, mask)
        logits = self.head(self.final_norm(x))
        if targets is None:
            return logits, None
        loss = F.cross_entropy(logits.view(-1, logits.size(-1)), targets.reshape(-1))
        return logits, loss


def checkpoint_name(torch_name):
    """scalevec names a tensor by its module path: nn.Linear/nn.Embedding's ".weight" is dropped."""
    return torch_name[: -len(".weight")] if torch_name.endswith(".weight") else torch_name


def load_model(path, dtype=None):
    """Builds the model from the checkpoint's config and loads every tensor (strictly: no tensor
    may be missing, extra or of another shape). dtype None keeps the checkpoint's precision."""
    tensors, meta = read_safetensors(path)
    if "config" not in meta:
        raise ValueError(f"{path}: no model config in its metadata (not a scalevec checkpoint?)")
    cfg = json.loads(meta["config"])
    if dtype is None:
        dtype = next(iter(tensors.values())).dtype
    model = Transformer(cfg).to(dtype)
    params = dict(model.named_parameters())
    want = {checkpoint_name(n) for n in params}
    missing, extra = sorted(want - tensors.keys()), sorted(tensors.keys() - want)
    if missing or extra:
        raise ValueError(f"{path}: tensors do not match the model: missing {missing}, extra {extra}")
    with torch.no_grad():
        for name, p in params.items():
            t = tensors[checkpoint_name(name)]
            if tuple(t.shape) != tuple(p.shape):
                raise ValueError(f"{path}: {checkpoint_name(name)} has shape {tuple(t.shape)}, "
                                 f"the model expects {tuple(p.shape)}")
            p.copy_(t.to(dtype))
    return model, cfg


def load_batch(path, cfg):
    tensors, _ = read_safetensors(path)
    inputs, targets = tensors["inputs"].long(), tensors["targets"].long()
    if inputs.dim() != 2 or inputs.shape != targets.shape or inputs.shape[1] > cfg["context"]:
        raise ValueError(f"{path}: inputs/targets must both be (B, T) with T <= context")
    return inputs, targets


# ------------------------------------------------------------------------------------------------
# check: loss, logits and gradients against scalevec's.

# Unit roundoff of each precision; tolerances are multiples of it (see `tolerances`).
_UNIT_ROUNDOFF = {torch.float32: 2.0 ** -24, torch.float64: 2.0 ** -53}


def tolerances(ours_dtype, torch_dtype, factor):
    """Both sides round, in different orders; the less precise side sets the unit roundoff u, and
    the tolerance is factor * u:
      loss:        |a - b| <= factor * u * max(1, |loss|)
      tensor X:    max |a - b| <= factor * u * max |X_ours|   (normwise per tensor: entries near
                   zero are compared against the tensor's scale, not their own)
    On the test models (2 layers, C 32-48, B*T 32-48) the errors are 5-20 u in both float32 and
    float64, so the default factor 64 leaves a margin of about 3x while a 1e-3 relative error in
    one entry, or a 1e-10 relative error of a float64 loss, fails."""
    u = max(_UNIT_ROUNDOFF[ours_dtype], _UNIT_ROUNDOFF[torch_dtype])
    return factor * u


def compare(name, ours, theirs, tol):
    """Returns (ok, line) for one tensor: max abs error, error relative to the tensor's max abs,
    and the share of the tolerance used."""
    a, b = ours.double().reshape(-1), theirs.double().reshape(-1)
    scale = a.abs().max().item() if a.numel() else 0.0
    err = (a - b).abs().max().item() if a.numel() else 0.0
    rel = err / scale if scale > 0 else (0.0 if err == 0 else math.inf)
    ok = err <= tol * scale or err == 0.0
    line = (f"{name:<30} {a.numel():>8} {scale:>11.3e} {err:>11.3e} {rel:>11.3e} "
            f"{rel / tol:>7.3g}  {'ok' if ok else 'FAIL'}")
    return ok, line


def cmd_check(args):
    d = args.dir
    our_grads, grads_meta = read_safetensors(f"{d}/grads.safetensors")
    ours_dtype = next(iter(our_grads.values())).dtype
    dtype = {"float32": torch.float32, "float64": torch.float64}.get(args.dtype, ours_dtype)
    model, cfg = load_model(f"{d}/model.safetensors", dtype)
    inputs, targets = load_batch(f"{d}/batch.safetensors", cfg)
    rtol = args.rtol if args.rtol is not None else tolerances(ours_dtype, dtype, args.factor)

    logits, loss = model(inputs, targets)
    loss.backward()

    if "loss" not in grads_meta:
        raise ValueError(f"{d}/grads.safetensors: no 'loss' metadata entry")
    our_loss = float(grads_meta["loss"])
    loss_err = abs(our_loss - loss.item())
    loss_tol = rtol * max(1.0, abs(our_loss))
    loss_ok = loss_err <= loss_tol
    print(f"torch_ref check: {d}: scale={cfg['scale']} layers={cfg['n_layer']} "
          f"d_model={cfg['d_model']} heads={cfg['n_head']} d_ff={cfg['d_ff']} "
          f"batch {tuple(inputs.shape)}, ours {str(ours_dtype)[6:]}, torch {str(dtype)[6:]}")
    print(f"tolerance: rtol = {rtol:.3e} (= {rtol / max(_UNIT_ROUNDOFF[ours_dtype], _UNIT_ROUNDOFF[dtype]):.0f}"
          f" x unit roundoff); loss: |a-b| <= rtol*max(1,|loss|); tensors: max|a-b| <= rtol*max|ours|")
    print(f"loss: ours {our_loss:.17g}  torch {loss.item():.17g}  |diff| {loss_err:.3e}  "
          f"(tolerance {loss_tol:.3e})  {'ok' if loss_ok else 'FAIL'}")

    all_ok = loss_ok
    print(f"{'tensor':<30} {'numel':>8} {'max|ours|':>11} {'max abs err':>11} {'rel to max':>11} "
          f"{'of tol':>7}  result")
    try:
        our_logits, _ = read_safetensors(f"{d}/logits.safetensors")
        ok, line = compare("logits", our_logits["logits"], logits.detach(), rtol)
        all_ok &= ok
        print(line)
    except FileNotFoundError:
        pass
    params = dict(model.named_parameters())
    names = {checkpoint_name(n) for n in params}
    if set(our_grads) != names:
        print(f"gradient names differ: missing {sorted(names - set(our_grads))}, "
              f"extra {sorted(set(our_grads) - names)}")
        all_ok = False
    for name, p in params.items():
        cname = checkpoint_name(name)
        if cname not in our_grads:
            continue
        ok, line = compare(cname, our_grads[cname], p.grad, rtol)
        all_ok &= ok
        print(line)
    print("PASS" if all_ok else "FAIL: scalevec and PyTorch disagree")
    return 0 if all_ok else 1


# ------------------------------------------------------------------------------------------------
# bench: timed training steps, the way a PyTorch user would write them.

def param_groups(model, weight_decay, wd_policy, decay_embeddings):
    """The same groups as scalevec's DecayRule: matrices and the head always decay; the embedding
    when asked; gammas by policy (every gamma of these models is Input-type, so iwd == all)."""
    decay, no_decay = [], []
    for name, p in model.named_parameters():
        cname = checkpoint_name(name)
        if cname == "tok_emb":
            on = decay_embeddings
        elif cname.endswith(".gamma"):
            on = wd_policy in ("all", "iwd")
        else:
            on = True
        (decay if on else no_decay).append(p)
    return [{"params": decay, "weight_decay": weight_decay},
            {"params": no_decay, "weight_decay": 0.0}]


def cmd_bench(args):
    torch.set_num_threads(args.threads)
    model, cfg = load_model(f"{args.dir}/model.safetensors", torch.float32)
    inputs, targets = load_batch(f"{args.dir}/batch.safetensors", cfg)
    with torch.no_grad():
        _, loss0 = model(inputs, targets)
    groups = param_groups(model, args.weight_decay, args.wd_policy, args.decay_embeddings)
    opt = torch.optim.AdamW(groups, lr=args.lr, betas=(args.beta1, args.beta2), eps=args.eps)
    times = []
    for i in range(args.warmup + args.steps):
        t0 = time.perf_counter()
        opt.zero_grad(set_to_none=True)
        _, loss = model(inputs, targets)
        loss.backward()
        if args.grad_clip > 0:
            torch.nn.utils.clip_grad_norm_(model.parameters(), args.grad_clip)
        opt.step()
        dt = time.perf_counter() - t0
        if i >= args.warmup:
            times.append(dt)
        if not args.quiet:
            kind = "warmup" if i < args.warmup else "step"
            print(f"[torch] {kind} {i + 1}/{args.warmup + args.steps}: {dt * 1e3:.1f} ms, "
                  f"loss {loss.item():.4f}", file=sys.stderr, flush=True)
    step_s = statistics.median(times)
    B, T = inputs.shape
    print(json.dumps({
        "loss": loss0.item(), "step_s": step_s, "step_s_min": min(times),
        "step_s_max": max(times), "tokens_per_s": B * T / step_s, "steps": args.steps,
        "warmup": args.warmup, "threads": torch.get_num_threads(), "batch": [B, T],
        "step_times": times,
        "final_loss": loss.item(), "torch_version": torch.__version__}))
    return 0


def main(argv=None):
    p = argparse.ArgumentParser(
        description="The scalevec model written independently in PyTorch: parity check against "
                    "scalevec's loss and gradients, and the PyTorch side of `scalevec bench`.")
    sub = p.add_subparsers(dest="cmd", required=True)

    c = sub.add_parser("check", help="compare loss, logits and gradients with scalevec's",
                       description="Loads D/model.safetensors, D/batch.safetensors and "
                       "D/grads.safetensors (scalevec's loss and gradients), recomputes them in "
                       "PyTorch and compares; exit status 1 on any mismatch.")
    c.add_argument("--dir", required=True, help="directory written by scalevec")
    c.add_argument("--dtype", choices=["float32", "float64"],
                   help="PyTorch's precision (default: the precision of scalevec's gradients)")
    c.add_argument("--factor", type=float, default=64.0,
                   help="tolerance as a multiple of the unit roundoff of the less precise side "
                        "(default: %(default)s)")
    c.add_argument("--rtol", type=float, help="explicit relative tolerance (overrides --factor)")

    b = sub.add_parser("bench", help="time training steps; print one JSON line",
                       description="Times full training steps (zero_grad, forward, backward, "
                       "clip_grad_norm_, AdamW) on the saved batch, starting from the saved "
                       "weights; prints a JSON line with the initial loss (for parity), the "
                       "median step time and tokens/s.")
    b.add_argument("--dir", required=True, help="directory with model.safetensors, batch.safetensors")
    b.add_argument("--steps", type=int, default=10, help="timed steps (default: %(default)s)")
    b.add_argument("--warmup", type=int, default=2, help="untimed first steps (default: %(default)s)")
    b.add_argument("--threads", type=int, required=True, help="torch.set_num_threads")
    b.add_argument("--lr", type=float, default=2e-3)
    b.add_argument("--beta1", type=float, default=0.9)
    b.add_argument("--beta2", type=float, default=0.95)
    b.add_argument("--eps", type=float, default=1e-8)
    b.add_argument("--weight-decay", type=float, default=0.1)
    b.add_argument("--wd-policy", choices=["none", "all", "iwd"], default="none",
                   help="weight decay on gammas (default: %(default)s)")
    b.add_argument("--decay-embeddings", action="store_true")
    b.add_argument("--grad-clip", type=float, default=1.0, help="0 = off")
    b.add_argument("--quiet", action="store_true", help="no per-step lines on stderr")

    args = p.parse_args(argv)
    if args.cmd == "bench" and (args.steps < 1 or args.warmup < 0 or args.threads < 1):
        p.error("bench needs --steps >= 1, --warmup >= 0, --threads >= 1")
    try:
        return cmd_check(args) if args.cmd == "check" else cmd_bench(args)
    except (ValueError, KeyError, OSError) as e:
        print(f"torch_ref.py: error: {e}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
