/*
 * PNG through libpng's full API (not the simplified png_image_* API): the simplified API
 * treats 16-bit data as linear light and composites alpha, while the data pipeline wants
 * Pillow's behaviour (keep the high byte, drop alpha). Errors longjmp back to the setjmp in
 * each entry point, never into Swift.
 */
#include "CImageShim.h"

#include <png.h>
#include <setjmp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct {
    jmp_buf jump;
    char message[CIS_MESSAGE_CAPACITY];
    const uint8_t *data; /* reading */
    size_t size, pos;
    uint8_t *buf;        /* writing (growing buffer) */
    size_t len, cap;
} png_ctx;

static void on_error(png_structp png, png_const_charp msg) {
    png_ctx *c = (png_ctx *)png_get_error_ptr(png);
    snprintf(c->message, sizeof c->message, "%s", msg);
    longjmp(c->jump, 1);
}

static void on_warning(png_structp png, png_const_charp msg) { (void)png; (void)msg; }

static void mem_read(png_structp png, png_bytep out, size_t n) {
    png_ctx *c = (png_ctx *)png_get_io_ptr(png);
    if (c->size - c->pos < n) png_error(png, "file is truncated");
    memcpy(out, c->data + c->pos, n);
    c->pos += n;
}

static void mem_write(png_structp png, png_bytep in, size_t n) {
    png_ctx *c = (png_ctx *)png_get_io_ptr(png);
    if (c->cap - c->len < n) {
        size_t cap = c->cap ? c->cap : 4096;
        while (cap - c->len < n) cap *= 2;
        uint8_t *b = realloc(c->buf, cap);
        if (!b) png_error(png, "out of memory");
        c->buf = b;
        c->cap = cap;
    }
    memcpy(c->buf + c->len, in, n);
    c->len += n;
}

static void mem_flush(png_structp png) { (void)png; }

int cis_png_decode_rgb8(const uint8_t *data, size_t size, uint64_t max_pixels, cis_image *out) {
    memset(out, 0, sizeof *out);
    if (size < 8 || png_sig_cmp(data, 0, 8) != 0) {
        snprintf(out->message, sizeof out->message, "no PNG signature");
        return CIS_NOT_THIS_FORMAT;
    }
    png_ctx *c = calloc(1, sizeof *c);
    if (!c) return CIS_NO_MEMORY;
    c->data = data;
    c->size = size;
    png_structp png = png_create_read_struct(PNG_LIBPNG_VER_STRING, c, on_error, on_warning);
    png_infop info = png ? png_create_info_struct(png) : NULL;
    /* volatile: assigned between setjmp and a possible longjmp */
    uint8_t *volatile pixels = NULL;
    png_bytep *volatile rows = NULL;
    volatile int status = CIS_CORRUPT;
    if (!png || !info) {
        png_destroy_read_struct(png ? &png : NULL, NULL, NULL);
        free(c);
        return CIS_NO_MEMORY;
    }
    if (setjmp(c->jump)) {
        snprintf(out->message, sizeof out->message, "%s", c->message);
        png_destroy_read_struct(&png, &info, NULL);
        free(pixels);
        free(rows);
        free(c);
        return status;
    }
    png_set_read_fn(png, c, mem_read);
    png_set_benign_errors(png, 1);
    png_read_info(png, info);
    png_uint_32 w = 0, h = 0;
    int depth = 0, ctype = 0, interlace = 0;
    png_get_IHDR(png, info, &w, &h, &depth, &ctype, &interlace, NULL, NULL);
    if ((uint64_t)w * h > max_pixels) {
        status = CIS_TOO_LARGE;
        png_error(png, "image is larger than the pixel limit");
    }
    /* Pillow's convert('RGB'): palette -> colours, grey replicated, alpha/tRNS dropped. */
    if (ctype == PNG_COLOR_TYPE_PALETTE) png_set_palette_to_rgb(png);
    if (ctype == PNG_COLOR_TYPE_GRAY && depth < 8) png_set_expand_gray_1_2_4_to_8(png);
    if (depth == 16) png_set_strip_16(png); /* high byte, as Pillow's RGB;16B unpacker */
    png_set_strip_alpha(png);
    if (!(ctype & PNG_COLOR_MASK_COLOR)) png_set_gray_to_rgb(png);
    png_set_interlace_handling(png);
    png_read_update_info(png, info);
    size_t rowbytes = png_get_rowbytes(png, info);
    if (png_get_channels(png, info) != 3 || png_get_bit_depth(png, info) != 8 || rowbytes != (size_t)w * 3)
        png_error(png, "unexpected row layout after conversion to RGB8");
    status = CIS_NO_MEMORY;
    pixels = malloc((size_t)w * h * 3 + 1);
    rows = malloc(sizeof(png_bytep) * (h ? h : 1));
    if (!pixels || !rows) png_error(png, "out of memory");
    status = CIS_CORRUPT;
    for (png_uint_32 y = 0; y < h; y++) rows[y] = pixels + (size_t)y * rowbytes;
    png_read_image(png, rows);
    /* No png_read_end: chunks after the image data do not change the pixels. */
    png_destroy_read_struct(&png, &info, NULL);
    free(rows);
    free(c);
    out->pixels = pixels;
    out->width = w;
    out->height = h;
    return CIS_OK;
}

int cis_png_encode(const uint8_t *samples, uint32_t width, uint32_t height, int color_type,
                   int bit_depth, int interlace, const uint8_t *palette_rgb, int palette_count,
                   const uint8_t *trns, int trns_count, int compression_level, uint8_t **out,
                   size_t *out_size, char *message, size_t message_capacity) {
    *out = NULL;
    *out_size = 0;
    png_ctx *c = calloc(1, sizeof *c);
    if (!c) return CIS_NO_MEMORY;
    png_structp png = png_create_write_struct(PNG_LIBPNG_VER_STRING, c, on_error, on_warning);
    png_infop info = png ? png_create_info_struct(png) : NULL;
    png_bytep *volatile rows = NULL;
    if (!png || !info) {
        png_destroy_write_struct(png ? &png : NULL, NULL);
        free(c);
        return CIS_NO_MEMORY;
    }
    if (setjmp(c->jump)) {
        if (message && message_capacity) snprintf(message, message_capacity, "%s", c->message);
        png_destroy_write_struct(&png, &info);
        free(rows);
        free(c->buf);
        free(c);
        return CIS_BAD_ARGUMENT;
    }
    png_set_write_fn(png, c, mem_write, mem_flush);
    png_set_IHDR(png, info, width, height, bit_depth, color_type,
                 interlace ? PNG_INTERLACE_ADAM7 : PNG_INTERLACE_NONE, PNG_COMPRESSION_TYPE_DEFAULT,
                 PNG_FILTER_TYPE_DEFAULT);
    if (color_type == PNG_COLOR_TYPE_PALETTE) {
        if (!palette_rgb || palette_count < 1 || palette_count > 256) png_error(png, "palette required");
        png_color pal[256];
        for (int i = 0; i < palette_count; i++) {
            pal[i].red = palette_rgb[3 * i];
            pal[i].green = palette_rgb[3 * i + 1];
            pal[i].blue = palette_rgb[3 * i + 2];
        }
        png_set_PLTE(png, info, pal, palette_count);
        if (trns && trns_count > 0) png_set_tRNS(png, info, trns, trns_count, NULL);
    }
    png_set_compression_level(png, compression_level);
    png_write_info(png, info);
    size_t rowbytes = png_get_rowbytes(png, info);
    rows = malloc(sizeof(png_bytep) * (height ? height : 1));
    if (!rows) png_error(png, "out of memory");
    for (uint32_t y = 0; y < height; y++) rows[y] = (png_bytep)samples + (size_t)y * rowbytes;
    png_write_image(png, rows); /* handles the Adam7 passes itself */
    png_write_end(png, info);
    png_destroy_write_struct(&png, &info);
    free(rows);
    *out = c->buf;
    *out_size = c->len;
    free(c);
    return CIS_OK;
}

void cis_image_release(cis_image *img) {
    free(img->pixels);
    free(img->exif);
    img->pixels = NULL;
    img->exif = NULL;
}

void cis_free(void *p) { free(p); }
