#!/usr/bin/env python3
"""Generate the golden fixture files for the engine's primitive tests.

Run from the repository root:

    /tmp/torchenv/bin/python Scripts/golden/make_golden.py [--out DIR] [--case NAME]

Needs torch and safetensors (``pip install torch numpy safetensors``). PyTorch is
only a tool for making these files; it is never a dependency of the Swift package.

Each case writes ``<out>/<case>.safetensors`` (default out:
``Tests/EngineTests/Fixtures``). Conventions (the Swift tests rely on them):

- every tensor is float32 and contiguous; computation is float32 on CPU;
- inputs are stored under their names; ``y`` is the output, ``dy`` the upstream
  gradient (standard normal, shape of ``y``), the backward is ``y.backward(dy)``
  and input gradients are stored as ``grad_<input>``;
- loss cases: ``y`` is the scalar loss stored with shape [1], there is no ``dy``
  (backward of the scalar itself);
- ``mean_all`` / ``sum_all``: ``y`` and ``dy`` are both stored with shape [1]
  (dy is a random scalar, so the backward is scaled);
- non-tensor settings live in the metadata (string -> string), which always has
  ``case``, ``kind`` (op / loss / spectral_norm / optimizer), ``seed`` and
  ``torch_version``.

Determinism: one CPU thread, deterministic algorithms, a stable per-case seed
(crc32 of the case name) and a canonicalised safetensors header (the metadata
map is written by safetensors in random order, so the header is rewritten with
sorted keys). Re-running gives byte-identical files with the same torch build.
"""

import argparse
import json
import os
import struct
import sys
import zlib

import torch
import torch.nn as nn
import torch.nn.functional as F
from safetensors.torch import save_file, load_file

EPS_NORM = 1e-5
CASES = []  # (name, function) in registration order


def case(fn):
    CASES.append((fn.__name__, fn))
    return fn


def seed_for(name):
    return zlib.crc32(name.encode("utf-8")) & 0x7FFFFFFF


def leaf(t):
    """float32 contiguous leaf tensor requiring grad."""
    return t.detach().to(torch.float32).contiguous().clone().requires_grad_(True)


def run_op(out, inputs, fn, grad_inputs=None):
    """y = fn(**inputs); y.backward(dy); stores inputs, y, dy, grad_<name>."""
    grad_inputs = list(inputs) if grad_inputs is None else grad_inputs
    leaves = {k: (leaf(v) if k in grad_inputs else v.detach().float().contiguous())
              for k, v in inputs.items()}
    y = fn(**leaves)
    dy = torch.randn_like(y)
    y.backward(dy)
    for k, v in leaves.items():
        out[k] = v
    out["y"] = y
    out["dy"] = dy
    for k in grad_inputs:
        out["grad_" + k] = leaves[k].grad
    return out


def run_loss(out, inputs, fn, grad_inputs):
    """y = fn(**inputs) (a scalar); y.backward(); y stored as shape [1]."""
    leaves = {k: (leaf(v) if k in grad_inputs else v.detach().float().contiguous())
              for k, v in inputs.items()}
    y = fn(**leaves)
    assert y.dim() == 0
    y.backward()
    for k, v in leaves.items():
        out[k] = v
    out["y"] = y.reshape(1)
    for k in grad_inputs:
        out["grad_" + k] = leaves[k].grad
    return out


def conv_params(cin, cout, k, bias):
    # PyTorch default init (kaiming-uniform a=sqrt(5); bias U(-1/sqrt(fan_in), ..)).
    m = nn.Conv2d(cin, cout, k, bias=bias)
    return m.weight.detach().clone(), (m.bias.detach().clone() if bias else None)


def linear_params(fin, fout, bias):
    m = nn.Linear(fin, fout, bias=bias)
    return m.weight.detach().clone(), (m.bias.detach().clone() if bias else None)


def away_from_zero(x, tol=1e-3):
    """Moves entries with |x| < tol to +-0.5 (keeps the sign), so kinks are avoided."""
    small = x.abs() < tol
    return torch.where(small, torch.where(x < 0, -0.5, 0.5), x)


# ----------------------------------------------------------------------------- conv2d

def _conv_case(x_shape, cout, k, stride, padding, bias):
    meta = {"kind": "op", "stride": str(stride), "padding": str(padding),
            "bias": "true" if bias else "false"}
    w, b = conv_params(x_shape[1], cout, k, bias)
    x = torch.randn(*x_shape)
    inputs = {"x": x, "w": w}
    if bias:
        inputs["b"] = b
        fn = lambda x, w, b: F.conv2d(x, w, b, stride=stride, padding=padding)
    else:
        fn = lambda x, w: F.conv2d(x, w, None, stride=stride, padding=padding)
    return run_op({}, inputs, fn), meta


@case
def conv2d_k3_s1_p1_bias():
    # F.conv2d(x, w, b, stride=1, padding=1)
    return _conv_case((2, 3, 7, 6), 4, 3, 1, 1, True)


@case
def conv2d_k4_s2_p0_bias():
    # F.conv2d(x, w, b, stride=2, padding=0)
    return _conv_case((3, 2, 9, 8), 5, 4, 2, 0, True)


@case
def conv2d_k1_nobias():
    # F.conv2d(x, w, None, stride=1, padding=0)
    return _conv_case((1, 6, 5, 5), 3, 1, 1, 0, False)


@case
def conv2d_k7_s1_p3_nobias():
    # F.conv2d(x, w, None, stride=1, padding=3)
    return _conv_case((1, 3, 11, 10), 4, 7, 1, 3, False)


@case
def conv2d_k3_s2_p1_cin1():
    # F.conv2d(x, w, b, stride=2, padding=1)
    return _conv_case((2, 1, 8, 7), 3, 3, 2, 1, True)


# ----------------------------------------------------------------------------- padding

def _reflect_case(x_shape, p):
    x = torch.randn(*x_shape)
    fn = lambda x: F.pad(x, (p, p, p, p), mode="reflect")
    return run_op({}, {"x": x}, fn), {"kind": "op", "padding": str(p)}


@case
def reflection_pad_p1():
    # F.pad(x, (1, 1, 1, 1), mode='reflect')
    return _reflect_case((2, 3, 5, 4), 1)


@case
def reflection_pad_p3():
    # F.pad(x, (3, 3, 3, 3), mode='reflect')
    return _reflect_case((1, 2, 5, 6), 3)


# ----------------------------------------------------------------------------- linear

@case
def linear_bias():
    # F.linear(x, w, b)
    w, b = linear_params(5, 4, True)
    x = torch.randn(3, 5)
    out = run_op({}, {"x": x, "w": w, "b": b}, lambda x, w, b: F.linear(x, w, b))
    return out, {"kind": "op", "bias": "true"}


@case
def linear_nobias():
    # F.linear(x, w)
    w, _ = linear_params(6, 2, False)
    x = torch.randn(1, 6)
    out = run_op({}, {"x": x, "w": w}, lambda x, w: F.linear(x, w))
    return out, {"kind": "op", "bias": "false"}


# ----------------------------------------------------------------------------- activations

@case
def relu():
    # F.relu(x)
    x = away_from_zero(torch.randn(2, 3, 4, 5))
    return run_op({}, {"x": x}, lambda x: F.relu(x)), {"kind": "op"}


@case
def leaky_relu():
    # F.leaky_relu(x, negative_slope=0.2)
    x = away_from_zero(torch.randn(2, 3, 4, 5))
    out = run_op({}, {"x": x}, lambda x: F.leaky_relu(x, negative_slope=0.2))
    return out, {"kind": "op", "slope": "0.2"}


@case
def tanh():
    # torch.tanh(x)
    x = torch.randn(2, 3, 4, 5)
    return run_op({}, {"x": x}, lambda x: torch.tanh(x)), {"kind": "op"}


@case
def sigmoid():
    # torch.sigmoid(x)
    x = torch.randn(2, 3, 4, 5)
    return run_op({}, {"x": x}, lambda x: torch.sigmoid(x)), {"kind": "op"}


# ----------------------------------------------------------------------------- resampling / pooling

@case
def upsample_nearest2x():
    # F.interpolate(x, scale_factor=2, mode='nearest')
    x = torch.randn(2, 3, 3, 5)
    fn = lambda x: F.interpolate(x, scale_factor=2, mode="nearest")
    return run_op({}, {"x": x}, fn), {"kind": "op", "scale": "2"}


@case
def global_avg_pool():
    # F.adaptive_avg_pool2d(x, 1).view(N, C)
    x = torch.randn(2, 3, 5, 4)
    fn = lambda x: F.adaptive_avg_pool2d(x, 1).view(2, 3)
    return run_op({}, {"x": x}, fn), {"kind": "op"}


@case
def global_max_pool():
    # F.adaptive_max_pool2d(x, 1).view(N, C)
    x = torch.randn(2, 3, 5, 4)
    # the max of each (n, c) plane must be unique (no ties)
    flat = x.view(2, 3, -1).sort(dim=2, descending=True).values
    assert bool((flat[..., 0] - flat[..., 1] > 1e-4).all())
    fn = lambda x: F.adaptive_max_pool2d(x, 1).view(2, 3)
    return run_op({}, {"x": x}, fn), {"kind": "op"}


# ----------------------------------------------------------------------------- elementwise / concat

@case
def concat_channels():
    # torch.cat([a, b], dim=1)
    a = torch.randn(2, 3, 4, 4)
    b = torch.randn(2, 2, 4, 4)
    out = run_op({}, {"a": a, "b": b}, lambda a, b: torch.cat([a, b], 1))
    return out, {"kind": "op", "dim": "1"}


@case
def mul_broadcast():
    # x * w  (w: [1, C, 1, 1])
    x = torch.randn(2, 3, 4, 5)
    w = torch.randn(1, 3, 1, 1)
    return run_op({}, {"x": x, "w": w}, lambda x, w: x * w), {"kind": "op"}


@case
def add_broadcast():
    # x + b  (b: [N, C, 1, 1])
    x = torch.randn(2, 3, 4, 5)
    b = torch.randn(2, 3, 1, 1)
    return run_op({}, {"x": x, "b": b}, lambda x, b: x + b), {"kind": "op"}


# ----------------------------------------------------------------------------- normalisation

def _norm(x, dims, unbiased):
    mean = torch.mean(x, dim=dims, keepdim=True)
    var = torch.var(x, dim=dims, keepdim=True, unbiased=unbiased)
    return (x - mean) / torch.sqrt(var + EPS_NORM)


@case
def instance_norm_biased():
    # F.instance_norm(x, eps=1e-5)
    x = torch.randn(2, 3, 5, 4)
    out = run_op({}, {"x": x}, lambda x: F.instance_norm(x, eps=EPS_NORM))
    return out, {"kind": "op", "eps": "1e-05", "unbiased": "false", "dims": "2,3"}


@case
def instance_norm_unbiased():
    # (x - x.mean([2,3])) / torch.sqrt(torch.var(x, [2,3]) + 1e-5)
    x = torch.randn(2, 3, 5, 4)
    out = run_op({}, {"x": x}, lambda x: _norm(x, [2, 3], True))
    return out, {"kind": "op", "eps": "1e-05", "unbiased": "true", "dims": "2,3"}


@case
def layer_norm_biased():
    # F.layer_norm(x, x.shape[1:], eps=1e-5)  (no affine)
    x = torch.randn(2, 3, 5, 4)
    out = run_op({}, {"x": x}, lambda x: F.layer_norm(x, x.shape[1:], eps=EPS_NORM))
    return out, {"kind": "op", "eps": "1e-05", "unbiased": "false", "dims": "1,2,3"}


@case
def layer_norm_unbiased():
    # (x - x.mean([1,2,3])) / torch.sqrt(torch.var(x, [1,2,3]) + 1e-5)
    x = torch.randn(2, 3, 5, 4)
    out = run_op({}, {"x": x}, lambda x: _norm(x, [1, 2, 3], True))
    return out, {"kind": "op", "eps": "1e-05", "unbiased": "true", "dims": "1,2,3"}


def _iln_mix(x, rho):
    # exactly the U-GAT-IT ILN/adaILN body (torch.var default = unbiased)
    in_mean, in_var = torch.mean(x, dim=[2, 3], keepdim=True), torch.var(x, dim=[2, 3], keepdim=True)
    out_in = (x - in_mean) / torch.sqrt(in_var + EPS_NORM)
    ln_mean, ln_var = torch.mean(x, dim=[1, 2, 3], keepdim=True), torch.var(x, dim=[1, 2, 3], keepdim=True)
    out_ln = (x - ln_mean) / torch.sqrt(ln_var + EPS_NORM)
    r = rho.expand(x.shape[0], -1, -1, -1)
    return r * out_in + (1 - r) * out_ln


@case
def iln():
    # ILN: (rho*x_in + (1-rho)*x_ln) * gamma + beta, unbiased torch.var, eps 1e-5
    x = torch.randn(2, 3, 5, 4)
    rho = torch.rand(1, 3, 1, 1)
    gamma = torch.randn(1, 3, 1, 1) * 0.5 + 1
    beta = torch.randn(1, 3, 1, 1)

    def fn(x, rho, gamma, beta):
        out = _iln_mix(x, rho)
        n = x.shape[0]
        return out * gamma.expand(n, -1, -1, -1) + beta.expand(n, -1, -1, -1)

    out = run_op({}, {"x": x, "rho": rho, "gamma": gamma, "beta": beta}, fn)
    return out, {"kind": "op", "eps": "1e-05", "unbiased": "true"}


@case
def adailn():
    # adaILN: (rho*x_in + (1-rho)*x_ln) * gamma[b,c] + beta[b,c], unbiased torch.var, eps 1e-5
    x = torch.randn(2, 3, 5, 4)
    rho = torch.rand(1, 3, 1, 1)
    gamma = torch.randn(2, 3)
    beta = torch.randn(2, 3)

    def fn(x, rho, gamma, beta):
        out = _iln_mix(x, rho)
        return out * gamma.unsqueeze(2).unsqueeze(3) + beta.unsqueeze(2).unsqueeze(3)

    out = run_op({}, {"x": x, "rho": rho, "gamma": gamma, "beta": beta}, fn)
    return out, {"kind": "op", "eps": "1e-05", "unbiased": "true"}


# ----------------------------------------------------------------------------- spectral norm

def _spectral_case(w_shape, make_module):
    SN_EPS = 1e-12
    w_orig = torch.randn(*w_shape)
    rows = w_shape[0]
    cols = w_orig[0].numel()
    u = F.normalize(torch.randn(rows), dim=0, eps=SN_EPS)
    v = F.normalize(torch.randn(cols), dim=0, eps=SN_EPS)

    # our replica of the training-mode forward (1 power iteration)
    w = leaf(w_orig)
    w_mat = w.reshape(rows, -1)
    with torch.no_grad():
        v_new = F.normalize(torch.mv(w_mat.t(), u), dim=0, eps=SN_EPS)
        u_new = F.normalize(torch.mv(w_mat, v_new), dim=0, eps=SN_EPS)
    sigma = torch.dot(u_new, torch.mv(w_mat, v_new))  # depends on w (u, v constants)
    y = w / sigma
    dy = torch.randn_like(y)
    y.backward(dy)

    # the real module, same weight_orig/u/v
    m = nn.utils.spectral_norm(make_module(), n_power_iterations=1, eps=SN_EPS)
    m.train()
    with torch.no_grad():
        m.weight_orig.copy_(w_orig)
        m.weight_u.copy_(u)
        m.weight_v.copy_(v)
    x = torch.randn(1, *make_input_shape(m))
    m(x)  # forward pre-hook runs the power iteration and sets m.weight
    m.weight.backward(dy)
    assert torch.equal(m.weight.detach(), y.detach()), "spectral norm y mismatch"
    assert torch.equal(m.weight_u, u_new) and torch.equal(m.weight_v, v_new), "u/v mismatch"
    assert torch.allclose(m.weight_orig.grad, w.grad, rtol=1e-6, atol=1e-7), "grad mismatch"

    out = {"w_orig": w_orig, "u": u, "v": v, "y": y, "u_new": u_new, "v_new": v_new,
           "sigma": sigma.reshape(1), "dy": dy, "grad_w_orig": w.grad}
    meta = {"kind": "spectral_norm", "n_power_iterations": "1", "eps": "1e-12", "dim": "0"}
    return out, meta


def make_input_shape(m):
    if isinstance(m, nn.Conv2d):
        return (m.in_channels, 4, 4)
    return (m.in_features,)


@case
def spectral_norm_conv():
    # nn.utils.spectral_norm(nn.Conv2d(3, 4, 2)) training forward: weight_orig / sigma
    return _spectral_case((4, 3, 2, 2), lambda: nn.Conv2d(3, 4, 2))


@case
def spectral_norm_linear():
    # nn.utils.spectral_norm(nn.Linear(6, 1, bias=False)) training forward: weight_orig / sigma
    return _spectral_case((1, 6), lambda: nn.Linear(6, 1, bias=False))


# ----------------------------------------------------------------------------- losses

@case
def mse():
    # F.mse_loss(x, target)  (mean)
    x = torch.randn(2, 1, 3, 3)
    t = torch.randn(2, 1, 3, 3)
    out = run_loss({}, {"x": x, "target": t}, lambda x, target: F.mse_loss(x, target), ["x"])
    return out, {"kind": "loss", "reduction": "mean"}


@case
def l1():
    # F.l1_loss(x, target)  (mean)
    x = torch.randn(2, 3, 4, 4)
    t = torch.randn(2, 3, 4, 4)
    d = x - t
    x = t + away_from_zero(d)  # no |x - target| < 1e-3 (kink of |.|)
    out = run_loss({}, {"x": x, "target": t}, lambda x, target: F.l1_loss(x, target), ["x"])
    assert bool(((out["x"] - out["target"]).abs() >= 1e-3).all())
    return out, {"kind": "loss", "reduction": "mean"}


@case
def bce_with_logits():
    # F.binary_cross_entropy_with_logits(x, target)  (mean)
    x = torch.randn(2, 2)
    t = torch.tensor([[1.0, 0.0], [0.0, 1.0]])
    fn = lambda x, target: F.binary_cross_entropy_with_logits(x, target)
    return run_loss({}, {"x": x, "target": t}, fn, ["x"]), {"kind": "loss", "reduction": "mean"}


@case
def cross_entropy():
    # F.cross_entropy(logits, labels)  (mean; labels stored as float32 class indices)
    logits = torch.randn(3, 4)
    labels = torch.tensor([2.0, 0.0, 3.0])
    fn = lambda logits, labels: F.cross_entropy(logits, labels.long())
    out = run_loss({}, {"logits": logits, "labels": labels}, fn, ["logits"])
    return out, {"kind": "loss", "reduction": "mean", "labels_dtype": "float32 class indices"}


@case
def mean_all():
    # x.mean()  (y, dy stored as [1])
    x = leaf(torch.randn(2, 3, 4))
    y = x.mean()
    dy = torch.randn(())
    y.backward(dy)
    return {"x": x, "y": y.reshape(1), "dy": dy.reshape(1), "grad_x": x.grad}, {"kind": "op"}


@case
def sum_all():
    # x.sum()  (y, dy stored as [1])
    x = leaf(torch.randn(2, 3, 4))
    y = x.sum()
    dy = torch.randn(())
    y.backward(dy)
    return {"x": x, "y": y.reshape(1), "dy": dy.reshape(1), "grad_x": x.grad}, {"kind": "op"}


# ----------------------------------------------------------------------------- grid sample

def _grid_case(padding_mode):
    x = torch.randn(2, 3, 6, 5)
    grid = torch.rand(2, 4, 7, 2) * 2.4 - 1.2
    fn = lambda x, grid: F.grid_sample(x, grid, mode="bilinear", padding_mode=padding_mode,
                                       align_corners=False)
    out = run_op({}, {"x": x, "grid": grid}, fn, grad_inputs=["x"])
    meta = {"kind": "op", "mode": "bilinear", "padding_mode": padding_mode,
            "align_corners": "false"}
    return out, meta


@case
def grid_sample_zeros():
    # F.grid_sample(x, grid, mode='bilinear', padding_mode='zeros', align_corners=False)
    return _grid_case("zeros")


@case
def grid_sample_reflection():
    # F.grid_sample(x, grid, mode='bilinear', padding_mode='reflection', align_corners=False)
    return _grid_case("reflection")


# ----------------------------------------------------------------------------- Adam

def _adam_meta(lr, betas, eps, wd, skips):
    return {"kind": "optimizer", "optimizer": "Adam", "lr": repr(lr), "beta1": repr(betas[0]),
            "beta2": repr(betas[1]), "eps": repr(eps), "weight_decay": repr(wd), "steps": "10",
            "skip_p2_steps": skips, "implementation": "single-tensor (foreach=False)"}


@case
def adam():
    # torch.optim.Adam([p, p2], lr=1e-2, betas=(0.5, 0.999), eps=1e-8, weight_decay=1e-4).step()
    steps, skips = 10, (3, 6)
    lr, betas, eps, wd = 1e-2, (0.5, 0.999), 1e-8, 1e-4
    p_init = torch.randn(5, 4)
    p2_init = torch.randn(3)
    grads_p = torch.randn(steps, 5, 4)
    grads_p2 = torch.randn(steps, 3)
    for t in skips:
        grads_p2[t].zero_()
    p = p_init.clone().requires_grad_(True)
    p2 = p2_init.clone().requires_grad_(True)
    opt = torch.optim.Adam([p, p2], lr=lr, betas=betas, eps=eps, weight_decay=wd, foreach=False)
    p_after, p2_after = [], []
    for t in range(steps):
        p.grad = grads_p[t].clone()
        p2.grad = None if t in skips else grads_p2[t].clone()
        opt.step()
        p_after.append(p.detach().clone())
        p2_after.append(p2.detach().clone())
    assert torch.equal(p2_after[3], p2_after[2]) and torch.equal(p2_after[6], p2_after[5])
    assert int(opt.state[p2]["step"]) == steps - len(skips)
    out = {"p_init": p_init, "p2_init": p2_init, "grads_p": grads_p, "grads_p2": grads_p2,
           "p_after": torch.stack(p_after), "p2_after": torch.stack(p2_after)}
    return out, _adam_meta(lr, betas, eps, wd, "3,6")


@case
def adam_defaults_lr():
    # torch.optim.Adam([q], lr=1e-4, betas=(0.5, 0.999), eps=1e-8, weight_decay=1e-4).step()
    steps = 10
    lr, betas, eps, wd = 1e-4, (0.5, 0.999), 1e-8, 1e-4
    q_init = torch.randn(4, 4)
    grads_q = torch.randn(steps, 4, 4)
    q = q_init.clone().requires_grad_(True)
    opt = torch.optim.Adam([q], lr=lr, betas=betas, eps=eps, weight_decay=wd, foreach=False)
    q_after = []
    for t in range(steps):
        q.grad = grads_q[t].clone()
        opt.step()
        q_after.append(q.detach().clone())
    out = {"q_init": q_init, "grads_q": grads_q, "q_after": torch.stack(q_after)}
    meta = _adam_meta(lr, betas, eps, wd, "")
    del meta["skip_p2_steps"]
    return out, meta


# ----------------------------------------------------------------------------- writing

def canonicalise_header(path):
    """Rewrites the safetensors JSON header with sorted keys (data bytes unchanged).

    safetensors serialises the metadata map in hash order, which differs between
    processes; sorting makes the files byte-reproducible.
    """
    with open(path, "rb") as f:
        blob = f.read()
    (n,) = struct.unpack("<Q", blob[:8])
    header = json.loads(blob[8:8 + n])
    data = blob[8 + n:]
    meta = header.pop("__metadata__", None)
    ordered = {}
    if meta is not None:
        ordered["__metadata__"] = {k: meta[k] for k in sorted(meta)}
    for k in sorted(header, key=lambda k: (header[k]["data_offsets"][0], k)):
        ordered[k] = header[k]
    text = json.dumps(ordered, separators=(",", ":"), ensure_ascii=True).encode("utf-8")
    text += b" " * ((-len(text)) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(text)) + text + data)


def write_case(name, fn, out_dir):
    seed = seed_for(name)
    torch.manual_seed(seed)
    tensors, meta = fn()
    stored = {}
    for k, v in tensors.items():
        assert v is not None, f"{name}: {k} is None"
        stored[k] = v.detach().to(torch.float32).contiguous().clone()
    metadata = {"case": name, "seed": str(seed), "torch_version": torch.__version__}
    metadata.update({k: str(v) for k, v in meta.items()})
    path = os.path.join(out_dir, name + ".safetensors")
    save_file(stored, path, metadata=metadata)
    canonicalise_header(path)
    back = load_file(path)
    assert set(back) == set(stored)
    for k in stored:
        assert back[k].dtype == torch.float32 and torch.equal(back[k], stored[k]), (name, k)
    shapes = " ".join(f"{k}{list(stored[k].shape)}" for k in sorted(stored))
    print(f"{name}: {os.path.getsize(path)} B  {shapes}")


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    root = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    ap.add_argument("--out", default=os.path.join(root, "Tests", "EngineTests", "Fixtures"))
    ap.add_argument("--case", default=None, help="only write the case with this name")
    args = ap.parse_args(argv)

    torch.set_num_threads(1)
    torch.use_deterministic_algorithms(True)
    torch.set_default_dtype(torch.float32)
    os.makedirs(args.out, exist_ok=True)

    selected = [(n, f) for n, f in CASES if args.case is None or n == args.case]
    if not selected:
        sys.exit(f"unknown case {args.case!r}; known: {', '.join(n for n, _ in CASES)}")
    for name, fn in selected:
        write_case(name, fn, args.out)


if __name__ == "__main__":
    main()
