#!/usr/bin/env python3
"""Convert an official UGATIT-pytorch / Face2Webtoon checkpoint (.pt) into a safetensors file for
`face2webtoon import-torch`.

The .pt holds a dict {genA2B, genB2A, disGA, disGB, disLA, disLB} of state_dicts (spec B.5); the output has the
flattened keys `<net>.<key>` (e.g. `genA2B.DownBlock.1.weight`, `disGA.model.1.weight_u`) as float32.

    python3 -m pip install torch safetensors        # only for this conversion, never at run time
    python3 Scripts/torch_to_safetensors.py results/selfie2anime/model/selfie2anime_params_0100000.pt -o model.safetensors
    face2webtoon import-torch model.safetensors -o ckpt.safetensors
"""
import argparse
import sys

NETS = ("genA2B", "genB2A", "disGA", "disGB", "disLA", "disLB")


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("checkpoint", help="official .pt file (torch.save of the six state_dicts)")
    ap.add_argument("-o", "--output", required=True, help="safetensors file to write")
    args = ap.parse_args()
    import torch
    from safetensors.torch import save_file

    params = torch.load(args.checkpoint, map_location="cpu", weights_only=True)
    if not isinstance(params, dict) or "genA2B" not in params:
        print(f"{args.checkpoint}: expected a dict with keys {NETS}, got {type(params).__name__} "
              f"{list(params)[:6] if isinstance(params, dict) else ''}", file=sys.stderr)
        return 1
    flat = {}
    for net in NETS:
        if net not in params:
            print(f"warning: {net} missing from {args.checkpoint}", file=sys.stderr)
            continue
        for key, value in params[net].items():
            flat[f"{net}.{key}"] = value.detach().to(torch.float32).contiguous()
    save_file(flat, args.output, metadata={"source": args.checkpoint})
    print(f"wrote {len(flat)} tensors to {args.output}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
