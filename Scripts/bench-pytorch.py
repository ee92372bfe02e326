#!/usr/bin/env python3
"""Seconds per training step of the official UGATIT-pytorch trainer (znxlwm/UGATIT-pytorch, unedited), on CPU, for
comparison with `face2webtoon bench train` on the same network and machine:

    python Scripts/bench-pytorch.py --official /tmp/ugatit-pytorch --img-size 96 --ch 16 \
        --global-layers 7 --local-layers 5 --threads 1 --warmup-steps 1 --steps 4

prints key=value lines (pytorch_seconds_per_iter=... last). Needs torch, torchvision, pillow and
opencv-python-headless (the official utils.py imports cv2); the trainer itself is fetched, never committed
(`fetch github:znxlwm/UGATIT-pytorch`, then `git archive HEAD | tar -x -C /tmp/ugatit-pytorch`).

What runs: the official train() loop itself, with light True, batch 1, the given size, ch and discriminator
depths (the depth override is the one of Scripts/study/pytorch_reference.py), on 8 generated images per domain.
Its print_freq and save_freq are set past the last step, so no sample sheet or checkpoint falls in the timed
steps. The loop prints the seconds since its start after every step; a step's time is the difference between
two of those lines, so model building and the warm-up steps are not counted. Data loading (the official
DataLoader, no workers) is part of each step, as it is in the official trainer.
"""

import argparse
import os
import re
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent / 'study'))
import pytorch_reference  # noqa: E402  (import_official: the depth override and the torch >= 1.13 fix)

STEP_LINE = re.compile(r'^\[\s*(\d+)/\s*\d+\] time: ([0-9.]+)')


def parse_args():
    p = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    p.add_argument('--official', required=True, help='exported UGATIT-pytorch repository')
    p.add_argument('--img-size', type=int, default=96)
    p.add_argument('--ch', type=int, default=16)
    p.add_argument('--global-layers', type=int, default=7)
    p.add_argument('--local-layers', type=int, default=5)
    p.add_argument('--full', action='store_true', help='the full generator (light False)')
    p.add_argument('--threads', type=int, default=1)
    p.add_argument('--warmup-steps', type=int, default=1)
    p.add_argument('--steps', type=int, default=4)
    return p.parse_args()


def make_data(root, size):
    """8 random RGB images per domain folder, size+30 px as the trainer's Resize expects."""
    import numpy as np
    from PIL import Image
    rng = np.random.default_rng(0)
    for folder in ('trainA', 'trainB', 'testA', 'testB'):
        d = root / folder
        d.mkdir(parents=True, exist_ok=True)
        for i in range(8):
            Image.fromarray(rng.integers(0, 256, (size + 30, size + 30, 3), dtype=np.uint8)).save(d / f'{i}.png')


class StepTimes:
    """Captures the official loop's per-step lines from stdout: step -> seconds since the loop started."""

    def __init__(self, out):
        self.out, self.times, self.pending = out, {}, ''

    def write(self, text):
        self.pending += text
        *lines, self.pending = self.pending.split('\n')
        for line in lines:
            m = STEP_LINE.match(line)
            if m:
                self.times[int(m.group(1))] = float(m.group(2))
            else:
                self.out.write(line + '\n')

    def flush(self):
        self.out.flush()


def main():
    a = parse_args()
    os.environ['OMP_NUM_THREADS'] = os.environ['MKL_NUM_THREADS'] = str(a.threads)
    import torch
    torch.set_num_threads(a.threads)
    work = Path(tempfile.mkdtemp(prefix='bench-pytorch-'))
    make_data(work / 'dataset' / 'bench', a.img_size)
    ugatit_module, official_main = pytorch_reference.import_official(a)
    os.chdir(work)
    total = a.warmup_steps + a.steps
    sys.argv = ['main.py', '--phase', 'train', '--light', str(not a.full), '--dataset', 'bench', '--device', 'cpu',
                '--iteration', str(total), '--print_freq', str(total + 1), '--save_freq', str(total + 1),
                '--img_size', str(a.img_size), '--ch', str(a.ch), '--resume', 'False']
    args = official_main.parse_args()
    torch.manual_seed(0)
    gan = ugatit_module.UGATIT(args)
    gan.build_model()
    pytorch_reference.describe_discriminators(gan, torch)
    captured = StepTimes(sys.stdout)
    sys.stdout = captured
    try:
        gan.train()
    finally:
        sys.stdout = captured.out
    t = captured.times
    if a.warmup_steps not in t or total not in t:
        sys.exit(f'bench-pytorch: the official loop printed steps {sorted(t)}, expected up to {total}')
    seconds = (t[total] - t[a.warmup_steps]) / a.steps
    peak_mib = 0
    try:
        import resource
        peak_mib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    except ImportError:
        pass
    print(f'torch={torch.__version__}')
    print(f'threads={a.threads}')
    print(f'img_size={a.img_size} ch={a.ch} generator={"full" if a.full else "light"} '
          f'global_layers={a.global_layers} local_layers={a.local_layers} warmup_steps={a.warmup_steps} '
          f'steps={a.steps}')
    print('step_seconds=' + ','.join(f'{t[s] - t[s - 1]:.3f}' for s in range(a.warmup_steps + 1, total + 1)))
    print(f'peak_rss_mib={peak_mib:.1f}')
    print(f'pytorch_seconds_per_iter={seconds:.4f}')


if __name__ == '__main__':
    main()
