#include "CKernels.h"

#include <math.h>

void f2w_adam_update(size_t n, float *restrict theta, const float *restrict grad, float *restrict m,
                     float *restrict v, float wd, float w1, float b2, float w2, float step, float bc2, float eps) {
    const float w1c = 1.0f - w1;
    // four copies of one loop, so that the branch is outside it and each copy vectorises
    if (w1 < 0.5f) {
        if (wd != 0.0f) {
            for (size_t j = 0; j < n; j++) {
                float g = grad[j] + wd * theta[j];
                float mj = m[j] + w1 * (g - m[j]), vj = v[j] * b2 + w2 * (g * g);
                m[j] = mj, v[j] = vj, theta[j] = theta[j] - step * (mj / (sqrtf(vj) / bc2 + eps));
            }
        } else {
            for (size_t j = 0; j < n; j++) {
                float g = grad[j];
                float mj = m[j] + w1 * (g - m[j]), vj = v[j] * b2 + w2 * (g * g);
                m[j] = mj, v[j] = vj, theta[j] = theta[j] - step * (mj / (sqrtf(vj) / bc2 + eps));
            }
        }
    } else {
        if (wd != 0.0f) {
            for (size_t j = 0; j < n; j++) {
                float g = grad[j] + wd * theta[j];
                float mj = g - (g - m[j]) * w1c, vj = v[j] * b2 + w2 * (g * g);
                m[j] = mj, v[j] = vj, theta[j] = theta[j] - step * (mj / (sqrtf(vj) / bc2 + eps));
            }
        } else {
            for (size_t j = 0; j < n; j++) {
                float g = grad[j];
                float mj = g - (g - m[j]) * w1c, vj = v[j] * b2 + w2 * (g * g);
                m[j] = mj, v[j] = vj, theta[j] = theta[j] - step * (mj / (sqrtf(vj) / bc2 + eps));
            }
        }
    }
}
