#!/usr/bin/env python3
"""Golden values for whole U-GAT-IT training steps (spec A.1-A.5, B.2-B.3), for Swift parity tests.

Run from the repository root:

    /tmp/torchenv/bin/python Scripts/golden/make_step_golden.py [--out DIR] [--case NAME]

Needs torch and safetensors. PyTorch is only a tool for making these files; it is never a
dependency of the Swift package. Default output folder: ``Tests/UGATITTests/Fixtures``.

Networks are written here from the specification with the module structure of
znxlwm/UGATIT-pytorch ``networks.py`` (so ``state_dict()`` keys are the official ones), PyTorch
default initialisation everywhere and ``torch.nn.utils.spectral_norm`` (1 power iteration per
training-mode call, eps 1e-12). Deliberate deviations from the original code (what we test):

1. Discriminator CAM re-weighting uses the spectrally normalised weight W/sigma (the very tensor
   the CAM logit uses), not ``weight_orig`` (spec G.19). ``gap_fc``/``gmp_fc`` are *called first*
   (their forward pre-hook runs the single power iteration and sets ``.weight`` = W/sigma), then
   ``.weight`` is read, so both uses see the fresh W/sigma and u, v advance once per D call.
   The case ``step_light_cam_raw`` keeps the original's ``weight_orig`` instead (``cam_raw``; our
   ``--d-cam-raw-weight``, and every model ``import-torch`` brings in), as the original reads
   it: ``list(self.gap_fc.parameters())[0]``.
2. Fakes are detached in the D update; D parameters have ``requires_grad=False`` during the G
   update (D gradients are not needed there; G gradients are unchanged by this).
3. Discriminator depths L are configurable (global, local). Trunk: L-2 stride-2 convs (k4,
   reflect pad 1, bias, channels c, 2c, ...) then one stride-1 conv, CAM with K = c*2^(L-2),
   head reflect pad 1 + conv k4 s1 K->1 without bias.

One step (spec B.2, everything in train mode, no lr decay):
- D update: zero D grads; fake_A2B = genA2B(real_A)[0].detach(); fake_B2A = genB2A(real_B)[0].detach();
  D calls disGA(real_A), disLA(real_A), disGB(real_B), disLB(real_B), disGA(fake_B2A),
  disLA(fake_B2A), disGB(fake_A2B), disLB(fake_A2B);
  d.adv_X = MSE(real_logit, 1) + MSE(fake_logit, 0); d.cam_X = same on the [B, 2] cam logits;
  d.loss = adv*(adv_GA + cam_GA + adv_LA + cam_LA) + adv*(adv_GB + cam_GB + adv_LB + cam_LB)
  (this summation order, as the official code); backward; Adam step on the 4 Ds.
- G update: zero G grads; fake_A2B, camA2B = genA2B(real_A); fake_B2A, camB2A = genB2A(real_B);
  fake_A2B2A = genB2A(fake_A2B); fake_B2A2B = genA2B(fake_B2A); fake_A2A, camA2A = genB2A(real_A);
  fake_B2B, camB2B = genA2B(real_B); D calls disGA(fake_B2A), disLA(fake_B2A), disGB(fake_A2B),
  disLB(fake_A2B); g.adv_X = MSE(logit, 1), g.cam_adv_X = MSE(cam logit, 1);
  g.rec_A = L1(fake_A2B2A, real_A), g.rec_B = L1(fake_B2A2B, real_B),
  g.idt_A = L1(fake_A2A, real_A), g.idt_B = L1(fake_B2B, real_B),
  g.cam_A = BCE(camB2A, 1) + BCE(camA2A, 0), g.cam_B = BCE(camA2B, 1) + BCE(camB2B, 0);
  G_loss_A = adv*(adv_GA + cam_adv_GA + adv_LA + cam_adv_LA) + cycle*rec_A + identity*idt_A + cam*cam_A,
  G_loss_B symmetric, g.loss = G_loss_A + G_loss_B; backward; Adam step on both Gs; every rho
  (ILN and adaILN, both generators) clamped to [0, 1].
- Adam: torch.optim.Adam(lr, betas, eps 1e-8, weight_decay coupled L2), single-tensor
  implementation (foreach=False). G optimizer params: genA2B then genB2A; D optimizer:
  disGA, disGB, disLA, disLB (order is irrelevant, Adam is per parameter).

File contents (all float32, contiguous; ``<net>`` in genA2B, genB2A, disGA, disGB, disLA, disLB;
``<key>`` an official state_dict key, e.g. ``DownBlock.1.weight``, ``model.1.weight_orig``):
- ``init.<net>.<key>``: every parameter and buffer (state_dict) before step 1;
- ``real_A``, ``real_B``: [B, 3, S, S], uniform in [-1, 1], used by every step;
- step 1 losses, shape [1]: ``d.loss``, ``d.adv_X``, ``d.cam_X`` (X in GA, LA, GB, LB),
  ``g.loss``, ``g.adv_X``, ``g.cam_adv_X``, ``g.rec_A``, ``g.rec_B``, ``g.idt_A``, ``g.idt_B``,
  ``g.cam_A``, ``g.cam_B``;
- ``dgrad.<net>.<key>``: every D parameter's gradient after the step-1 D backward;
  ``ggrad.<net>.<key>``: every G parameter's gradient after the step-1 G backward;
- ``after1.<net>.<key>``: every parameter and buffer after step 1 (both Adam steps, rho clip);
- ``traj.d_loss``, ``traj.g_loss``: [5], the losses of steps 1..5 (same real_A, real_B);
  ``after5.<net>.<key>``: every parameter and buffer after step 5;
- step-1 forward outputs (extra, for localising a mismatch): D update ``fwd.d.fake_A2B``,
  ``fwd.d.fake_B2A``, ``fwd.d.<real|fake>_<X>.<logit|cam_logit|heatmap>``; G update
  ``fwd.g.<fake_A2B|fake_B2A|fake_A2B2A|fake_B2A2B|fake_A2A|fake_B2B>`` (images),
  ``fwd.g.cam_<A2B|B2A|A2A|B2B>`` ([B, 2]), ``fwd.g.fake_<X>.<logit|cam_logit|heatmap>``.
Metadata (string -> string): case, seed, S, ch, n_res, light, batch, global_layers,
local_layers, weights (adv, cycle, identity, cam), adv_weight, cycle_weight, identity_weight,
cam_weight, lr, betas, eps, weight_decay, steps, adam, d_cam_weight, cam_raw, torch_version.

Determinism: one CPU thread, deterministic algorithms, per-case seed crc32(case name) set with
torch.manual_seed before building the networks (order genA2B, genB2A, disGA, disGB, disLA, disLB,
then real_A, real_B), and the safetensors header canonicalised with make_golden.py's
``canonicalise_header`` (sorted keys). Re-running gives byte-identical files with the same torch build.

No ties at a max: the gradient of a global max pool (the CAM's gmp, in every G and D call) goes to one element of
each plane, so where the two largest elements of a plane are nearly equal, a rounding difference of the other
program picks the other one and moves that plane's whole gradient. step_full's first seed had such a plane (a
disLA map, 0.17726055 against 0.17725989: 3.7e-6 of their value apart), and our step with Winograd F(4x4) on OpenBLAS's Haswell
kernel (AMD Zen) picked the other element: genB2A's gradients 3.5% off PyTorch's and the exact ones. So every
case's five steps must keep the two largest of every max-pooled plane at least MAX_POOL_MARGIN apart (relative
to the larger); where a seed does not, the next one is taken, crc32(f"{case}#{attempt}"), attempt 1, 2, ...
(attempt 0 is crc32(case)). The metadata records the attempt and the smallest margin.
"""

import argparse
import os
import sys
import zlib

import torch
import torch.nn as nn
import torch.nn.functional as F
from safetensors.torch import load_file, save_file

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from make_golden import canonicalise_header  # noqa: E402  (same folder; sorted-key header rewrite)

NETS = ("genA2B", "genB2A", "disGA", "disGB", "disLA", "disLB")
MAX_POOL_MARGIN = 1e-4
# the smallest (top1 - top2) / max(|top1|, 1e-3) over every plane max-pooled since the last reset (see the docstring)
_margin = [float("inf")]


def global_max_pool(x):
    """adaptive_max_pool2d(x, 1), recording how close each plane's two largest elements are."""
    top = x.detach().flatten(2).topk(2, dim=2).values
    gap = (top[..., 0] - top[..., 1]) / top[..., 0].abs().clamp(min=1e-3)
    _margin[0] = min(_margin[0], float(gap.min()))
    return F.adaptive_max_pool2d(x, 1)
GENS = NETS[:2]
DISS = NETS[2:]
XS = ("GA", "LA", "GB", "LB")
STEPS = 5
ADAM_EPS = 1e-8


# ============================================================================ networks (spec A)

class ResnetBlock(nn.Module):
    def __init__(self, dim):
        super().__init__()
        self.conv_block = nn.Sequential(
            nn.ReflectionPad2d(1), nn.Conv2d(dim, dim, 3, 1, 0, bias=False), nn.InstanceNorm2d(dim),
            nn.ReLU(True),
            nn.ReflectionPad2d(1), nn.Conv2d(dim, dim, 3, 1, 0, bias=False), nn.InstanceNorm2d(dim))

    def forward(self, x):
        return x + self.conv_block(x)


def _iln_mix(x, rho, eps):
    # unbiased variances (torch.var default), as the original ILN/adaILN
    in_mean, in_var = torch.mean(x, dim=[2, 3], keepdim=True), torch.var(x, dim=[2, 3], keepdim=True)
    out_in = (x - in_mean) / torch.sqrt(in_var + eps)
    ln_mean, ln_var = torch.mean(x, dim=[1, 2, 3], keepdim=True), torch.var(x, dim=[1, 2, 3], keepdim=True)
    out_ln = (x - ln_mean) / torch.sqrt(ln_var + eps)
    r = rho.expand(x.shape[0], -1, -1, -1)
    return r * out_in + (1 - r) * out_ln


class adaILN(nn.Module):
    def __init__(self, num_features, eps=1e-5):
        super().__init__()
        self.eps = eps
        self.rho = nn.Parameter(torch.Tensor(1, num_features, 1, 1))
        self.rho.data.fill_(0.9)

    def forward(self, x, gamma, beta):
        out = _iln_mix(x, self.rho, self.eps)
        return out * gamma.unsqueeze(2).unsqueeze(3) + beta.unsqueeze(2).unsqueeze(3)


class ILN(nn.Module):
    def __init__(self, num_features, eps=1e-5):
        super().__init__()
        self.eps = eps
        self.rho = nn.Parameter(torch.Tensor(1, num_features, 1, 1))
        self.gamma = nn.Parameter(torch.Tensor(1, num_features, 1, 1))
        self.beta = nn.Parameter(torch.Tensor(1, num_features, 1, 1))
        self.rho.data.fill_(0.0)
        self.gamma.data.fill_(1.0)
        self.beta.data.fill_(0.0)

    def forward(self, x):
        out = _iln_mix(x, self.rho, self.eps)
        n = x.shape[0]
        return out * self.gamma.expand(n, -1, -1, -1) + self.beta.expand(n, -1, -1, -1)


class ResnetAdaILNBlock(nn.Module):
    def __init__(self, dim):
        super().__init__()
        self.pad1 = nn.ReflectionPad2d(1)
        self.conv1 = nn.Conv2d(dim, dim, 3, 1, 0, bias=False)
        self.norm1 = adaILN(dim)
        self.relu1 = nn.ReLU(True)
        self.pad2 = nn.ReflectionPad2d(1)
        self.conv2 = nn.Conv2d(dim, dim, 3, 1, 0, bias=False)
        self.norm2 = adaILN(dim)

    def forward(self, x, gamma, beta):
        out = self.relu1(self.norm1(self.conv1(self.pad1(x)), gamma, beta))
        out = self.norm2(self.conv2(self.pad2(out)), gamma, beta)
        return out + x


class ResnetGenerator(nn.Module):
    def __init__(self, input_nc=3, output_nc=3, ngf=64, n_blocks=4, img_size=256, light=False):
        super().__init__()
        self.n_blocks = n_blocks
        self.light = light
        down = [nn.ReflectionPad2d(3), nn.Conv2d(input_nc, ngf, 7, 1, 0, bias=False),
                nn.InstanceNorm2d(ngf), nn.ReLU(True)]
        n_down = 2
        for i in range(n_down):
            mult = 2 ** i
            down += [nn.ReflectionPad2d(1), nn.Conv2d(ngf * mult, ngf * mult * 2, 3, 2, 0, bias=False),
                     nn.InstanceNorm2d(ngf * mult * 2), nn.ReLU(True)]
        mult = 2 ** n_down
        for _ in range(n_blocks):
            down += [ResnetBlock(ngf * mult)]

        # CAM
        self.gap_fc = nn.Linear(ngf * mult, 1, bias=False)
        self.gmp_fc = nn.Linear(ngf * mult, 1, bias=False)
        self.conv1x1 = nn.Conv2d(ngf * mult * 2, ngf * mult, 1, 1, bias=True)
        self.relu = nn.ReLU(True)

        # gamma/beta MLP
        if light:
            fc = [nn.Linear(ngf * mult, ngf * mult, bias=False), nn.ReLU(True),
                  nn.Linear(ngf * mult, ngf * mult, bias=False), nn.ReLU(True)]
        else:
            fin = img_size // mult * img_size // mult * ngf * mult  # ((((S//4)*S)//4)*c)*4
            fc = [nn.Linear(fin, ngf * mult, bias=False), nn.ReLU(True),
                  nn.Linear(ngf * mult, ngf * mult, bias=False), nn.ReLU(True)]
        self.gamma = nn.Linear(ngf * mult, ngf * mult, bias=False)
        self.beta = nn.Linear(ngf * mult, ngf * mult, bias=False)

        for i in range(n_blocks):
            setattr(self, "UpBlock1_" + str(i + 1), ResnetAdaILNBlock(ngf * mult))

        up = []
        for i in range(n_down):
            mult = 2 ** (n_down - i)
            up += [nn.Upsample(scale_factor=2, mode="nearest"), nn.ReflectionPad2d(1),
                   nn.Conv2d(ngf * mult, ngf * mult // 2, 3, 1, 0, bias=False),
                   ILN(ngf * mult // 2), nn.ReLU(True)]
        up += [nn.ReflectionPad2d(3), nn.Conv2d(ngf, output_nc, 7, 1, 0, bias=False), nn.Tanh()]

        self.DownBlock = nn.Sequential(*down)
        self.FC = nn.Sequential(*fc)
        self.UpBlock2 = nn.Sequential(*up)

    def forward(self, inp):
        x = self.DownBlock(inp)
        n = x.shape[0]

        gap_logit = self.gap_fc(F.adaptive_avg_pool2d(x, 1).view(n, -1))
        gap = x * self.gap_fc.weight.unsqueeze(2).unsqueeze(3)
        gmp_logit = self.gmp_fc(global_max_pool(x).view(n, -1))
        gmp = x * self.gmp_fc.weight.unsqueeze(2).unsqueeze(3)

        cam_logit = torch.cat([gap_logit, gmp_logit], 1)
        x = self.relu(self.conv1x1(torch.cat([gap, gmp], 1)))
        heatmap = torch.sum(x, dim=1, keepdim=True)

        if self.light:
            x_ = self.FC(F.adaptive_avg_pool2d(x, 1).view(n, -1))
        else:
            x_ = self.FC(x.view(n, -1))
        gamma, beta = self.gamma(x_), self.beta(x_)

        for i in range(self.n_blocks):
            x = getattr(self, "UpBlock1_" + str(i + 1))(x, gamma, beta)
        return self.UpBlock2(x), cam_logit, heatmap


def sn(m):
    return nn.utils.spectral_norm(m)  # n_power_iterations=1, eps=1e-12, dim=0


class Discriminator(nn.Module):
    def __init__(self, input_nc=3, ndf=64, n_layers=5, cam_raw=False):
        super().__init__()
        self.cam_raw = cam_raw
        model = [nn.ReflectionPad2d(1), sn(nn.Conv2d(input_nc, ndf, 4, 2, 0, bias=True)), nn.LeakyReLU(0.2, True)]
        for i in range(1, n_layers - 2):
            mult = 2 ** (i - 1)
            model += [nn.ReflectionPad2d(1), sn(nn.Conv2d(ndf * mult, ndf * mult * 2, 4, 2, 0, bias=True)),
                      nn.LeakyReLU(0.2, True)]
        mult = 2 ** (n_layers - 3)
        model += [nn.ReflectionPad2d(1), sn(nn.Conv2d(ndf * mult, ndf * mult * 2, 4, 1, 0, bias=True)),
                  nn.LeakyReLU(0.2, True)]

        mult = 2 ** (n_layers - 2)  # K = ndf * mult
        self.gap_fc = sn(nn.Linear(ndf * mult, 1, bias=False))
        self.gmp_fc = sn(nn.Linear(ndf * mult, 1, bias=False))
        self.conv1x1 = nn.Conv2d(ndf * mult * 2, ndf * mult, 1, 1, bias=True)
        self.leaky_relu = nn.LeakyReLU(0.2, True)
        self.pad = nn.ReflectionPad2d(1)
        self.conv = sn(nn.Conv2d(ndf * mult, 1, 4, 1, 0, bias=False))
        self.model = nn.Sequential(*model)

    def forward(self, inp):
        x = self.model(inp)
        n = x.shape[0]

        # Deviation 1 (spec G.19 fixed): call gap_fc first (its pre-hook does the one power
        # iteration and sets .weight = weight_orig / sigma), then re-weight with that same W/sigma.
        # cam_raw: the original's weight_orig (the module's only parameter), which gradients then also reach directly.
        gap_logit = self.gap_fc(F.adaptive_avg_pool2d(x, 1).view(n, -1))
        gap = x * (self.gap_fc.weight_orig if self.cam_raw else self.gap_fc.weight).unsqueeze(2).unsqueeze(3)
        gmp_logit = self.gmp_fc(global_max_pool(x).view(n, -1))
        gmp = x * (self.gmp_fc.weight_orig if self.cam_raw else self.gmp_fc.weight).unsqueeze(2).unsqueeze(3)

        cam_logit = torch.cat([gap_logit, gmp_logit], 1)
        x = self.leaky_relu(self.conv1x1(torch.cat([gap, gmp], 1)))
        heatmap = torch.sum(x, dim=1, keepdim=True)
        return self.conv(self.pad(x)), cam_logit, heatmap


# ============================================================================ parameter counts (A.5)

def n_params(m):
    return sum(p.numel() for p in m.parameters())


def g_light_closed(c, n):
    return 276 * c * c + 576 * n * c * c + 315 * c + 8 * n * c


def g_full_closed(c, n, s):
    return 260 * c * c + s * s * c * c + 576 * n * c * c + 315 * c + 8 * n * c


def d_closed(c, l):
    k = c * 2 ** (l - 2)
    return 49 * c + 32 * c * c * (4 ** (l - 3) - 1) // 3 + c * (2 ** (l - 2) - 2) + 10 * k * k + 20 * k


def check_parameter_counts():
    """Default config (c=64, n=4, S=256; G full not built: 279M params), spec A.5 table and the
    c=8, n=2, S=128 row; plus the closed forms at the fixture configs."""
    torch.manual_seed(0)
    g = ResnetGenerator(ngf=64, n_blocks=4, img_size=256, light=True)
    assert n_params(g) == g_light_closed(64, 4) == 10_589_888, n_params(g)
    assert len(g.state_dict()) == 44
    del g
    d = Discriminator(ndf=64, n_layers=7)
    assert n_params(d) == d_closed(64, 7) == 53_130_176, n_params(d)
    del d
    d = Discriminator(ndf=64, n_layers=5)
    assert n_params(d) == d_closed(64, 5) == 3_290_560, n_params(d)
    del d
    assert n_params(ResnetGenerator(ngf=8, n_blocks=2, img_size=128, light=True)) == 94_040
    assert n_params(ResnetGenerator(ngf=8, n_blocks=2, img_size=128, light=False)) == 1_141_592
    assert n_params(Discriminator(ndf=8, n_layers=7)) == 835_192
    assert n_params(Discriminator(ndf=8, n_layers=5)) == 52_920
    for c, n, s in ((4, 2, 32),):
        assert n_params(ResnetGenerator(ngf=c, n_blocks=n, img_size=s, light=True)) == g_light_closed(c, n)
        assert n_params(ResnetGenerator(ngf=c, n_blocks=n, img_size=s, light=False)) == g_full_closed(c, n, s)
    for c, l in ((4, 3), (4, 4)):
        assert n_params(Discriminator(ndf=c, n_layers=l)) == d_closed(c, l)
    print("parameter counts: G light 10,589,888, global D 53,130,176, local D 3,290,560 (c=64) OK")


# ============================================================================ cases

CASES = {
    "step_light": dict(S=32, ch=4, n_res=2, light=True, batch=2, global_layers=4, local_layers=3),
    "step_full": dict(S=32, ch=4, n_res=2, light=False, batch=1, global_layers=4, local_layers=3),
    "step_light_cam_raw": dict(S=32, ch=4, n_res=2, light=True, batch=2, global_layers=4, local_layers=3, cam_raw=True),
}
WEIGHTS = dict(adv=1.0, cycle=10.0, identity=10.0, cam=1000.0)
LR, BETAS, WD = 1e-4, (0.5, 0.999), 1e-4


def seed_for(name, attempt=0):
    key = name if attempt == 0 else f"{name}#{attempt}"
    return zlib.crc32(key.encode("utf-8")) & 0x7FFFFFFF


def snapshot(out, prefix, nets):
    for name, m in nets.items():
        for k, v in m.state_dict().items():
            out[f"{prefix}.{name}.{k}"] = v.detach().clone()


def grads(out, prefix, nets, names):
    for name in names:
        for k, p in nets[name].named_parameters():
            assert p.grad is not None, (prefix, name, k)
            out[f"{prefix}.{name}.{k}"] = p.grad.detach().clone()


class Trainer:
    def __init__(self, nets, w):
        self.nets, self.w = nets, w
        gp = [p for n in GENS for p in nets[n].parameters()]
        dp = [p for n in DISS for p in nets[n].parameters()]
        self.g_opt = torch.optim.Adam(gp, lr=LR, betas=BETAS, eps=ADAM_EPS, weight_decay=WD, foreach=False)
        self.d_opt = torch.optim.Adam(dp, lr=LR, betas=BETAS, eps=ADAM_EPS, weight_decay=WD, foreach=False)

    def _set_d_grad(self, flag):
        for n in DISS:
            for p in self.nets[n].parameters():
                p.requires_grad_(flag)

    def step(self, real_A, real_B, rec=None):
        """One training step. rec: dict receiving losses, grads and forward outputs (step 1)."""
        N, w = self.nets, self.w
        mse, l1, bce = F.mse_loss, F.l1_loss, F.binary_cross_entropy_with_logits
        ones, zeros = torch.ones_like, torch.zeros_like

        # ---------------------------------------------------------------- D update
        self._set_d_grad(True)
        self.d_opt.zero_grad()
        fake_A2B = N["genA2B"](real_A)[0].detach()
        fake_B2A = N["genB2A"](real_B)[0].detach()
        real_out = {"GA": N["disGA"](real_A), "LA": N["disLA"](real_A),
                    "GB": N["disGB"](real_B), "LB": N["disLB"](real_B)}
        fake_out = {"GA": N["disGA"](fake_B2A), "LA": N["disLA"](fake_B2A),
                    "GB": N["disGB"](fake_A2B), "LB": N["disLB"](fake_A2B)}
        d_adv, d_cam = {}, {}
        for x in XS:
            d_adv[x] = mse(real_out[x][0], ones(real_out[x][0])) + mse(fake_out[x][0], zeros(fake_out[x][0]))
            d_cam[x] = mse(real_out[x][1], ones(real_out[x][1])) + mse(fake_out[x][1], zeros(fake_out[x][1]))
        d_loss_A = w["adv"] * (d_adv["GA"] + d_cam["GA"] + d_adv["LA"] + d_cam["LA"])
        d_loss_B = w["adv"] * (d_adv["GB"] + d_cam["GB"] + d_adv["LB"] + d_cam["LB"])
        d_loss = d_loss_A + d_loss_B
        d_loss.backward()
        if rec is not None:
            rec["d.loss"] = d_loss
            for x in XS:
                rec[f"d.adv_{x}"] = d_adv[x]
                rec[f"d.cam_{x}"] = d_cam[x]
            grads(rec, "dgrad", N, DISS)
            rec["fwd.d.fake_A2B"], rec["fwd.d.fake_B2A"] = fake_A2B, fake_B2A
            for kind, outs in (("real", real_out), ("fake", fake_out)):
                for x in XS:
                    for j, part in enumerate(("logit", "cam_logit", "heatmap")):
                        rec[f"fwd.d.{kind}_{x}.{part}"] = outs[x][j]
        self.d_opt.step()

        # ---------------------------------------------------------------- G update
        self._set_d_grad(False)
        self.g_opt.zero_grad()
        fake_A2B, cam_A2B, _ = N["genA2B"](real_A)
        fake_B2A, cam_B2A, _ = N["genB2A"](real_B)
        fake_A2B2A, _, _ = N["genB2A"](fake_A2B)
        fake_B2A2B, _, _ = N["genA2B"](fake_B2A)
        fake_A2A, cam_A2A, _ = N["genB2A"](real_A)
        fake_B2B, cam_B2B, _ = N["genA2B"](real_B)
        g_out = {"GA": N["disGA"](fake_B2A), "LA": N["disLA"](fake_B2A),
                 "GB": N["disGB"](fake_A2B), "LB": N["disLB"](fake_A2B)}
        g_adv = {x: mse(g_out[x][0], ones(g_out[x][0])) for x in XS}
        g_cam_adv = {x: mse(g_out[x][1], ones(g_out[x][1])) for x in XS}
        rec_A, rec_B = l1(fake_A2B2A, real_A), l1(fake_B2A2B, real_B)
        idt_A, idt_B = l1(fake_A2A, real_A), l1(fake_B2B, real_B)
        cam_A = bce(cam_B2A, ones(cam_B2A)) + bce(cam_A2A, zeros(cam_A2A))
        cam_B = bce(cam_A2B, ones(cam_A2B)) + bce(cam_B2B, zeros(cam_B2B))
        g_loss_A = (w["adv"] * (g_adv["GA"] + g_cam_adv["GA"] + g_adv["LA"] + g_cam_adv["LA"])
                    + w["cycle"] * rec_A + w["identity"] * idt_A + w["cam"] * cam_A)
        g_loss_B = (w["adv"] * (g_adv["GB"] + g_cam_adv["GB"] + g_adv["LB"] + g_cam_adv["LB"])
                    + w["cycle"] * rec_B + w["identity"] * idt_B + w["cam"] * cam_B)
        g_loss = g_loss_A + g_loss_B
        g_loss.backward()
        if rec is not None:
            rec["g.loss"] = g_loss
            for x in XS:
                rec[f"g.adv_{x}"] = g_adv[x]
                rec[f"g.cam_adv_{x}"] = g_cam_adv[x]
            rec.update({"g.rec_A": rec_A, "g.rec_B": rec_B, "g.idt_A": idt_A, "g.idt_B": idt_B,
                        "g.cam_A": cam_A, "g.cam_B": cam_B})
            grads(rec, "ggrad", N, GENS)
            for k, v in (("fake_A2B", fake_A2B), ("fake_B2A", fake_B2A), ("fake_A2B2A", fake_A2B2A),
                         ("fake_B2A2B", fake_B2A2B), ("fake_A2A", fake_A2A), ("fake_B2B", fake_B2B),
                         ("cam_A2B", cam_A2B), ("cam_B2A", cam_B2A), ("cam_A2A", cam_A2A),
                         ("cam_B2B", cam_B2B)):
                rec[f"fwd.g.{k}"] = v
            for x in XS:
                for j, part in enumerate(("logit", "cam_logit", "heatmap")):
                    rec[f"fwd.g.fake_{x}.{part}"] = g_out[x][j]
        self.g_opt.step()
        with torch.no_grad():  # RhoClipper(0, 1) on both generators
            for n in GENS:
                for m in self.nets[n].modules():
                    if hasattr(m, "rho"):
                        m.rho.data = m.rho.data.clamp(0, 1)
        self._set_d_grad(True)
        return float(d_loss.item()), float(g_loss.item()), d_loss.detach(), g_loss.detach()


def build(cfg):
    c, S = cfg["ch"], cfg["S"]
    nets = {}
    for n in GENS:
        nets[n] = ResnetGenerator(3, 3, ngf=c, n_blocks=cfg["n_res"], img_size=S, light=cfg["light"])
    raw = cfg.get("cam_raw", False)
    nets["disGA"] = Discriminator(3, ndf=c, n_layers=cfg["global_layers"], cam_raw=raw)
    nets["disGB"] = Discriminator(3, ndf=c, n_layers=cfg["global_layers"], cam_raw=raw)
    nets["disLA"] = Discriminator(3, ndf=c, n_layers=cfg["local_layers"], cam_raw=raw)
    nets["disLB"] = Discriminator(3, ndf=c, n_layers=cfg["local_layers"], cam_raw=raw)
    for m in nets.values():
        m.train()
    return {n: nets[n] for n in NETS}


def run_case(name, cfg):
    """The case with the first seed whose five steps keep every max pool MAX_POOL_MARGIN from a tie."""
    for attempt in range(100):
        _margin[0] = float("inf")
        out, meta, nets, real_A = run_seed(name, cfg, seed_for(name, attempt))
        print(f"{name}: seed attempt {attempt}, smallest max-pool margin {_margin[0]:.3g}")
        if _margin[0] >= MAX_POOL_MARGIN:
            meta["seed_attempt"], meta["max_pool_margin"] = str(attempt), f"{_margin[0]:.3g}"
            return out, meta, nets, real_A
    sys.exit(f"{name}: no seed in 100 keeps every max pool {MAX_POOL_MARGIN} from a tie")


def run_seed(name, cfg, seed):
    torch.manual_seed(seed)
    nets = build(cfg)
    B, S = cfg["batch"], cfg["S"]
    real_A = torch.rand(B, 3, S, S) * 2 - 1
    real_B = torch.rand(B, 3, S, S) * 2 - 1

    out = {}
    snapshot(out, "init", nets)
    out["real_A"], out["real_B"] = real_A, real_B
    trainer = Trainer(nets, WEIGHTS)
    d_traj, g_traj = [], []
    rec = {}
    for s in range(1, STEPS + 1):
        _, _, dl, gl = trainer.step(real_A, real_B, rec if s == 1 else None)
        d_traj.append(dl.reshape(1))
        g_traj.append(gl.reshape(1))
        if s == 1:
            snapshot(out, "after1", nets)
    snapshot(out, "after5", nets)
    for k, v in rec.items():
        out[k] = v.reshape(1) if v.dim() == 0 else v
    out["traj.d_loss"] = torch.cat(d_traj)
    out["traj.g_loss"] = torch.cat(g_traj)

    # sanity: step-1 losses agree with the trajectory; u/v actually moved; rho within [0, 1]
    assert torch.equal(out["traj.d_loss"][0:1], out["d.loss"]) and torch.equal(out["traj.g_loss"][0:1], out["g.loss"])
    assert not torch.equal(out["init.disGA.model.1.weight_u"], out["after1.disGA.model.1.weight_u"])
    for k, v in out.items():
        if k.startswith(("after1.gen", "after5.gen")) and k.endswith(".rho"):
            assert float(v.min()) >= 0 and float(v.max()) <= 1, k
        assert torch.isfinite(v).all(), k

    meta = {"case": name, "seed": str(seed), "S": str(S), "ch": str(cfg["ch"]), "n_res": str(cfg["n_res"]),
            "light": "true" if cfg["light"] else "false", "batch": str(B),
            "global_layers": str(cfg["global_layers"]), "local_layers": str(cfg["local_layers"]),
            "weights": ",".join(f"{k}={WEIGHTS[k]!r}" for k in ("adv", "cycle", "identity", "cam")),
            "adv_weight": repr(WEIGHTS["adv"]), "cycle_weight": repr(WEIGHTS["cycle"]),
            "identity_weight": repr(WEIGHTS["identity"]), "cam_weight": repr(WEIGHTS["cam"]),
            "lr": repr(LR), "betas": f"{BETAS[0]!r},{BETAS[1]!r}", "eps": repr(ADAM_EPS),
            "weight_decay": repr(WD), "lr_decay": "false", "steps": str(STEPS),
            "adam": "torch.optim.Adam single-tensor (foreach=False), coupled L2 weight decay",
            "d_cam_weight": "weight_orig (the original's)" if cfg.get("cam_raw") else
            "spectral-normalised W/sigma (not weight_orig)",
            "cam_raw": "true" if cfg.get("cam_raw") else "false",
            "fakes_detached_in_d_update": "true",
            "torch_version": torch.__version__}
    return out, meta, nets, real_A


def describe(nets, real_A):
    """Logit / cam logit / heatmap shapes of each D (eval-free: works on copies, no u/v side effects)."""
    import copy
    lines = []
    for n in DISS:
        d = copy.deepcopy(nets[n])
        with torch.no_grad():
            logit, cam, heat = d(real_A)
        lines.append(f"  {n}: logit {list(logit.shape)}  cam_logit {list(cam.shape)}  heatmap {list(heat.shape)}")
    return "\n".join(lines)


def write(path, tensors, meta):
    stored = {k: v.detach().to(torch.float32).contiguous().clone() for k, v in tensors.items()}
    save_file(stored, path, metadata=meta)
    canonicalise_header(path)
    back = load_file(path)
    assert set(back) == set(stored)
    for k in stored:
        assert back[k].dtype == torch.float32 and torch.equal(back[k], stored[k]), k
    return stored


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    root = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    ap.add_argument("--out", default=os.path.join(root, "Tests", "UGATITTests", "Fixtures"))
    ap.add_argument("--case", default=None, help="only write the case with this name")
    ap.add_argument("--skip-count-check", action="store_true",
                    help="skip building the c=64 networks for the A.5 parameter-count check")
    args = ap.parse_args(argv)

    torch.set_num_threads(1)
    torch.use_deterministic_algorithms(True)
    torch.set_default_dtype(torch.float32)
    os.makedirs(args.out, exist_ok=True)

    if not args.skip_count_check:
        check_parameter_counts()
    selected = [(n, c) for n, c in CASES.items() if args.case is None or n == args.case]
    if not selected:
        sys.exit(f"unknown case {args.case!r}; known: {', '.join(CASES)}")
    for name, cfg in selected:
        out, meta, nets, real_A = run_case(name, cfg)
        path = os.path.join(args.out, name + ".safetensors")
        stored = write(path, out, meta)
        n_el = sum(v.numel() for v in stored.values())
        print(f"{name}: {os.path.getsize(path)} B, {len(stored)} tensors, {n_el} floats")
        print(describe(nets, real_A))
        print(f"  d.loss {out['d.loss'].item():.7g}  g.loss {out['g.loss'].item():.7g}")
        print(f"  traj.d_loss {[round(x, 6) for x in out['traj.d_loss'].tolist()]}")
        print(f"  traj.g_loss {[round(x, 6) for x in out['traj.g_loss'].tolist()]}")


if __name__ == "__main__":
    main()
