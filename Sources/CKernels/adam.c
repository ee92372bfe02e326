#include "CKernels.h"

#include <math.h>

void f2w_adam_update(size_t n, float *restrict theta, const float *restrict grad, float *restrict m,
                     float *restrict v, float wd, float w1, float b2, float w2, float step, float bc2, float eps) {
    const int low = w1 < 0.5f, decay = wd != 0.0f;
    const float w1c = 1.0f - w1;
    for (size_t j = 0; j < n; j++) {
        float g = decay ? grad[j] + wd * theta[j] : grad[j];
        float mj = low ? m[j] + w1 * (g - m[j]) : g - (g - m[j]) * w1c;
        float vj = v[j] * b2 + w2 * (g * g);
        m[j] = mj, v[j] = vj, theta[j] = theta[j] - step * (mj / (sqrtf(vj) / bc2 + eps));
    }
}
