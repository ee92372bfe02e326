#!/usr/bin/env python3
"""Reference run for the convergence study: the official UGATIT-pytorch trainer (znxlwm/UGATIT-pytorch), unedited,
driven in-process, resumable, with its KID measured by our `face2webtoon kid` every --kid-every iterations.

    python pytorch_reference.py --official /tmp/ugatit-pytorch --data DATA --out RUN \
        --face2webtoon .build/release/face2webtoon [--kid-weights W]     # train (run it again to resume)
    python pytorch_reference.py --out RUN --data DATA --face2webtoon BIN --kid-only   # fill kid.csv afterwards

Needs torch, torchvision and opencv-python-headless (the official utils.py draws its sample sheets with cv2).

What is changed at run time, without touching the official files:
  * Discriminator depths: UGATIT.build_model hard-codes n_layers 7 (disGA/disGB) and 5 (disLA/disLB); the name
    Discriminator in the UGATIT module is replaced by a function mapping 7 -> --global-layers, 5 -> --local-layers.
  * The loop calls `DataLoader_iter.next()`, which torch >= 1.13 no longer has (its bare `except:` then fails on
    the retry); `next` is aliased to `__next__`.
  * Resume: the official --resume reloads the newest model/*_params_N.pt but not the Adam moments, restarts its
    loop at step N (training step N twice and saving it again) and sets the learning rate one decay step too low.
    Here the optimizer states are saved beside each checkpoint and restored, train() is shown the newest file under
    the name of step N+1 so that its loop continues with N+1, and the learning rate is set so that every step gets
    the rate of the uninterrupted run. What remains different from an uninterrupted run: the data order restarts.
  * Checkpoints are written to a temporary folder and renamed, so a kill never leaves a half-written newest file.

Everything else is the official trainer with its defaults (Adam 0.5/0.999, weight decay 1e-4, adv 1, cycle 10,
identity 10, CAM 1000, n_res 4, batch 1, lr 1e-4, decay_flag True: linear to 0 over the second half), with
light True, the given img_size/ch/iteration, print_freq = save_freq = --kid-every, device cpu.
"""

import argparse
import csv
import glob
import json
import os
import re
import signal
import subprocess
import sys
import time
import types
from pathlib import Path

DATASET = 'study'            # the official trainer reads dataset/<DATASET>/{trainA,...} and names files after it
KID_COLUMNS = ['run', 'step', 'images_seen', 'elapsed_seconds', 'kid', 'kid_std']
PARAMS = re.compile(r'_params_(\d+)\.pt$')
ITER_DIR = re.compile(r'^iter_(\d+)$')
_kid_child = None            # the running KID process, killed with us on SIGTERM/SIGINT


def parse_args():
    p = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    p.add_argument('--official', help='exported UGATIT-pytorch repository (not needed with --kid-only)')
    p.add_argument('--data', required=True, help='folder with trainA, trainB, testA, testB')
    p.add_argument('--out', required=True, help='run folder (created; holds state.json, kid.csv, translations/)')
    p.add_argument('--iterations', type=int, default=20000)
    p.add_argument('--kid-every', type=int, default=2000, help='iterations between checkpoints, translations and KID')
    p.add_argument('--threads', type=int, default=1)
    p.add_argument('--seed', type=int, default=0)
    p.add_argument('--img-size', type=int, default=64)
    p.add_argument('--ch', type=int, default=16)
    p.add_argument('--global-layers', type=int, default=5)
    p.add_argument('--local-layers', type=int, default=3)
    p.add_argument('--face2webtoon', help='our binary, for `kid`; without it KID is skipped (use --kid-only later)')
    p.add_argument('--kid-weights', help='FID Inception-v3 weights, passed to `kid --weights`')
    p.add_argument('--run-name', default='pytorch', help='the run column of kid.csv')
    p.add_argument('--kid-only', action='store_true', help='only fill kid.csv for translations/iter_N not in it')
    a = p.parse_args()
    if a.iterations % a.kid_every:
        p.error('--iterations must be a multiple of --kid-every (the official trainer saves only at multiples)')
    if not a.kid_only and not a.official:
        p.error('--official is required for training')
    return a


# ---------------------------------------------------------------- state, KID

def write_json(path, obj):
    tmp = path.with_suffix('.tmp')
    tmp.write_text(json.dumps(obj, indent=1))
    os.replace(tmp, path)


def load_state(out):
    path = out / 'state.json'
    return json.loads(path.read_text()) if path.exists() else {'elapsed_seconds': {}, 'intervals': []}


def kid_steps(out):
    path = out / 'kid.csv'
    if not path.exists():
        return set()
    with path.open() as f:
        return {int(r['step']) for r in csv.DictReader(f)}


def run_kid(a, fake_dir):
    """(kid, kid_std) of fake_dir against DATA/testB, or None with the reason printed."""
    global _kid_child
    if not a.face2webtoon or not os.access(a.face2webtoon, os.X_OK):
        print(f'[ref] KID skipped for {fake_dir.name}: no face2webtoon binary ({a.face2webtoon}); run --kid-only later')
        return None
    # --image-size: testB is resized to the training size first, as `train --kid-every` does, so that both sets
    # have the generator's resolution and the numbers compare with our trainer's metrics.jsonl.
    cmd = [a.face2webtoon, 'kid', '--real', str(Path(a.data) / 'testB'), '--fake', str(fake_dir),
           '--subset-size', '50', '--subsets', '10', '--image-size', str(a.img_size), '--threads', str(a.threads)]
    if a.kid_weights:
        cmd += ['--weights', a.kid_weights]
    _kid_child = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    text = _kid_child.communicate()[0]
    rc, _kid_child = _kid_child.returncode, None
    values = dict(line.split('=', 1) for line in text.splitlines() if '=' in line)
    if rc != 0 or 'kid' not in values:
        print(f'[ref] KID failed for {fake_dir.name} (rc {rc}):\n{text[-2000:]}')
        return None
    return float(values['kid']), float(values['kid_std'])


def fill_kid(a, out):
    """Appends a kid.csv row for every finished translations/iter_N that has none yet."""
    state, done = load_state(out), kid_steps(out)
    folders = [(int(m.group(1)), d) for d in (out / 'translations').glob('iter_*') if (m := ITER_DIR.match(d.name))]
    for step, folder in sorted(folders):
        if step in done:
            continue
        elapsed = state['elapsed_seconds'].get(str(step))
        if elapsed is None:
            print(f'[ref] {folder.name}: no training time recorded in state.json; skipped')
            continue
        r = run_kid(a, folder)
        if r is None:
            continue
        path = out / 'kid.csv'
        new = not path.exists()
        with path.open('a', newline='') as f:
            w = csv.writer(f)
            if new:
                w.writerow(KID_COLUMNS)
            w.writerow([a.run_name, step, step, f'{elapsed:.3f}', f'{r[0]:.8f}', f'{r[1]:.8f}'])
        print(f'[ref] step {step}: KID {r[0]:.5f} ± {r[1]:.5f} (training {elapsed / 3600:.3f} h)')


def on_signal(signum, _frame):
    # Exit at once: the official loop wraps data loading in bare `except:`, which would swallow SystemExit.
    # Checkpoints, state.json and translation folders are all written by rename, so nothing is left half-done.
    if _kid_child is not None:
        _kid_child.kill()
    print(f'[ref] signal {signum}: stopping; run the same command again to resume', flush=True)
    os._exit(128 + signum)


# ---------------------------------------------------------------- training

class Clock:
    """Training seconds: base (earlier runs) + wall time since start, less the time spent in `pause` blocks."""

    def __init__(self, base):
        self.base, self.start, self.excluded = base, time.monotonic(), 0.0

    def elapsed(self):
        return self.base + time.monotonic() - self.start - self.excluded

    def pause(self):
        clock = self

        class Pause:
            def __enter__(self):
                self.t = time.monotonic()

            def __exit__(self, *_):
                clock.excluded += time.monotonic() - self.t
        return Pause()


def import_official(a):
    sys.path.insert(0, str(Path(a.official).resolve()))
    try:
        import scipy.misc  # noqa: F401
    except ImportError:
        # utils.py does `from scipy import misc` for helpers the trainer never calls; recent SciPy has no misc.
        scipy = sys.modules.setdefault('scipy', types.ModuleType('scipy'))
        scipy.misc = sys.modules['scipy.misc'] = types.ModuleType('scipy.misc')
    from torch.utils.data import dataloader
    if not hasattr(dataloader._BaseDataLoaderIter, 'next'):
        dataloader._BaseDataLoaderIter.next = dataloader._BaseDataLoaderIter.__next__
    import UGATIT as ugatit_module
    import main as official_main

    def newest_as_next(pattern):
        # train() resumes at the step in the newest file's name and trains that step again: name the step after it.
        steps = sorted(int(m.group(1)) for f in glob.glob(pattern) if (m := PARAMS.search(f)))
        return [os.path.join(os.path.dirname(pattern), f'{DATASET}_params_{steps[-1] + 1:07d}.pt')] if steps else []
    ugatit_module.glob = newest_as_next
    depth = {7: a.global_layers, 5: a.local_layers}
    official_discriminator = ugatit_module.Discriminator

    def discriminator(input_nc, ndf, n_layers):
        return official_discriminator(input_nc=input_nc, ndf=ndf, n_layers=depth[n_layers])
    ugatit_module.Discriminator = discriminator
    return ugatit_module, official_main


def describe_discriminators(gan, torch):
    for name in ('disGA', 'disGB', 'disLA', 'disLB'):
        d = getattr(gan, name)
        convs = sum(isinstance(m, torch.nn.Conv2d) for m in d.model.modules())
        params = sum(p.numel() for p in d.parameters())
        print(f'[ref] {name}: depth {convs + 1} ({convs} trunk convs + head), {params} parameters')


def train(a, out):
    model_dir = out / 'results' / DATASET / 'model'
    saved = sorted(int(m.group(1)) for f in model_dir.glob('*.pt') if (m := PARAMS.search(f.name)))
    start = saved[-1] if saved else 0
    state = load_state(out)
    config = {k: getattr(a, k) for k in ('iterations', 'kid_every', 'seed', 'img_size', 'ch', 'global_layers',
                                         'local_layers')}
    if state.setdefault('config', config) != config:
        sys.exit(f'[ref] {out} was started with {state["config"]}, not {config}')
    if start and str(start) not in state['elapsed_seconds']:
        sys.exit(f'[ref] state.json has no training time for the checkpoint at step {start}')

    os.environ['OMP_NUM_THREADS'] = str(a.threads)
    import numpy as np
    import torch
    from PIL import Image
    torch.set_num_threads(a.threads)
    ugatit_module, official_main = import_official(a)

    # The official trainer works relative to its working directory: dataset/<name>/ and results/.
    os.chdir(out)
    link = Path('dataset') / DATASET
    link.parent.mkdir(exist_ok=True)
    if not link.is_symlink():
        link.symlink_to(Path(a.data).resolve(), target_is_directory=True)
    sys.argv = ['main.py', '--phase', 'train', '--light', 'True', '--dataset', DATASET, '--device', 'cpu',
                '--iteration', str(a.iterations), '--print_freq', str(a.kid_every), '--save_freq', str(a.kid_every),
                '--decay_flag', 'True', '--img_size', str(a.img_size), '--ch', str(a.ch), '--resume', 'True']
    args = official_main.parse_args()   # the official defaults for everything not given above

    # A resumed run gets its own seed: the data order restarts there anyway, better not replay the first chunk's.
    torch.manual_seed(a.seed + start)
    np.random.seed(a.seed + start)
    gan = ugatit_module.UGATIT(args)
    gan.build_model()
    describe_discriminators(gan, torch)

    optim_dir, trans_dir = out / 'optim', out / 'translations'
    optim_dir.mkdir(exist_ok=True)
    trans_dir.mkdir(exist_ok=True)
    clock = Clock(state['elapsed_seconds'].get(str(start), 0.0))
    last = {'step': start, 'elapsed': clock.base}

    def translate(step):
        """genA2B(testA) as the official test() feeds it (Resize, ToTensor, Normalize 0.5) to 8-bit PNGs."""
        final = trans_dir / f'iter_{step}'
        if final.exists():
            return
        tmp = trans_dir / f'.iter_{step}.partial'
        tmp.mkdir(exist_ok=True)
        gan.genA2B.eval()
        with torch.no_grad():
            for i, (path, _) in enumerate(gan.testA.samples):
                y = gan.genA2B(gan.testA[i][0].unsqueeze(0))[0][0]
                # (y + 1) * 127.5 rounded half up, as our trainer's ImageTransforms.toImage does
                px = np.clip(np.floor((y.permute(1, 2, 0).numpy() + 1) * 127.5 + 0.5), 0, 255).astype(np.uint8)
                Image.fromarray(px).save(tmp / (Path(path).stem + '.png'))
        gan.genA2B.train()
        os.replace(tmp, final)

    official_load, official_save = gan.load, gan.save

    def load(dir, next_step):
        step = next_step - 1   # see newest_as_next
        with clock.pause():
            official_load(dir, step)
            opt = torch.load(optim_dir / f'optim_{step:07d}.pt')
            gan.G_optim.load_state_dict(opt['G'])
            gan.D_optim.load_state_dict(opt['D'])
            # train() then lowers the initial lr by the decay up to next_step, and its loop lowers it once more at
            # next_step: start one decrement higher so that next_step gets the uninterrupted run's rate.
            half = gan.iteration // 2
            lr = gan.lr + (gan.lr / half if gan.decay_flag and next_step > half else 0.0)
            for o in (gan.G_optim, gan.D_optim):
                o.param_groups[0]['lr'] = lr
            translate(step)   # in case the previous run was killed while translating
            fill_kid(a, out)
        print(f'[ref] resumed after step {step} with {clock.base / 3600:.3f} h of training so far')

    def save(dir, step):
        elapsed = clock.elapsed()
        with clock.pause():
            # official_save writes <dataset>_params_N.pt into the folder it is given: write to a temporary folder,
            # then rename into model/ (the newest file there is the resume point, so it goes last).
            torch.save({'G': gan.G_optim.state_dict(), 'D': gan.D_optim.state_dict()}, optim_dir / 'partial.pt')
            os.replace(optim_dir / 'partial.pt', optim_dir / f'optim_{step:07d}.pt')
            iters = step - last['step']
            seconds = elapsed - last['elapsed']
            state['elapsed_seconds'][str(step)] = elapsed
            state['intervals'].append({'to_step': step, 'iterations': iters, 'seconds': round(seconds, 3),
                                       'seconds_per_iteration': round(seconds / iters, 5),
                                       'load_average': round(os.getloadavg()[0], 2), 'threads': a.threads})
            write_json(out / 'state.json', state)
            partial = Path(dir) / 'partial'
            partial.mkdir(exist_ok=True)
            official_save(str(partial), step)
            name = f'{DATASET}_params_{step:07d}.pt'
            os.replace(partial / name, Path(dir) / name)
            print(f'[ref] step {step}: {seconds / iters:.4f} s/iteration over {iters} iterations '
                  f'(load {os.getloadavg()[0]:.2f}), {elapsed / 3600:.3f} h of training', flush=True)
            last.update(step=step, elapsed=elapsed)
            translate(step)
            fill_kid(a, out)

    gan.load, gan.save = load, save
    if start >= a.iterations:
        load(str(model_dir), start + 1)   # finished: only catch up on translations and KID
        return
    # The official loop also, at each print_freq step, runs genA2B/genB2A on 5 train and 5 test images for its
    # sample sheets in results/<dataset>/img (60 generator forwards, about 3 iterations' time: ~0.2% of the
    # training time at kid-every 2000; counted as training), and saves <dataset>_params_latest.pt every 1000 steps.
    gan.train()
    print('[ref] training finished')


def main():
    a = parse_args()
    out = Path(a.out).resolve()
    out.mkdir(parents=True, exist_ok=True)
    a.data = str(Path(a.data).resolve())
    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    if a.kid_only:
        fill_kid(a, out)
    else:
        train(a, out)
    if a.iterations in kid_steps(out):
        (out / 'FINISHED').touch()   # run-study's mark of a completed reference run


if __name__ == '__main__':
    main()
