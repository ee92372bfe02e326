// Elementwise kernels that Swift's compiler leaves scalar, in C so that clang vectorises them.
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
