#!/usr/bin/python3
"""The scalevec model written independently in PyTorch: the project's independent reference
(VERIFICATION.md §6) and the peer of `scalevec bench`.

It reads the checkpoints that `scalevec` writes (safetensors, parsed here with json + torch, since
Debian has no `safetensors` package), builds the same architecture as ref/ from the config stored
in the checkpoint (every scale strategy of SCALE_VECTORS.md §4: the parameterizations none, gamma,
magdir, magdir-normalized; shared or per-branch (HG) input-side scales; DP and DNP output-side
scales; QK-Norm; post-sublayer norms), loads every tensor strictly by name, and either

  check   computes the loss, logits and every parameter gradient on a saved batch and compares
          them with the values scalevec saved (exit 1 on mismatch, 2 if a directory cannot be
          checked, e.g. its tensors do not fit its config); several --dir in one process, or
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
import contextlib
import dataclasses
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
# The scale strategy (SCALE_VECTORS.md §4), read from the checkpoint's config.

ATTN_BRANCHES = ("q", "k", "v")
MLP_BRANCHES = ("gate", "up")
SCALE_PARAMS = ("none", "gamma", "magdir", "magdir-normalized")
MAGDIR = ("magdir", "magdir-normalized")

# Test only (`check --mutate`): a deliberately wrong semantic, so that a test can show that the
# parity check notices it. None in normal use.
MUTATIONS = {
    "rope-interleaved": "RoPE pairs channels (2i, 2i+1) instead of (i, i + hs/2)",
    "output-norm-no-eps": "output-side normalizations (DNP, QK-Norm, post-norm) without eps",
    "alpha-rms-eps": "magdir-normalized divides by sqrt(mean(alpha^2) + 1e-5) instead of rms(alpha)",
}
MUTATION = None


def parse_branches(s, field):
    """ "q,k,v" -> frozenset({"q", "k", "v"}); "none" or "" -> empty."""
    if not isinstance(s, str):
        raise ValueError(f"config field '{field}' must be a string, not {s!r}")
    if s in ("", "none"):
        return frozenset()
    names = s.split(",")
    bad = [n for n in names if n not in ATTN_BRANCHES + MLP_BRANCHES]
    if bad or len(set(names)) != len(names):
        raise ValueError(f"config field '{field}' = '{s}': expected distinct branches among "
                         f"{','.join(ATTN_BRANCHES + MLP_BRANCHES)}, or none")
    return frozenset(names)


@dataclasses.dataclass(frozen=True)
class ScaleSpec:
    """Where the scale vectors are and how they are parameterized."""
    param: str = "gamma"           # parameterization of every scale vector (see ScaleVector)
    hg: bool = False               # one input-side scale per branch instead of one per norm site
    dp: frozenset = frozenset()    # branches f with y_f = u ⊙ z_f
    dnp: frozenset = frozenset()   # branches f with y_f = u ⊙ N_h(z_f)
    qk_norm: bool = False          # y = γ ⊙ N_h(z) on q and k
    post_norm: bool = False        # o ← γ ⊙ N(o) on each sublayer's output
    skip_cancelled: bool = False   # plain gamma for scales whose magnitude is cancelled

    # Checkpoints written before the scale components existed name only one of these presets.
    LEGACY = {"baseline": {}, "none": {"param": "none"}}

    @classmethod
    def from_config(cls, cfg):
        if "scale_param" not in cfg:
            if cfg.get("scale") not in cls.LEGACY:
                raise ValueError(f"config has no 'scale_param' and its scale '{cfg.get('scale')}' "
                                 f"is not a legacy preset ({', '.join(cls.LEGACY)})")
            return cls(**cls.LEGACY[cfg["scale"]])

        missing = [k for k in ("scale_param", "hg", "dp", "dnp", "qk_norm", "post_norm",
                               "skip_cancelled_magnitude") if k not in cfg]
        if missing:
            raise ValueError(f"config has 'scale_param' but lacks {', '.join(missing)}")

        def flag(key):
            if not isinstance(cfg[key], bool):
                raise ValueError(f"config field '{key}' must be a bool, not {cfg[key]!r}")
            return cfg[key]

        spec = cls(param=cfg["scale_param"], hg=flag("hg"), dp=parse_branches(cfg["dp"], "dp"),
                   dnp=parse_branches(cfg["dnp"], "dnp"), qk_norm=flag("qk_norm"),
                   post_norm=flag("post_norm"), skip_cancelled=flag("skip_cancelled_magnitude"))
        if spec.param not in SCALE_PARAMS:
            raise ValueError(f"scale_param '{spec.param}' is not one of {', '.join(SCALE_PARAMS)}")
        if spec.param == "none" and (spec.hg or spec.dp or spec.dnp):
            raise ValueError("scale_param 'none' cannot be combined with hg, dp or dnp")
        if spec.dp & spec.dnp:
            raise ValueError(f"branches {sorted(spec.dp & spec.dnp)} have both DP and DNP")
        if spec.qk_norm and spec.dnp & {"q", "k"}:
            raise ValueError("DNP on q/k and qk_norm cannot be combined")
        return spec

    def post_cancels(self, f):
        """A post-norm removes any global factor of v and up: the sublayer output is linear in
        them (attention in v, silu(gate) * up in up)."""
        return self.post_norm and f in ("v", "up")

    def normalized(self, f):
        """Whether a normalization downstream of branch f's linear map cancels any global factor
        of the branch's input-side scale: DNP, QK-Norm on q and k, or a post-norm on v and up.
        This is the rule for skip_cancelled_magnitude."""
        return f in self.dnp or (self.qk_norm and f in ("q", "k")) or self.post_cancels(f)

    def param_for(self, cancelled):
        """The parameterization of a scale whose magnitude may be cancelled downstream."""
        return "gamma" if self.skip_cancelled and cancelled and self.param in MAGDIR else self.param

    def describe(self):
        b = lambda s: ",".join(f for f in ATTN_BRANCHES + MLP_BRANCHES if f in s) or "none"
        return (f"param={self.param} hg={int(self.hg)} dp={b(self.dp)} dnp={b(self.dnp)} "
                f"qk_norm={int(self.qk_norm)} post_norm={int(self.post_norm)} "
                f"skip_cancelled={int(self.skip_cancelled)}")


# ------------------------------------------------------------------------------------------------
# The model (SCALE_VECTORS.md §2, §4): Pre-Norm Llama-style blocks, RMSNorm, RoPE, SwiGLU, no
# biases, with every placement and parameterization of scale vectors. Every parameter is a child
# of the module path that is its checkpoint name (nn.Linear/nn.Embedding's ".weight" aside).

def rms_normalize(x, eps, groups=1):
    """N(x) = x / sqrt(mean(x²) + eps) over the last dimension, separately over each of `groups`
    equal slices of it (the heads of q and k)."""
    shape = x.shape
    x = x.reshape(*shape[:-1], groups, shape[-1] // groups)
    x = x / torch.sqrt(x.pow(2).mean(dim=-1, keepdim=True) + eps)
    return x.reshape(shape)


class ScaleVector(nn.Module):
    """A scale vector γ ∈ R^dim, multiplied onto its input, in one of four parameterizations:

        none               γ ≡ 1, no parameter
        gamma              γ = <symbol>                          one parameter, (dim,)
        magdir             γ = β α                               beta (1,), alpha (dim,)
        magdir-normalized  γ = β α / sqrt(mean(α²))  (no eps)    beta (1,), alpha (dim,)

    `symbol` is "gamma" or "u" (the output-side scales of DP and DNP). `kind` is the scale's type,
    "input" or "output" (SCALE_VECTORS.md §3), which decides weight decay under the iwd policy."""

    def __init__(self, dim, param, symbol="gamma", kind="input"):
        super().__init__()
        if param not in SCALE_PARAMS:
            raise ValueError(f"unknown scale parameterization '{param}'")
        self.param, self.symbol, self.kind = param, symbol, kind
        self.track = False  # keep γ of the last forward and its gradient (for `check`)
        self.last = None
        if param == "gamma":
            self.register_parameter(symbol, nn.Parameter(torch.ones(dim)))
        elif param in MAGDIR:
            self.beta = nn.Parameter(torch.ones(1))
            self.alpha = nn.Parameter(torch.ones(dim))

    def for_branch(self, f):
        return self  # a site's one scale serves every branch (see BranchScales for HG)

    def _direction(self):
        if self.param == "magdir":
            return self.alpha
        ms = self.alpha.pow(2).mean()
        if MUTATION == "alpha-rms-eps":
            ms = ms + 1e-5
        return self.alpha / ms.sqrt()

    def vector(self):
        """γ, or None for the identity."""
        if self.param == "none":
            return None
        g = getattr(self, self.symbol) if self.param == "gamma" else self.beta * self._direction()
        if self.track:
            if not g.is_leaf:
                g.retain_grad()
            self.last = g
        return g

    def forward(self, x):
        g = self.vector()
        return x if g is None else x * g

    def gradient_scales(self):
        """{"beta": the size of the error dβ may carry}, from the γ of the last forward (with track
        set) and its gradient; {} without a β. dβ = Σ_c α̂_c dγ_c (α̂ = α, or α/rms(α)) is a sum
        that may cancel far below its terms: where a normalization downstream removes the global
        magnitude (DNP or QK-Norm after the branch, or a post-norm after the v or up branch), dβ is
        of order eps. Each dγ_c is known only to within rtol·max|dγ| (both sides round), which the
        sum carries into dβ as rtol·‖α̂‖₁·max|dγ|: that, not |dβ|, is dβ's scale."""
        if self.param not in MAGDIR or self.last is None or self.last.grad is None:
            return {}
        alpha = self.alpha.detach()
        if self.param == "magdir-normalized":
            alpha = alpha / alpha.pow(2).mean().sqrt()
        return {"beta": alpha.abs().sum().item() * self.last.grad.abs().max().item()}


class Norm(ScaleVector):
    """γ ⊙ N_h(x): RMSNorm over each of `heads` equal slices of the last dimension, then the scale
    (with parameterization none: N_h(x) alone)."""

    def __init__(self, dim, param, eps, heads=1, symbol="gamma", kind="output"):
        super().__init__(dim, param, symbol, kind)
        self.eps, self.heads = eps, heads

    def forward(self, x):
        eps = 0.0 if MUTATION == "output-norm-no-eps" and self.kind == "output" else self.eps
        return super().forward(rms_normalize(x, eps, self.heads))


class BranchScales(nn.ModuleDict):
    """HG: one input-side scale per branch, all over the same n = N(x)."""

    def for_branch(self, f):
        return self[f]


def input_side(spec, dim, branches):
    """The input-side scale(s) of a norm site whose n = N(x) feeds `branches`: one scale shared by
    all of them, or with HG one per branch. A magnitude β is pointless on a group all of whose
    branches are normalized downstream of their linear map (that normalization cancels it); with
    skip_cancelled such a group uses plain gamma."""
    def scale(group):
        return ScaleVector(dim, spec.param_for(all(spec.normalized(f) for f in group)))

    if spec.hg:
        return BranchScales({f: scale([f]) for f in branches})
    return scale(branches)


def scaled_inputs(site, n, branches):
    """{f: a_f = γ_f ⊙ n}; a scale shared by several branches is applied once."""
    by_scale = {}
    for f in branches:
        s = site.for_branch(f)
        if s not in by_scale:
            by_scale[s] = s(n)
    return {f: by_scale[site.for_branch(f)] for f in branches}


class BranchedSublayer(nn.Module):
    """The linear branches fed by one norm site. Branch f is a chain of stages, each a child
    module under its checkpoint name:

        z = W_f a                                  <w_name>       (d_out x d_in)
        y1 = u ⊙ z            if f in dp            <f>_dp.u       Input-type
        y = u ⊙ N_h(y1)       if f in dnp           <f>_dnp.u      Output-type
        y = γ ⊙ N_h(y1)       if qk_norm, f ∈ q,k   <f>_norm.gamma Output-type

    N_h normalizes each head of q and k, and all channels of v, gate and up."""

    def __init__(self, spec, eps):
        super().__init__()
        self.spec, self.eps = spec, eps
        self.chains = {}

    def add_branch(self, f, w_name, d_in, d_out, heads):
        spec, chain = self.spec, [(w_name, nn.Linear(d_in, d_out, bias=False))]
        norm_stage = f in spec.dnp or (spec.qk_norm and f in ("q", "k"))
        # A scale's magnitude is cancelled by a normalization after it: the branch's own norm
        # stage (for the DP u) or a post-norm downstream (v, up).
        if f in spec.dp:
            param = spec.param_for(norm_stage or spec.post_cancels(f))
            chain.append((f"{f}_dp", ScaleVector(d_out, param, "u", "input")))
        if norm_stage:
            param = spec.param_for(spec.post_cancels(f))
            symbol = "u" if f in spec.dnp else "gamma"
            chain.append((f"{f}_dnp" if f in spec.dnp else f"{f}_norm",
                          Norm(d_out, param, self.eps, heads, symbol)))
        for name, module in chain:
            self.add_module(name, module)
        self.chains[f] = [name for name, _ in chain]

    def branch(self, f, a):
        for name in self.chains[f]:
            a = getattr(self, name)(a)
        return a


def rope_tables(context, head_size, base):
    """cos and sin of t * base^(-2i/hs), (context, hs/2) each, in float64."""
    i = torch.arange(head_size // 2, dtype=torch.float64)
    inv_freq = base ** (-2.0 * i / head_size)
    angle = torch.arange(context, dtype=torch.float64)[:, None] * inv_freq[None, :]
    return angle.cos(), angle.sin()


def apply_rope(x, cos, sin):
    """Rotate-half RoPE on x (B, NH, T, hs): channel i pairs with channel i + hs/2."""
    if MUTATION == "rope-interleaved":
        x1, x2 = x[..., 0::2], x[..., 1::2]
        return torch.stack((x1 * cos - x2 * sin, x1 * sin + x2 * cos), dim=-1).flatten(-2)
    x1, x2 = x.chunk(2, dim=-1)
    return torch.cat((x1 * cos - x2 * sin, x1 * sin + x2 * cos), dim=-1)


class Attention(BranchedSublayer):
    def __init__(self, spec, d_model, n_head, eps):
        super().__init__(spec, eps)
        self.n_head = n_head
        for f in ATTN_BRANCHES:
            self.add_branch(f, "w" + f, d_model, d_model, n_head if f in ("q", "k") else 1)
        self.wo = nn.Linear(d_model, d_model, bias=False)

    def forward(self, a, cos, sin, mask):
        B, T, C = a["q"].shape
        hs = C // self.n_head
        q, k, v = (self.branch(f, a[f]).view(B, T, self.n_head, hs).transpose(1, 2)  # (B, NH, T, hs)
                   for f in ATTN_BRANCHES)
        q, k = apply_rope(q, cos, sin), apply_rope(k, cos, sin)
        att = (q @ k.transpose(-2, -1)) * (1.0 / math.sqrt(hs))     # (B, NH, T, T)
        att = att.masked_fill(mask, float("-inf"))
        att = F.softmax(att, dim=-1)
        y = (att @ v).transpose(1, 2).contiguous().view(B, T, C)
        return self.wo(y)


class SwiGLU(BranchedSublayer):
    def __init__(self, spec, d_model, d_ff, eps):
        super().__init__(spec, eps)
        self.add_branch("gate", "w_gate", d_model, d_ff, 1)
        self.add_branch("up", "w_up", d_model, d_ff, 1)
        self.w_down = nn.Linear(d_ff, d_model, bias=False)

    def forward(self, a):
        return self.w_down(F.silu(self.branch("gate", a["gate"])) * self.branch("up", a["up"]))


class Block(nn.Module):
    def __init__(self, cfg, spec):
        super().__init__()
        C, eps = cfg["d_model"], cfg["norm_eps"]
        self.eps = eps
        self.attn_norm = input_side(spec, C, ATTN_BRANCHES)
        self.attn = Attention(spec, C, cfg["n_head"], eps)
        self.post_attn_norm = Norm(C, spec.param, eps) if spec.post_norm else None
        self.mlp_norm = input_side(spec, C, MLP_BRANCHES)
        self.mlp = SwiGLU(spec, C, cfg["d_ff"], eps)
        self.post_mlp_norm = Norm(C, spec.param, eps) if spec.post_norm else None

    def forward(self, x, cos, sin, mask):
        o = self.attn(scaled_inputs(self.attn_norm, rms_normalize(x, self.eps), ATTN_BRANCHES),
                      cos, sin, mask)
        if self.post_attn_norm is not None:
            o = self.post_attn_norm(o)
        x = x + o
        o = self.mlp(scaled_inputs(self.mlp_norm, rms_normalize(x, self.eps), MLP_BRANCHES))
        if self.post_mlp_norm is not None:
            o = self.post_mlp_norm(o)
        return x + o


class Transformer(nn.Module):
    def __init__(self, cfg):
        super().__init__()
        self.spec = ScaleSpec.from_config(cfg)
        C, NH = cfg["d_model"], cfg["n_head"]
        if C % NH or (C // NH) % 2:
            raise ValueError(f"d_model {C} must split into {NH} heads of even size")
        self.cfg = cfg
        self.tok_emb = nn.Embedding(cfg["vocab_size"], C)
        self.layers = nn.ModuleList(Block(cfg, self.spec) for _ in range(cfg["n_layer"]))
        # The final norm keeps one scale (HG is for a block's branches); it feeds only the head.
        self.final_norm = Norm(C, self.spec.param, cfg["norm_eps"], kind="input")
        self.head = nn.Linear(C, cfg["vocab_size"], bias=False)
        # RoPE tables in float64, kept out of the module's buffers so that model.to(dtype) does
        # not round them; forward casts them once to the activations' dtype (as ref/ does).
        self.rope_cos, self.rope_sin = rope_tables(cfg["context"], C // NH, cfg["rope_base"])
        T = cfg["context"]
        causal = torch.triu(torch.ones(T, T, dtype=torch.bool), diagonal=1)  # True = masked
        self.register_buffer("mask", causal, persistent=False)

    def forward(self, idx, targets=None):
        B, T = idx.shape
        x = self.tok_emb(idx)
        cos = self.rope_cos[:T].to(device=x.device, dtype=x.dtype)
        sin = self.rope_sin[:T].to(device=x.device, dtype=x.dtype)
        mask = self.mask[:T, :T]
        for layer in self.layers:
            x = layer(x, cos, sin, mask)
        logits = self.head(self.final_norm(x))
        if targets is None:
            return logits, None
        loss = F.cross_entropy(logits.view(-1, logits.size(-1)), targets.reshape(-1))
        return logits, loss

    def scale_vectors(self):
        """(module path, ScaleVector) for every scale vector, parameterless ones included."""
        return [(n, m) for n, m in self.named_modules() if isinstance(m, ScaleVector)]


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
        raise ValueError(f"{path}: tensors do not match the model ({model.spec.describe()}): "
                         f"missing {missing}, extra {extra}")
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
    A magnitude β is compared at a larger scale where its gradient cancels (see
    ScaleVector.gradient_scales). On the test models (2 layers, C 32-48, B*T 32-48, every scale
    strategy) the largest tensor errors are 11-42 u in float64 and 12-30 u in float32 (the largest
    in the α of magdir-normalized scales), so the default factor 64 leaves a margin of 1.5x or
    more, while a 1e-3 relative error in one entry, a 1e-10 relative error of a float64 loss, or an
    eps left out of one normalization fails."""
    u = max(_UNIT_ROUNDOFF[ours_dtype], _UNIT_ROUNDOFF[torch_dtype])
    return factor * u


def compare(name, ours, theirs, tol, floor=0.0):
    """Returns (ok, rel, line) for one tensor: max abs error, error relative to the tensor's
    scale, and the share of the tolerance used. The scale is max |ours|, or `floor` if larger
    (then the line says so; see ScaleVector.gradient_scales)."""
    a, b = ours.double().reshape(-1), theirs.double().reshape(-1)
    peak = a.abs().max().item() if a.numel() else 0.0
    scale = max(peak, floor)
    err = (a - b).abs().max().item() if a.numel() else 0.0
    rel = err / scale if scale > 0 else (0.0 if err == 0 else math.inf)
    ok = err <= tol * scale or err == 0.0
    line = (f"{name:<30} {a.numel():>8} {peak:>11.3e} {err:>11.3e} {rel:>11.3e} "
            f"{rel / tol:>7.3g}  {'ok' if ok else 'FAIL'}")
    if floor > peak:
        line += f"  * scale {scale:.3e} = sum|alpha_hat| * max|dgamma|"
    return ok, rel, line


def check_dir(d, dtype_name, factor, rtol):
    """Checks one directory; prints its report; returns (ok, summary line)."""
    our_grads, grads_meta = read_safetensors(f"{d}/grads.safetensors")
    ours_dtype = next(iter(our_grads.values())).dtype
    dtype = {"float32": torch.float32, "float64": torch.float64}.get(dtype_name, ours_dtype)
    model, cfg = load_model(f"{d}/model.safetensors", dtype)
    inputs, targets = load_batch(f"{d}/batch.safetensors", cfg)
    if rtol is None:
        rtol = tolerances(ours_dtype, dtype, factor)
    for _, m in model.scale_vectors():
        m.track = True

    logits, loss = model(inputs, targets)
    loss.backward()
    floors = {f"{name}.{p}": s for name, m in model.scale_vectors()
              for p, s in m.gradient_scales().items()}

    if "loss" not in grads_meta:
        raise ValueError(f"{d}/grads.safetensors: no 'loss' metadata entry")
    our_loss = float(grads_meta["loss"])
    loss_err = abs(our_loss - loss.item())
    loss_tol = rtol * max(1.0, abs(our_loss))
    loss_ok = loss_err <= loss_tol
    print(f"torch_ref check: {d}: scale={cfg['scale']} layers={cfg['n_layer']} "
          f"d_model={cfg['d_model']} heads={cfg['n_head']} d_ff={cfg['d_ff']} "
          f"batch {tuple(inputs.shape)}, ours {str(ours_dtype)[6:]}, torch {str(dtype)[6:]}"
          + (f", MUTATION {MUTATION}" if MUTATION else ""))
    print(f"scale strategy: {model.spec.describe()}")
    print(f"tolerance: rtol = {rtol:.3e} (= {rtol / max(_UNIT_ROUNDOFF[ours_dtype], _UNIT_ROUNDOFF[dtype]):.0f}"
          f" x unit roundoff); loss: |a-b| <= rtol*max(1,|loss|); tensors: max|a-b| <= rtol*scale,"
          f" scale = max|ours| (but see *)")
    print(f"loss: ours {our_loss:.17g}  torch {loss.item():.17g}  |diff| {loss_err:.3e}  "
          f"(tolerance {loss_tol:.3e})  {'ok' if loss_ok else 'FAIL'}")

    all_ok = loss_ok
    worst = ("loss", loss_err / max(1.0, abs(our_loss)))
    print(f"{'tensor':<30} {'numel':>8} {'max|ours|':>11} {'max abs err':>11} {'rel to scale':>11} "
          f"{'of tol':>7}  result")

    def record(name, ok, rel, line):
        nonlocal all_ok, worst
        all_ok &= ok
        if rel > worst[1]:
            worst = (name, rel)
        print(line)

    try:
        our_logits, _ = read_safetensors(f"{d}/logits.safetensors")
        record("logits", *compare("logits", our_logits["logits"], logits.detach(), rtol))
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
        if cname in our_grads:
            record(cname, *compare(cname, our_grads[cname], p.grad, rtol, floors.get(name, 0.0)))
    if floors:
        print("scale: max|ours|, or (*) for a magnitude beta the error that dgamma's tolerance "
              "carries into dbeta = sum(alpha_hat * dgamma), if larger (ScaleVector.gradient_scales)")
    print("PASS" if all_ok else "FAIL: scalevec and PyTorch disagree")
    summary = (f"{'PASS' if all_ok else 'FAIL'} loss |diff| {loss_err:.3e}; worst {worst[0]} "
               f"rel {worst[1]:.3e} ({worst[1] / rtol:.3g} of tol {rtol:.3e})")
    return all_ok, summary


def cmd_check(args):
    """Checks every --dir in turn (one process: PyTorch starts once); exit 0 if all pass, 1 if
    any disagrees, 2 if any could not be checked."""
    global MUTATION
    MUTATION = args.mutate
    results = []
    for d in args.dir:
        try:
            ok, summary = check_dir(d, args.dtype, args.factor, args.rtol)
            results.append((d, 0 if ok else 1, summary))
        except (ValueError, KeyError, OSError) as e:
            print(f"torch_ref.py: error: {d}: {e}", file=sys.stderr)
            results.append((d, 2, f"ERROR {e}"))
        if len(args.dir) > 1:
            print(flush=True)
    for d, _, summary in results:
        print(f"summary {d}: {summary}")
    return max(status for _, status, _ in results)


# ------------------------------------------------------------------------------------------------
# bench: timed training steps, the way a PyTorch user would write them.

def param_groups(model, weight_decay, wd_policy, decay_embeddings):
    """The same groups as scalevec's DecayRule: matrices and the head always decay; the embedding
    when asked; scale vectors (γ, u, β, α) by policy and by the type of the scale they form:
    `all` every one, `iwd` the Input-type ones only, `none` none."""
    kind = {id(p): m.kind for _, m in model.scale_vectors() for p in m.parameters(recurse=False)}
    decay, no_decay = [], []
    for name, p in model.named_parameters():
        if checkpoint_name(name) == "tok_emb":
            on = decay_embeddings
        elif id(p) in kind:
            on = wd_policy == "all" or (wd_policy == "iwd" and kind[id(p)] == "input")
        else:
            on = True
        (decay if on else no_decay).append(p)
    return [{"params": decay, "weight_decay": weight_decay},
            {"params": no_decay, "weight_decay": 0.0}]


def cmd_bench(args):
    torch.set_num_threads(args.threads)
    device = torch.device(args.device)
    if device.type == "cuda":
        if not torch.cuda.is_available():
            print("error: --device cuda but torch sees no CUDA device", file=sys.stderr)
            return 2
        # The precision scalevec's products use: fp32 without TF32, TF32, or bf16 autocast.
        torch.backends.cuda.matmul.allow_tf32 = args.precision == "tf32"
        torch.backends.cudnn.allow_tf32 = args.precision == "tf32"
    elif args.precision != "fp32":
        print("error: --precision tf32/bf16 needs --device cuda", file=sys.stderr)
        return 2
    autocast = (torch.autocast(device_type="cuda", dtype=torch.bfloat16)
                if args.precision == "bf16" else contextlib.nullcontext())
    model, cfg = load_model(f"{args.dir}/model.safetensors", torch.float32)
    model.to(device)
    inputs, targets = load_batch(f"{args.dir}/batch.safetensors", cfg)
    inputs, targets = inputs.to(device), targets.to(device)
    with torch.no_grad(), autocast:
        _, loss0 = model(inputs, targets)
    groups = param_groups(model, args.weight_decay, args.wd_policy, args.decay_embeddings)
    opt = torch.optim.AdamW(groups, lr=args.lr, betas=(args.beta1, args.beta2), eps=args.eps)
    step_model = torch.compile(model) if args.compile else model

    def sync():
        if device.type == "cuda":
            torch.cuda.synchronize()

    times = []
    for i in range(args.warmup + args.steps):
        sync()
        t0 = time.perf_counter()
        opt.zero_grad(set_to_none=True)
        with autocast:
            _, loss = step_model(inputs, targets)
        loss.backward()
        if args.grad_clip > 0:
            torch.nn.utils.clip_grad_norm_(model.parameters(), args.grad_clip)
        opt.step()
        sync()
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
        "final_loss": loss.item(), "torch_version": torch.__version__,
        "device": (torch.cuda.get_device_name(device) if device.type == "cuda" else "cpu"),
        "compile": bool(args.compile), "precision": args.precision}))
    return 0


def main(argv=None):
    p = argparse.ArgumentParser(
        description="The scalevec model written independently in PyTorch: parity check against "
                    "scalevec's loss and gradients, and the PyTorch side of `scalevec bench`.")
    sub = p.add_subparsers(dest="cmd", required=True)

    c = sub.add_parser("check", help="compare loss, logits and gradients with scalevec's",
                       description="Loads D/model.safetensors, D/batch.safetensors and "
                       "D/grads.safetensors (scalevec's loss and gradients), recomputes them in "
                       "PyTorch and compares; exit status 1 on any mismatch, 2 if a directory "
                       "cannot be checked (e.g. its tensors do not fit its config).")
    c.add_argument("--dir", required=True, action="append",
                   help="directory written by scalevec; repeat it to check several in one process")
    c.add_argument("--dtype", choices=["float32", "float64"],
                   help="PyTorch's precision (default: the precision of scalevec's gradients)")
    c.add_argument("--factor", type=float, default=64.0,
                   help="tolerance as a multiple of the unit roundoff of the less precise side "
                        "(default: %(default)s)")
    c.add_argument("--rtol", type=float, help="explicit relative tolerance (overrides --factor)")
    c.add_argument("--mutate", choices=sorted(MUTATIONS),
                   help="test only: compute with a deliberately wrong semantic, to show that the "
                        "check fails: " + "; ".join(f"{k}: {v}" for k, v in MUTATIONS.items()))

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
    b.add_argument("--device", choices=["cpu", "cuda"], default="cpu",
                   help="where to train (default: %(default)s); cuda: timed with "
                        "torch.cuda.synchronize() around each step")
    b.add_argument("--precision", choices=["fp32", "tf32", "bf16"], default="fp32",
                   help="matrix products on cuda (default: %(default)s): fp32 without TF32, TF32 "
                        "allowed, or torch.autocast to bfloat16 (fp32 weights and optimizer)")
    b.add_argument("--compile", action="store_true",
                   help="wrap the model in torch.compile (the warmup steps include compiling)")

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
