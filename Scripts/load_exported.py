#!/usr/bin/env python3
"""Load a generator exported by `face2webtoon export` into PyTorch and compare a translation with ours.

    face2webtoon export results/demo/checkpoints -o gen.safetensors
    face2webtoon translate --checkpoint results/demo/checkpoints --input face.png --output ours/
    python3 Scripts/load_exported.py gen.safetensors --image face.png --ours ours/face.png --img-size 64

The PyTorch network is the spec rendering in Scripts/golden/make_step_golden.py (official module structure and
state_dict keys); `load_state_dict(strict=True)` proves the keys and shapes are the official ones. The input goes
through the same test transform (PIL bilinear resize to S×S, [-1, 1]); the difference to our PNG is printed in
8-bit levels (ours is rounded to 8 bits). Needs torch, safetensors, pillow, numpy (never run-time dependencies).
"""
import argparse
import os
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "golden"))


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("weights", help="safetensors written by `face2webtoon export`")
    ap.add_argument("--image", required=True, help="input image")
    ap.add_argument("--ours", required=True, help="our translation of it (PNG from `face2webtoon translate`)")
    ap.add_argument("--img-size", type=int, required=True)
    ap.add_argument("--direction", default="genA2B", choices=["genA2B", "genB2A"])
    args = ap.parse_args()
    import numpy as np
    import torch
    from PIL import Image
    from safetensors.torch import load_file
    from make_step_golden import ResnetGenerator

    flat = load_file(args.weights)
    sd = {k[len(args.direction) + 1:]: v for k, v in flat.items() if k.startswith(args.direction + ".")}
    ch = sd["DownBlock.1.weight"].shape[0]
    blocks = sum(1 for k in sd if k.endswith(".conv1.weight") and k.startswith("UpBlock1_"))
    light = sd["FC.0.weight"].shape[1] == 4 * ch
    g = ResnetGenerator(ngf=ch, n_blocks=blocks, img_size=args.img_size, light=light)
    g.load_state_dict(sd, strict=True)
    g.eval()
    img = Image.open(args.image).convert("RGB").resize((args.img_size, args.img_size), Image.BILINEAR)
    x = torch.from_numpy(np.asarray(img, dtype=np.float32) / 127.5 - 1).permute(2, 0, 1)[None]
    with torch.no_grad():
        y = g(x)[0][0].permute(1, 2, 0).numpy()
    theirs = np.clip(np.round((y + 1) * 127.5), 0, 255)
    ours = np.asarray(Image.open(args.ours).convert("RGB"), dtype=np.float64)
    diff = np.abs(theirs - ours)
    print(f"{args.direction} ch {ch} blocks {blocks} {'light' if light else 'full'}: max |torch - ours| = {diff.max():.0f} "
          f"levels, mean {diff.mean():.4f}, pixels differing by more than 1 level: {(diff > 1).mean() * 100:.3f}%")
    return 0 if diff.max() <= 2 else 1


if __name__ == "__main__":
    sys.exit(main())
