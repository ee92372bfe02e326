/*
 * CImageShim: PNG and JPEG decoding to RGB8 and encoding, with libpng's and libjpeg's
 * longjmp-based error handling kept inside C. Swift cannot unwind through longjmp, so every
 * entry point here does its own setjmp and returns a status code plus a message instead.
 *
 * All symbols are prefixed `cis_`. Buffers returned through `uint8_t **` are malloc'd;
 * free them with `cis_free`.
 */
#ifndef CIMAGESHIM_H
#define CIMAGESHIM_H

#include <stddef.h>
#include <stdint.h>

/* Status codes. */
#define CIS_OK 0
#define CIS_NOT_THIS_FORMAT 1 /* the signature does not match the codec */
#define CIS_CORRUPT 2         /* decoding failed: corrupt or truncated data */
#define CIS_TOO_LARGE 3       /* width * height exceeds the caller's limit */
#define CIS_NO_MEMORY 4
#define CIS_BAD_ARGUMENT 5

#define CIS_MESSAGE_CAPACITY 256

/* A decoded image: RGB8, row-major, 3 bytes per pixel, no padding. */
typedef struct {
    uint8_t *pixels;       /* width * height * 3 bytes, or NULL on failure */
    uint32_t width;
    uint32_t height;
    uint8_t *exif;         /* JPEG only: the APP1 "Exif\0\0" payload after those 6 bytes (TIFF data), or NULL */
    size_t exif_size;
    int cmyk_inverted;     /* JPEG only: 1 when 4-component data was read as Adobe (inverted) CMYK */
    char message[CIS_MESSAGE_CAPACITY]; /* why decoding failed (status != CIS_OK) */
} cis_image;

/*
 * Decodes a PNG held in memory to RGB8. Palette, grey (1-16 bit), grey+alpha, RGB, RGBA and
 * interlaced images all become RGB: alpha and tRNS are dropped (no compositing), 16-bit
 * samples keep their high byte (libpng's png_set_strip_16), gAMA/iCCP are ignored.
 */
int cis_png_decode_rgb8(const uint8_t *data, size_t size, uint64_t max_pixels, cis_image *out);

/*
 * Decodes a JPEG held in memory to RGB8 (libjpeg defaults: islow IDCT, fancy upsampling).
 * Grey is replicated; YCbCr and RGB come out as RGB; CMYK/YCCK are read as CMYK, inverted
 * first when an Adobe APP14 marker is present, then converted like Pillow's cmyk2rgb.
 * A premature end of data (truncated file) is an error, other libjpeg warnings are not.
 */
int cis_jpeg_decode_rgb8(const uint8_t *data, size_t size, uint64_t max_pixels, cis_image *out);

/* Frees the buffers of a cis_image (safe on a zeroed or failed one). */
void cis_image_release(cis_image *img);

/*
 * Encodes a PNG. `samples` holds `height` rows in PNG's own packing for `color_type` and
 * `bit_depth` (16-bit samples big-endian, sub-byte depths packed MSB first), each row
 * ceil(width * channels * bit_depth / 8) bytes. `palette_rgb` (palette_count RGB triplets) is
 * required for color type 3; `trns` (trns_count alpha values) is optional and only used with
 * a palette. `interlace` 1 writes Adam7. On success *out / *out_size receive a malloc'd buffer.
 */
int cis_png_encode(const uint8_t *samples, uint32_t width, uint32_t height, int color_type,
                   int bit_depth, int interlace, const uint8_t *palette_rgb, int palette_count,
                   const uint8_t *trns, int trns_count, int compression_level, uint8_t **out,
                   size_t *out_size, char *message, size_t message_capacity);

/*
 * Encodes a baseline JPEG from 8-bit samples with `components` 1 (grey), 3 (RGB) or 4 (CMYK)
 * channels. For 4 components `adobe_marker` chooses whether an Adobe APP14 marker is written.
 * `app1` (may be NULL) is written verbatim as an APP1 segment payload (e.g. "Exif\0\0" + TIFF).
 */
int cis_jpeg_encode(const uint8_t *samples, uint32_t width, uint32_t height, int components,
                    int quality, int adobe_marker, const uint8_t *app1, size_t app1_size,
                    uint8_t **out, size_t *out_size, char *message, size_t message_capacity);

void cis_free(void *p);

#endif
