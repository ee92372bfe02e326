// Loops that Swift's compiler leaves scalar, in C so that clang vectorises them. The target is built with
// -ffp-contract=off (Adam's floats must equal the scalar formula's); direct_conv.c allows contraction itself.
#pragma once
#include <stddef.h>

/// Adam's update of n float32 parameters in place (torch.optim.Adam, foreach=False, coupled weight decay wd):
///   g' = g + wd·θ (when wd ≠ 0);  m ← lerp(m, g', w1);  v ← v·b2 + w2·g'²;  θ ← θ − step·m / (√v / bc2 + eps)
/// lerp as torch computes it: m + w1·(g' − m) for w1 < 0.5, else g' − (g' − m)·(1 − w1).
/// Built with -ffp-contract=off and no fast-math, so each lane gives the floats of the scalar expressions.
void f2w_adam_update(size_t n, float *theta, const float *grad, float *m, float *v, float wd, float w1, float b2,
                     float w2, float step, float bc2, float eps);

/// 1 if none of the n floats is an infinity or a NaN, else 0. Reads the exponent bits (all ones only for those),
/// so that clang vectorises the loop: Swift's `contains(where: { !$0.isFinite })` ran scalar.
int f2w_all_finite(size_t n, const float *x);

/// Direct stride-1 convolution (Conv2dDirect.swift), one channel per call; xp, dxp: [Cin, Hp, Wp] padded input and
/// its gradient, Hp = Ho + k − 1, Wp = Wo + k − 1; weights [Cout, Cin, k, k]; sums in a fixed order.
/// Forward, one output channel: y[Ho, Wo] = bias + Σ_ci,kh,kw w[ci, kh, kw] · xp[ci, r + kh, c + kw] (w: its
/// [Cin, k, k] weights).
void f2w_conv_direct_forward(size_t cin, size_t k, size_t hp, size_t wp, size_t ho, size_t wo, const float *xp,
                             const float *w, float bias, float *y);
/// Input gradient, one input channel: dxp[Hp, Wp] = Σ_co,kh,kw w[co, ci, kh, kw] · dy[co, i − kh, c − kw] (assigned,
/// not added; w points at w[0, ci]). dyh: dy [Cout, Ho, Wo + 2(k − 1)] with k − 1 zeros on each side of every row.
void f2w_conv_direct_input_grad(size_t cout, size_t cin, size_t k, size_t hp, size_t wp, size_t ho, size_t wo,
                                const float *dyh, const float *w, float *dxp);
/// Weight gradient, one output channel: dw[Cin, k, k] += Σ_r,c dy[r, c] · xp[ci, r + kh, c + kw].
void f2w_conv_direct_weight_grad(size_t cin, size_t k, size_t hp, size_t wp, size_t ho, size_t wo, const float *xp,
                                 const float *dy, float *dw);
