#!/usr/bin/env python3
"""Reads a run's TensorBoard event files with the real `tensorboard` package and compares them with metrics.jsonl.

Checks, and exits 1 naming the first difference:
- every number of every metrics.jsonl row is a scalar of the same tag at the row's step, equal as float32
  (null in metrics.jsonl is NaN in TensorBoard), and TensorBoard has no scalar step that metrics.jsonl lacks;
- no step appears twice for a tag (a resumed run's redone steps replaced the earlier ones);
- the sample grids are PNG images with the size the event says; the configuration is a text tensor.

    python Scripts/checks/check_tensorboard.py RESULT_DIR [--tensorboard DIR] [--expect-images N]
"""
import argparse
import json
import math
import os
import struct
import sys

from tensorboard.backend.event_processing import event_accumulator


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("result_dir")
    ap.add_argument("--tensorboard", help="event directory (default RESULT_DIR/tensorboard)")
    ap.add_argument("--expect-images", type=int, default=1, help="at least this many images per sample tag")
    a = ap.parse_args()
    tb_dir = a.tensorboard or os.path.join(a.result_dir, "tensorboard")
    acc = event_accumulator.EventAccumulator(
        tb_dir, size_guidance={event_accumulator.SCALARS: 0, event_accumulator.IMAGES: 0, event_accumulator.TENSORS: 0})
    acc.Reload()
    tags = acc.Tags()
    fail = []

    rows = [json.loads(line) for line in open(os.path.join(a.result_dir, "metrics.jsonl")) if line.strip()]
    steps = [r["step"] for r in rows]
    if len(steps) != len(set(steps)):
        fail.append(f"metrics.jsonl repeats steps: {sorted(s for s in set(steps) if steps.count(s) > 1)}")
    expected = {}
    for r in rows:
        for k, v in r.items():
            if k == "step" or isinstance(v, str):
                continue
            expected.setdefault(k, {})[r["step"]] = float("nan") if v is None else float(v)
    compared = 0
    for tag, by_step in sorted(expected.items()):
        if tag not in tags["scalars"]:
            fail.append(f"scalar {tag} of metrics.jsonl is not in TensorBoard")
            continue
        events = acc.Scalars(tag)
        seen = [e.step for e in events]
        if len(seen) != len(set(seen)):
            fail.append(f"{tag}: TensorBoard holds a step twice: {seen}")
        got = {e.step: e.value for e in events}
        if set(got) != set(by_step):
            fail.append(f"{tag}: TensorBoard steps {sorted(got)} != metrics.jsonl steps {sorted(by_step)}")
            continue
        for s, want in by_step.items():
            w = struct.unpack("f", struct.pack("f", want))[0] if math.isfinite(want) else want
            v = got[s]
            same = (math.isnan(w) and math.isnan(v)) or w == v
            if not same:
                fail.append(f"{tag} step {s}: TensorBoard {v!r}, metrics.jsonl {want!r}")
            compared += 1
    extra = set(tags["scalars"]) - set(expected)
    if extra:
        fail.append(f"TensorBoard scalars not in metrics.jsonl: {sorted(extra)}")

    images = [t for t in tags["images"] if t.startswith("samples/")]
    for t in ("samples/A2B", "samples/B2A"):
        if t not in images:
            fail.append(f"no image tag {t} (have {images})")
    for t in images:
        ims = acc.Images(t)
        if len({im.step for im in ims}) != len(ims):
            fail.append(f"{t}: an image step appears twice: {[im.step for im in ims]}")
        if len(ims) < a.expect_images:
            fail.append(f"{t}: {len(ims)} images, expected at least {a.expect_images}")
        for im in ims:
            s = im.encoded_image_string
            if s[:8] != b"\x89PNG\r\n\x1a\n":
                fail.append(f"{t} step {im.step}: not a PNG")
            w, h = struct.unpack(">II", s[16:24])
            if (w, h) != (im.width, im.height):
                fail.append(f"{t} step {im.step}: PNG is {w}x{h}, the event says {im.width}x{im.height}")
    if "config" not in tags["tensors"]:
        fail.append(f"no text tensor 'config' (tensors: {tags['tensors']})")
    else:
        text = acc.Tensors("config")[-1].tensor_proto.string_val[0].decode()
        if '"iterations"' not in text:
            fail.append("the config text holds no configuration JSON")

    if fail:
        print("check_tensorboard: FAILED\n  " + "\n  ".join(fail))
        return 1
    print(f"check_tensorboard: ok: {compared} scalar values over {len(expected)} tags and {len(set(steps))} steps "
          f"equal metrics.jsonl; images {', '.join(f'{t} x{len(acc.Images(t))}' for t in images)}; config text present")
    return 0


if __name__ == "__main__":
    sys.exit(main())
