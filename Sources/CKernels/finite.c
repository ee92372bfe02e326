#include "CKernels.h"

#include <stdint.h>
#include <string.h>

int f2w_all_finite(size_t n, const float *x) {
    const uint32_t exponent = 0x7f800000u;
    // in blocks, so that a non-finite value stops the scan within 4,096 floats
    for (size_t b = 0; b < n; b += 4096) {
        size_t e = n - b < 4096 ? n : b + 4096;
        uint32_t found = 0;
        for (size_t j = b; j < e; j++) {
            uint32_t bits;
            memcpy(&bits, x + j, sizeof bits);
            found |= (bits & exponent) == exponent;
        }
        if (found) return 0;
    }
    return 1;
}
