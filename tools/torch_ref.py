#!/usr/bin/python3
"""The scalevec model written independently in PyTorch: the project's independent reference
(docs/VERIFICATION.md §6) and the peer of `scalevec bench`.

It reads the checkpoints that `scalevec` writes (safetensors, parsed here with json + torch, since
Debian has no `safetensors` package), builds the same architecture as ref/ from the config stored
in the checkpoint (every scale strategy of docs/SCALE_VECTORS.md §4: the parameterizations none, gamma,
magdir, magdir-normalized; shared or per-branch (HG) input-side scales; DP and DNP output-side
scales; QK-Norm; post-sublayer norms), loads every tensor strictly by name, and either

  check   computes the loss, logits and every parameter gradient on a saved batch and compares
          them with the values scalevec saved (exit 1 on mismatch, 2 if a directory cannot be
          checked, e.g. its tensors do not fit its config); several --dir in one process, or
  bench   times full training steps (forward, backward, clip_grad_norm_, AdamW) on a saved batch
          and prints one JSON line, or
  trace   runs one forward and backward pass recording every named step and its gradient under
          the names of `scalevec trace`, prints them in its line format, and compares them with
          the trace scalevec saved (--compare); several --dir in one process.

Run it with Debian's interpreter, /usr/bin/python3 (python3-torch); `scalevec bench` sets
LD_LIBRARY_PATH to the OpenMP build of OpenBLAS and OMP_NUM_THREADS to its own thread count.

Files in a check/bench directory D (all written by scalevec):
  D/model.safetensors   parameters by layout name, metadata "config" (JSON model config)
  D/batch.safetensors   "inputs", "targets": I32 (B, T)
  D/grads.safetensors   (check) scalevec's gradient for each parameter, metadata "loss"
  D/logits.safetensors  (check, optional) scalevec's "logits" (B, T, V)
  D/trace.safetensors   (trace --compare) every step and gradient of `scalevec trace` (F64)
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


def checksum(header, data):
    """scalevec's "crc32" metadata entry (docs/checkpoints.md): CRC-32 of the canonical header
    (the header without that entry, compact, keys sorted, UTF-8 as is) followed by the data."""
    h = json.loads(json.dumps(header))
    h.setdefault("__metadata__", {}).pop("crc32", None)
    canonical = json.dumps(h, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return str(zlib.crc32(data, zlib.crc32(canonical.encode("utf-8"))))


def read_safetensors(path):
    """Returns ({name: tensor}, metadata) for a safetensors file, checking offsets and the
    "crc32" checksum scalevec writes into the metadata (of the header and the data)."""
    with open(path, "rb") as f:
        raw = f.read()
    if len(raw) < 8:
        raise ValueError(f"{path}: truncated ({len(raw)} bytes)")
    (n,) = struct.unpack("<Q", raw[:8])
    if n > len(raw) - 8:
        raise ValueError(f"{path}: header length {n} exceeds the file size {len(raw)}")
    header = json.loads(raw[8:8 + n].decode("utf-8"))
    data = bytearray(raw[8 + n:])  # writable, so torch.frombuffer does not warn
    if "crc32" in header.get("__metadata__", {}) and \
            checksum(header, bytes(data)) != header["__metadata__"]["crc32"]:
        raise ValueError(f"{path}: header or data does not match its crc32 checksum")
    metadata = dict(header.pop("__metadata__", {}) or {})
    metadata.pop("crc32", None)
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


_CODES = {torch.float32: ("F32", "f"), torch.float64: ("F64", "d"), torch.int32: ("I32", "i")}


def write_safetensors(path, tensors, metadata=None):
    """Writes [(name, tensor)] in that order (with the "crc32" checksum scalevec requires)."""
    header, chunks, offset = {}, [], 0
    for name, t in tensors:
        code, fmt = _CODES[t.dtype]
        values = t.detach().reshape(-1).tolist()
        chunk = struct.pack(f"<{len(values)}{fmt}", *values)
        header[name] = {"dtype": code, "shape": list(t.shape),
                        "data_offsets": [offset, offset + len(chunk)]}
        chunks.append(chunk)
        offset += len(chunk)
    data = b"".join(chunks)
    header = {"__metadata__": dict(metadata or {}), **header}
    header["__metadata__"]["crc32"] = checksum(header, data)
    h = json.dumps(header).encode("utf-8")
    h += b" " * (-len(h) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(h)) + h + data)


# ------------------------------------------------------------------------------------------------
# The scale strategy (docs/SCALE_VECTORS.md §4), read from the checkpoint's config.

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


# `trace`: the modules pass each named step of the forward through record(name, tensor), which
# does nothing unless a Recorder is installed in TRACE. The names are those of `scalevec trace`
# (ref/model/trace.h): module paths, i.e. checkpoint names, plus the step, e.g.
# "layers.0.attn.q.z". A recorded tensor retains its gradient, so after backward() its .grad is
# the total gradient over all its uses, as in scalevec's buffers.
class Recorder:
    def __init__(self):
        self.steps = []  # [(name, tensor)] in forward order
        self.names = set()

    def add(self, name, t):
        if name in self.names:
            raise ValueError(f"trace: step '{name}' recorded twice")
        self.names.add(name)
        if t.requires_grad:
            t.retain_grad()
        self.steps.append((name, t))


TRACE = None


def record(name, t):
    if TRACE is not None:
        TRACE.add(name, t)
    return t


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
# The model (docs/SCALE_VECTORS.md §2, §4): Pre-Norm Llama-style blocks, RMSNorm, RoPE, SwiGLU, no
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
    "input" or "output" (docs/SCALE_VECTORS.md §3), which decides weight decay under the iwd policy."""

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


def scaled_inputs(site, n, branches, path):
    """{f: a_f = γ_f ⊙ n}; a scale shared by several branches is applied once. Trace steps
    <path>.a (shared) or <path>.<f>.a (HG); none for an identity scale (a_f is n itself)."""
    by_scale = {}
    for f in branches:
        s = site.for_branch(f)
        if s not in by_scale:
            by_scale[s] = s(n)
            if by_scale[s] is not n:
                record(f"{path}.{f}.a" if isinstance(site, BranchScales) else f"{path}.a",
                       by_scale[s])
    return {f: by_scale[site.for_branch(f)] for f in branches}


class BranchedSublayer(nn.Module):
    """The linear branches fed by one norm site. Branch f is a chain of stages, each a child
    module under its checkpoint name:

        z = W_f a                                  <w_name>       (d_out x d_in)
        y1 = u ⊙ z            if f in dp            <f>_dp.u       Input-type
        y = u ⊙ N_h(y1)       if f in dnp           <f>_dnp.u      Output-type
        y = γ ⊙ N_h(y1)       if qk_norm, f ∈ q,k   <f>_norm.gamma Output-type

    N_h normalizes each head of q and k, and all channels of v, gate and up. Trace steps
    <path>.<f>.z and, with any stage after W_f, <path>.<f>.y (path e.g. "layers.0.attn")."""

    def __init__(self, spec, eps, path):
        super().__init__()
        self.spec, self.eps, self.path = spec, eps, path
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
        w, *stages = self.chains[f]
        z = y = record(f"{self.path}.{f}.z", getattr(self, w)(a))
        for name in stages:
            y = getattr(self, name)(y)
        return record(f"{self.path}.{f}.y", y) if stages else z


def rope_tables(context, head_size, base):
    """cos and sin of t * base^(-2i/hs), (context, hs/2) each, in float64."""
    i = torch.arange(head_size // 2, dtype=torch.float64)
    inv_freq = base ** (-2.0 * i / head_size)
    angle = torch.arange(context, dtype=torch.float64)[:, None] * inv_freq[None, :]
    return angle.cos(), angle.sin()


def apply_rope(x, cos, sin):
    """Rotate-half RoPE on x (B, T, NH, hs), cos and sin (T, 1, hs/2): channel i of each head
    pairs with channel i + hs/2."""
    if MUTATION == "rope-interleaved":
        x1, x2 = x[..., 0::2], x[..., 1::2]
        return torch.stack((x1 * cos - x2 * sin, x1 * sin + x2 * cos), dim=-1).flatten(-2)
    x1, x2 = x.chunk(2, dim=-1)
    return torch.cat((x1 * cos - x2 * sin, x1 * sin + x2 * cos), dim=-1)


class Attention(BranchedSublayer):
    def __init__(self, spec, d_model, n_head, eps, path):
        super().__init__(spec, eps, path)
        self.n_head = n_head
        for f in ATTN_BRANCHES:
            self.add_branch(f, "w" + f, d_model, d_model, n_head if f in ("q", "k") else 1)
        self.wo = nn.Linear(d_model, d_model, bias=False)

    def forward(self, a, cos, sin, mask):
        B, T, C = a["q"].shape
        NH, hs, p = self.n_head, C // self.n_head, self.path
        q, k, v = (self.branch(f, a[f]) for f in ATTN_BRANCHES)    # (B, T, C) each
        # RoPE on the (B, T, NH, hs) view, so that the rotated q and k are steps in scalevec's
        # (B, T, C) layout; the tables broadcast over the heads.
        cos, sin = cos[:, None, :], sin[:, None, :]                  # (T, 1, hs/2)
        q = record(f"{p}.q.rope", apply_rope(q.view(B, T, NH, hs), cos, sin).reshape(B, T, C))
        k = record(f"{p}.k.rope", apply_rope(k.view(B, T, NH, hs), cos, sin).reshape(B, T, C))
        q, k, v = (x.view(B, T, NH, hs).transpose(1, 2) for x in (q, k, v))  # (B, NH, T, hs)
        att = (q @ k.transpose(-2, -1)) * (1.0 / math.sqrt(hs))     # (B, NH, T, T)
        att = att.masked_fill(mask, float("-inf"))
        att = record(f"{p}.att", F.softmax(att, dim=-1))
        y = record(f"{p}.y", (att @ v).transpose(1, 2).contiguous().view(B, T, C))
        return record(f"{p}.o", self.wo(y))


class SwiGLU(BranchedSublayer):
    def __init__(self, spec, d_model, d_ff, eps, path):
        super().__init__(spec, eps, path)
        self.add_branch("gate", "w_gate", d_model, d_ff, 1)
        self.add_branch("up", "w_up", d_model, d_ff, 1)
        self.w_down = nn.Linear(d_ff, d_model, bias=False)

    def forward(self, a):
        gate, up = self.branch("gate", a["gate"]), self.branch("up", a["up"])
        h = record(f"{self.path}.h", F.silu(gate) * up)
        return record(f"{self.path}.o", self.w_down(h))


class Block(nn.Module):
    def __init__(self, cfg, spec, path):
        super().__init__()
        C, eps = cfg["d_model"], cfg["norm_eps"]
        self.eps, self.path = eps, path
        self.attn_norm = input_side(spec, C, ATTN_BRANCHES)
        self.attn = Attention(spec, C, cfg["n_head"], eps, f"{path}.attn")
        self.post_attn_norm = Norm(C, spec.param, eps) if spec.post_norm else None
        self.mlp_norm = input_side(spec, C, MLP_BRANCHES)
        self.mlp = SwiGLU(spec, C, cfg["d_ff"], eps, f"{path}.mlp")
        self.post_mlp_norm = Norm(C, spec.param, eps) if spec.post_norm else None

    def forward(self, x, cos, sin, mask):
        p = self.path
        n = record(f"{p}.attn_norm.n", rms_normalize(x, self.eps))
        o = self.attn(scaled_inputs(self.attn_norm, n, ATTN_BRANCHES, f"{p}.attn_norm"),
                      cos, sin, mask)
        if self.post_attn_norm is not None:
            o = record(f"{p}.post_attn_norm.out", self.post_attn_norm(o))
        x = record(f"{p}.x_mid", x + o)
        n = record(f"{p}.mlp_norm.n", rms_normalize(x, self.eps))
        o = self.mlp(scaled_inputs(self.mlp_norm, n, MLP_BRANCHES, f"{p}.mlp_norm"))
        if self.post_mlp_norm is not None:
            o = record(f"{p}.post_mlp_norm.out", self.post_mlp_norm(o))
        return record(f"{p}.out", x + o)


class Transformer(nn.Module):
    def __init__(self, cfg):
        super().__init__()
        self.spec = ScaleSpec.from_config(cfg)
        C, NH = cfg["d_model"], cfg["n_head"]
        if C % NH or (C // NH) % 2:
            raise ValueError(f"d_model {C} must split into {NH} heads of even size")
        self.cfg = cfg
        self.tok_emb = nn.Embedding(cfg["vocab_size"], C)
        self.layers = nn.ModuleList(Block(cfg, self.spec, f"layers.{l}")
                                    for l in range(cfg["n_layer"]))
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
        x = record("embed", self.tok_emb(idx))
        cos = self.rope_cos[:T].to(device=x.device, dtype=x.dtype)
        sin = self.rope_sin[:T].to(device=x.device, dtype=x.dtype)
        mask = self.mask[:T, :T]
        for layer in self.layers:
            x = layer(x, cos, sin, mask)
        # self.final_norm(x), as two trace steps: N(x), then the scale (its ScaleVector part).
        n = record("final_norm.n", rms_normalize(x, self.final_norm.eps))
        a = ScaleVector.forward(self.final_norm, n)
        if a is not n:
            record("final_norm.a", a)
        logits = record("logits", self.head(a))
        if targets is None:
            return logits, None
        loss = F.cross_entropy(logits.view(-1, logits.size(-1)), targets.reshape(-1))
        return logits, record("loss", loss)

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


def compare(name, ours, theirs, tol, floor=0.0, width=30):
    """Returns (ok, rel, line) for one tensor: max abs error, error relative to the tensor's
    scale, and the share of the tolerance used. The scale is max |ours|, or `floor` if larger
    (then the line says so; see ScaleVector.gradient_scales)."""
    a, b = ours.double().reshape(-1), theirs.double().reshape(-1)
    peak = a.abs().max().item() if a.numel() else 0.0
    scale = max(peak, floor)
    err = (a - b).abs().max().item() if a.numel() else 0.0
    rel = err / scale if scale > 0 else (0.0 if err == 0 else math.inf)
    ok = err <= tol * scale or err == 0.0
    line = (f"{name:<{width}} {a.numel():>8} {peak:>11.3e} {err:>11.3e} {rel:>11.3e} "
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
# trace: every named step and its gradient, in `scalevec trace`'s names, order and line format.

def trace_backward_order(model, forward_names):
    """The gradient names (without "grad/") in the order scalevec's backward computes them
    (ref/model/block.h, ref/model/transformer.h): each activation when its backward step
    produces it, the parameters of a part once the part is done (final norm and head after the
    final part, each block's after its backward, tok_emb last)."""
    have = set(forward_names)
    params = [checkpoint_name(n) for n, _ in model.named_parameters()]
    order = []

    def steps(*names):  # the steps this model has (e.g. no .y without output-side scales)
        order.extend(n for n in names if n in have)

    def y_or_z(b):  # the branch's output: y, or z itself without output-side scales
        return f"{b}.y" if f"{b}.y" in have else f"{b}.z"

    def z_behind_y(*bs):  # d(z) from d(y) through the output-side scales
        steps(*(f"{b}.z" for b in bs if f"{b}.y" in have))

    def params_of(pred):
        order.extend(n for n in params if pred(n))

    L = model.cfg["n_layer"]
    steps("logits", "final_norm.a", "final_norm.n", f"layers.{L - 1}.out")
    params_of(lambda n: n == "head" or n.startswith("final_norm."))
    for l in reversed(range(L)):
        p = f"layers.{l}"
        m, a = f"{p}.mlp", f"{p}.attn"
        steps(f"{p}.post_mlp_norm.out", f"{m}.o", f"{m}.h", y_or_z(f"{m}.gate"), y_or_z(f"{m}.up"))
        z_behind_y(f"{m}.gate", f"{m}.up")
        steps(f"{p}.mlp_norm.a", *(f"{p}.mlp_norm.{f}.a" for f in MLP_BRANCHES))
        steps(f"{p}.mlp_norm.n", f"{p}.x_mid")
        steps(f"{p}.post_attn_norm.out", f"{a}.o", f"{a}.y", f"{a}.q.rope", f"{a}.k.rope",
              y_or_z(f"{a}.v"), y_or_z(f"{a}.q"), y_or_z(f"{a}.k"))
        z_behind_y(f"{a}.q", f"{a}.k", f"{a}.v")
        steps(f"{p}.attn_norm.a", *(f"{p}.attn_norm.{f}.a" for f in ATTN_BRANCHES))
        steps(f"{p}.attn_norm.n", f"layers.{l - 1}.out" if l else "embed")
        params_of(lambda n, p=p: n.startswith(p + "."))
    params_of(lambda n: n == "tok_emb")
    return order


def run_trace(model, inputs, targets):
    """One forward and backward pass with a Recorder installed. Returns (forward, backward, loss):
    [(name, tensor)] of the steps in forward order and of their gradients ("grad/<name>") in
    scalevec's backward order."""
    global TRACE
    TRACE = Recorder()
    try:
        _, loss = model(inputs, targets)
        loss.backward()
        steps = TRACE.steps
    finally:
        TRACE = None
    forward = [(name, t.detach()) for name, t in steps]
    tensors = dict(steps)
    tensors.update((checkpoint_name(n), p) for n, p in model.named_parameters())
    backward = []
    for name in trace_backward_order(model, [n for n, _ in steps]):
        t = tensors[name]
        g = t.grad if t.grad is not None else torch.zeros_like(t)  # the loss does not use it
        backward.append((f"grad/{name}", g.detach()))
    return forward, backward, loss.item()


def trace_lines(forward, backward, loss, values, digits):
    """The report of `scalevec trace` (tools/cmd_trace.cpp), line for line the same format."""
    entries = forward + backward
    name_w = max([6] + [len(n) for n, _ in entries])
    shape_w = max([5] + [len(str(tuple(t.shape))) for _, t in entries])
    header = (f"{'#':>4}  {'tensor':<{name_w}}  {'shape':<{shape_w}}  {'rms':<{digits + 6}}  "
              f"first values (row-major)")

    def line(i, name, t):
        flat = t.double().reshape(-1)
        rms = flat.pow(2).mean().sqrt().item() if flat.numel() else 0.0
        s = f"{i:>4}  {name:<{name_w}}  {str(tuple(t.shape)):<{shape_w}}  {rms:.{digits}e} "
        s += "".join(f" {v: .{digits}e}" for v in flat[:values].tolist())
        return s + (" ..." if flat.numel() > values else "")

    out = ["", f"forward: {len(forward)} steps", header]
    out += [line(i + 1, n, t) for i, (n, t) in enumerate(forward)]
    out += [f"loss = {loss:.17g}", "", f"backward: {len(backward)} gradients, in the order they are "
            f"computed", header]
    out += [line(len(forward) + i + 1, n, t) for i, (n, t) in enumerate(backward)]
    return out


def trace_dir(d, args):
    """Traces one directory; prints its report (and the comparison with --compare); returns
    (status, summary line): 0 traced (and agrees), 1 disagrees."""
    dtype = {"float32": torch.float32, "float64": torch.float64}[args.dtype]
    model, cfg = load_model(f"{d}/model.safetensors", dtype)
    inputs, targets = load_batch(f"{d}/batch.safetensors", cfg)
    for _, m in model.scale_vectors():
        m.track = True  # for the scale of a cancelled magnitude's gradient (gradient_scales)
    forward, backward, loss = run_trace(model, inputs, targets)
    print(f"torch_ref trace: {d}: scale={cfg['scale']} layers={cfg['n_layer']} "
          f"d_model={cfg['d_model']} heads={cfg['n_head']} d_ff={cfg['d_ff']} "
          f"batch {tuple(inputs.shape)}, torch {str(dtype)[6:]}"
          + (f", MUTATION {MUTATION}" if MUTATION else ""))
    print(f"scale strategy: {model.spec.describe()}")
    if not args.quiet:
        print("\n".join(trace_lines(forward, backward, loss, args.values, args.digits)))
    if args.dump:
        write_safetensors(args.dump, [(n, t.double()) for n, t in forward + backward],
                          {"format": "scalevec-trace", "config": json.dumps(cfg),
                           "loss": f"{loss:.17g}"})
    if args.compare is None:
        return 0, f"traced {len(forward)} steps, {len(backward)} gradients, loss {loss:.17g}"

    path = args.compare or f"{d}/trace.safetensors"
    theirs, _ = read_safetensors(path)  # scalevec's: "ours" in compare()'s terms
    mine = dict(forward + backward)
    rtol = args.rtol if args.rtol is not None else \
        tolerances(torch.float64, dtype, args.factor)
    floors = {f"grad/{name}.{p}": s for name, m in model.scale_vectors()
              for p, s in m.gradient_scales().items()}
    print(f"\ncompare with {path}: tolerance rtol = {rtol:.3e}; per tensor max|a-b| <= rtol*scale, "
          f"scale = max|scalevec's| (but see *)")
    width = max(len(n) for n in list(mine) + list(theirs))
    print(f"{'tensor':<{width}} {'numel':>8} {'max|ours|':>11} {'max abs err':>11} "
          f"{'rel to scale':>11} {'of tol':>7}  result")
    ok_all, worst, compared = True, ("-", 0.0), 0
    for name, t in forward + backward:
        if name not in theirs:
            continue
        if tuple(theirs[name].shape) != tuple(t.shape):
            print(f"{name:<{width}} shape {tuple(theirs[name].shape)} in scalevec's trace, "
                  f"{tuple(t.shape)} here  FAIL")
            ok_all = False
            continue
        ok, rel, line = compare(name, theirs[name], t, rtol, floors.get(name, 0.0), width)
        print(line)
        ok_all &= ok
        compared += 1
        if rel > worst[1]:
            worst = (name, rel)
    missing = [n for n in mine if n not in theirs]   # traced here, not in scalevec's file
    extra = [n for n in theirs if n not in mine]     # in scalevec's file, not traced here
    if missing or extra:
        print(f"names differ: not in scalevec's trace {missing}; only in scalevec's trace {extra}")
        ok_all = False
    if floors:
        print("scale: max|ours|, or (*) for a magnitude beta the error that dgamma's tolerance "
              "carries into dbeta = sum(alpha_hat * dgamma), if larger (ScaleVector.gradient_scales)")
    print("PASS" if ok_all else "FAIL: scalevec and PyTorch disagree")
    summary = (f"{'PASS' if ok_all else 'FAIL'} {compared} tensors; worst {worst[0]} rel "
               f"{worst[1]:.3e} ({worst[1] / rtol:.3g} of tol {rtol:.3e})")
    if missing or extra:
        summary += f"; names differ: {len(missing)} missing, {len(extra)} extra"
    return (0 if ok_all else 1), summary


def cmd_trace(args):
    """Traces every --dir in turn (one process); exit 0 if all agree, 1 if any disagrees, 2 if
    any could not be traced or compared."""
    global MUTATION
    MUTATION = args.mutate
    results = []
    for d in args.dir:
        try:
            status, summary = trace_dir(d, args)
            results.append((d, status, summary))
        except (ValueError, KeyError, OSError) as e:
            print(f"torch_ref.py: error: {d}: {e}", file=sys.stderr)
            results.append((d, 2, f"ERROR {e}"))
        if len(args.dir) > 1:
            print(flush=True)
    if len(args.dir) > 1 or args.compare is not None:
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

    t = sub.add_parser("trace", help="every named step and gradient of one pass, as `scalevec trace`",
                       description="Loads D/model.safetensors and D/batch.safetensors (written by "
                       "`scalevec trace --save-dir D`), runs one forward and backward pass recording "
                       "every named step and its gradient under scalevec's names, and prints them in "
                       "`scalevec trace`'s line format and order (diff the two outputs). --compare "
                       "compares every tensor with scalevec's trace: exit status 1 on any mismatch or "
                       "any name only one side has, 2 if a directory cannot be traced.")
    t.add_argument("--dir", required=True, action="append",
                   help="directory written by `scalevec trace --save-dir`; repeat it to trace "
                        "several in one process")
    t.add_argument("--compare", nargs="?", const="", metavar="FILE",
                   help="compare with scalevec's trace: FILE (one --dir only), or without FILE "
                        "each D/trace.safetensors")
    t.add_argument("--dump", metavar="FILE",
                   help="write this trace as safetensors (F64), like `scalevec trace --dump` (one "
                        "--dir only)")
    t.add_argument("--dtype", choices=["float32", "float64"], default="float64",
                   help="PyTorch's precision (default: %(default)s)")
    t.add_argument("--factor", type=float, default=64.0,
                   help="tolerance as a multiple of the unit roundoff of the less precise side "
                        "(default: %(default)s)")
    t.add_argument("--rtol", type=float, help="explicit relative tolerance (overrides --factor)")
    t.add_argument("--mutate", choices=sorted(MUTATIONS),
                   help="test only: compute with a deliberately wrong semantic (see check)")
    t.add_argument("--quiet", action="store_true", help="no trace lines, only the comparison")
    t.add_argument("--values", type=int, default=4,
                   help="values printed per tensor (default: %(default)s)")
    t.add_argument("--digits", type=int, default=6,
                   help="digits after the point of printed numbers (default: %(default)s)")

    args = p.parse_args(argv)
    if args.cmd == "bench" and (args.steps < 1 or args.warmup < 0 or args.threads < 1):
        p.error("bench needs --steps >= 1, --warmup >= 0, --threads >= 1")
    if args.cmd == "trace":
        if len(args.dir) > 1 and (args.dump or args.compare):
            p.error("trace: --dump FILE and --compare FILE take one --dir (--compare without FILE "
                    "compares each D/trace.safetensors)")
        if args.values < 0 or not 1 <= args.digits <= 17:
            p.error("trace needs --values >= 0 and --digits in [1, 17]")
    try:
        if args.cmd == "trace":
            return cmd_trace(args)
        return cmd_check(args) if args.cmd == "check" else cmd_bench(args)
    except (ValueError, KeyError, OSError) as e:
        print(f"torch_ref.py: error: {e}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
