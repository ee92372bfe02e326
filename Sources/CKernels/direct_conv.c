// Direct stride-1 convolution of one output or input channel, for convs with few output channels and a large
// kernel (the generator's 7×7 output conv, Cout = 3): see Sources/Engine/Ops/Conv2dDirect.swift.
//
// Forward and dx hold 64 (then 32) neighbouring outputs of a row in eight (four) 8-float vector registers (clang's
// vector extension, so that they stay in registers across the taps) and add one tap at a time: independent
// multiply-adds, so that none waits for the previous one's result (with one sum per block of 16 the kernels ran at
// a quarter of the speed). Then blocks of 8, and the last columns as a block of 8 that ends at the row's end (single columns only in
// rows shorter than 8). dW holds the 7 (or 4, or 1) taps of a kernel row in registers while
// it reads dy once. The sums run in a fixed order, so any thread count gives the same floats.
#include "CKernels.h"

#include <string.h>

#pragma clang fp contract(fast)

typedef float v8 __attribute__((vector_size(32)));

static inline v8 load8(const float *p) {
    v8 v;
    memcpy(&v, p, sizeof v);
    return v;
}

static inline void store8(float *p, v8 v) { memcpy(p, &v, sizeof v); }

static inline float sum8(v8 v) {
    return ((v[0] + v[1]) + (v[2] + v[3])) + ((v[4] + v[5]) + (v[6] + v[7]));
}

// One block of 8·NV columns from column c0 of output row r: NV independent sums per tap. FORWARD_BLOCK makes
// forward_NV (y[r][c0..]) and INPUT_BLOCK input_NV (dxp[i][c0..]).
#define FORWARD_BLOCK(NV)                                                                                           \
    static inline void forward_##NV(size_t cin, size_t k, size_t hp, size_t wp, size_t r, size_t c0,              \
                                    const float *restrict xp, const float *restrict w, float bias,                 \
                                    float *restrict yr) {                                                           \
        v8 a[NV];                                                                                                   \
        for (int j = 0; j < NV; j++) a[j] = (v8){0} + bias;                                                         \
        for (size_t ci = 0; ci < cin; ci++)                                                                         \
            for (size_t kh = 0; kh < k; kh++) {                                                                     \
                const float *s = xp + (ci * hp + r + kh) * wp + c0;                                                 \
                const float *wk = w + (ci * k + kh) * k;                                                            \
                for (size_t kw = 0; kw < k; kw++) {                                                                 \
                    const float wv = wk[kw];                                                                        \
                    for (int j = 0; j < NV; j++) a[j] += wv * load8(s + kw + 8 * j);                                \
                }                                                                                                   \
            }                                                                                                       \
        for (int j = 0; j < NV; j++) store8(yr + c0 + 8 * j, a[j]);                                                 \
    }
FORWARD_BLOCK(8)
FORWARD_BLOCK(4)
FORWARD_BLOCK(1)

// dxp[i][c] = Σ w[co][ci][kh][kw] · dy[co][i − kh][c − kw] = Σ … · dyh[co][i − kh][c − kw + k − 1], over the
// output rows i − kh that exist (kh in khLo...khHi)
#define INPUT_BLOCK(NV)                                                                                             \
    static inline void input_##NV(size_t cout, size_t cin, size_t k, size_t ho, size_t wh, size_t i, size_t khLo,  \
                                  size_t khHi, size_t c0, const float *restrict dyh, const float *restrict w,     \
                                  float *restrict dr) {                                                             \
        v8 a[NV];                                                                                                   \
        for (int j = 0; j < NV; j++) a[j] = (v8){0};                                                                \
        for (size_t co = 0; co < cout; co++)                                                                        \
            for (size_t kh = khLo; kh <= khHi; kh++) {                                                              \
                const float *s = dyh + (co * ho + (i - kh)) * wh + c0 + (k - 1);                                    \
                const float *wk = w + (co * cin * k + kh) * k;                                                      \
                for (size_t kw = 0; kw < k; kw++) {                                                                 \
                    const float wv = wk[kw];                                                                        \
                    for (int j = 0; j < NV; j++) a[j] += wv * load8(s - kw + 8 * j);                                \
                }                                                                                                   \
            }                                                                                                       \
        for (int j = 0; j < NV; j++) store8(dr + c0 + 8 * j, a[j]);                                                 \
    }
INPUT_BLOCK(8)
INPUT_BLOCK(4)
INPUT_BLOCK(1)

void f2w_conv_direct_forward(size_t cin, size_t k, size_t hp, size_t wp, size_t ho, size_t wo,
                             const float *restrict xp, const float *restrict w, float bias, float *restrict y) {
    for (size_t r = 0; r < ho; r++) {
        float *yr = y + r * wo;
        size_t c0 = 0;
        for (; c0 + 64 <= wo; c0 += 64) forward_8(cin, k, hp, wp, r, c0, xp, w, bias, yr);
        for (; c0 + 32 <= wo; c0 += 32) forward_4(cin, k, hp, wp, r, c0, xp, w, bias, yr);
        for (; c0 + 8 <= wo; c0 += 8) forward_1(cin, k, hp, wp, r, c0, xp, w, bias, yr);
        if (c0 < wo && wo >= 8) {
            // the last columns as one block of 8 ending at the row's end, over columns already written: they get the
            // same floats again (one vector sum instead of up to 7 scalar ones, each waiting for the last)
            forward_1(cin, k, hp, wp, r, wo - 8, xp, w, bias, yr);
            c0 = wo;
        }
        for (size_t c = c0; c < wo; c++) {
            float acc = bias;
            for (size_t ci = 0; ci < cin; ci++)
                for (size_t kh = 0; kh < k; kh++) {
                    const float *s = xp + (ci * hp + r + kh) * wp + c;
                    const float *wk = w + (ci * k + kh) * k;
                    for (size_t kw = 0; kw < k; kw++) acc += wk[kw] * s[kw];
                }
            yr[c] = acc;
        }
    }
}

void f2w_conv_direct_input_grad(size_t cout, size_t cin, size_t k, size_t hp, size_t wp, size_t ho, size_t wo,
                                const float *restrict dyh, const float *restrict w, float *restrict dxp) {
    const size_t wh = wo + 2 * (k - 1);  // dyh's row: dy's row with k − 1 zeros on each side
    for (size_t i = 0; i < hp; i++) {
        const size_t khLo = i + 1 > ho ? i + 1 - ho : 0, khHi = i < k - 1 ? i : k - 1;
        float *dr = dxp + i * wp;
        size_t c0 = 0;
        for (; c0 + 64 <= wp; c0 += 64) input_8(cout, cin, k, ho, wh, i, khLo, khHi, c0, dyh, w, dr);
        for (; c0 + 32 <= wp; c0 += 32) input_4(cout, cin, k, ho, wh, i, khLo, khHi, c0, dyh, w, dr);
        for (; c0 + 8 <= wp; c0 += 8) input_1(cout, cin, k, ho, wh, i, khLo, khHi, c0, dyh, w, dr);
        if (c0 < wp && wp >= 8) {
            // the last columns as one block of 8 ending at the row's end (as in the forward kernel)
            input_1(cout, cin, k, ho, wh, i, khLo, khHi, wp - 8, dyh, w, dr);
            c0 = wp;
        }
        for (size_t c = c0; c < wp; c++) {
            float acc = 0;
            for (size_t co = 0; co < cout; co++)
                for (size_t kh = khLo; kh <= khHi; kh++) {
                    const float *s = dyh + (co * ho + (i - kh)) * wh + c + (k - 1);
                    const float *wk = w + (co * cin * k + kh) * k;
                    for (size_t kw = 0; kw < k; kw++) acc += wk[kw] * s[-(ptrdiff_t)kw];
                }
            dr[c] = acc;
        }
    }
}

// dw[kh][kw0 + j] += Σ_r,c dy[r][c] · xp[r + kh][c + kw0 + j] for j < NK, one kernel row of one input channel: NK
// sums held in registers while dy is read once
#define WEIGHT_ROW(NK)                                                                                              \
    static void weight_row_##NK(size_t hp_, size_t wp, size_t ho, size_t wo, const float *restrict xp,             \
                                const float *restrict dy, float *restrict dw) {                                     \
        (void)hp_;                                                                                                  \
        v8 acc[NK];                                                                                                 \
        float tail[NK];                                                                                             \
        for (int j = 0; j < NK; j++) acc[j] = (v8){0}, tail[j] = 0;                                                 \
        for (size_t r = 0; r < ho; r++) {                                                                           \
            const float *d = dy + r * wo, *s = xp + r * wp;                                                         \
            size_t c0 = 0;                                                                                          \
            for (; c0 + 8 <= wo; c0 += 8) {                                                                         \
                const v8 dv = load8(d + c0);                                                                        \
                for (int j = 0; j < NK; j++) acc[j] += dv * load8(s + c0 + j);                                      \
            }                                                                                                       \
            for (size_t c = c0; c < wo; c++)                                                                        \
                for (int j = 0; j < NK; j++) tail[j] += d[c] * s[c + j];                                            \
        }                                                                                                           \
        for (int j = 0; j < NK; j++) dw[j] += sum8(acc[j]) + tail[j];                                               \
    }
WEIGHT_ROW(1)
WEIGHT_ROW(4)
WEIGHT_ROW(7)

void f2w_conv_direct_weight_grad(size_t cin, size_t k, size_t hp, size_t wp, size_t ho, size_t wo,
                                 const float *restrict xp, const float *restrict dy, float *restrict dw) {
    for (size_t ci = 0; ci < cin; ci++)
        for (size_t kh = 0; kh < k; kh++) {
            const float *s = xp + (ci * hp + kh) * wp;
            float *d = dw + (ci * k + kh) * k;
            // 7 taps at once where they fit (the 7×7 output conv), else 4, then 1
            size_t kw = 0;
            for (; kw + 7 <= k; kw += 7) weight_row_7(hp, wp, ho, wo, s + kw, dy, d + kw);
            for (; kw + 4 <= k; kw += 4) weight_row_4(hp, wp, ho, wo, s + kw, dy, d + kw);
            for (; kw < k; kw++) weight_row_1(hp, wp, ho, wo, s + kw, dy, d + kw);
        }
}
