/*
 * JPEG through libjpeg(-turbo). libjpeg reports fatal errors by calling error_exit, which must
 * not return; ours longjmps to the setjmp in the entry point. Warnings are silent, except a
 * premature end of data, which libjpeg would otherwise paper over with grey rows (Pillow
 * raises "image file is truncated" in that case).
 */
#include "CImageShim.h"

#include <setjmp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jpeglib.h>
#include <jerror.h>

/* Progressive files can hold thousands of scans; cap them so a hostile file cannot stall a run. */
#define CIS_MAX_SCANS 1000

typedef struct {
    struct jpeg_error_mgr pub; /* first member: cinfo->err points here */
    jmp_buf jump;
    int truncated;
    char message[JMSG_LENGTH_MAX];
} jpeg_ctx;

static void on_error_exit(j_common_ptr cinfo) {
    jpeg_ctx *c = (jpeg_ctx *)cinfo->err;
    (*cinfo->err->format_message)(cinfo, c->message);
    longjmp(c->jump, 1);
}

static void on_emit_message(j_common_ptr cinfo, int level) {
    jpeg_ctx *c = (jpeg_ctx *)cinfo->err;
    if (level < 0) {
        cinfo->err->num_warnings++;
        if (cinfo->err->msg_code == JWRN_JPEG_EOF) c->truncated = 1;
    }
}

static void on_progress(j_common_ptr cinfo) {
    if (cinfo->is_decompressor && ((j_decompress_ptr)cinfo)->input_scan_number > CIS_MAX_SCANS) {
        jpeg_ctx *c = (jpeg_ctx *)cinfo->err;
        snprintf(c->message, sizeof c->message, "more than %d scans", CIS_MAX_SCANS);
        longjmp(c->jump, 1);
    }
}

static void init_errors(jpeg_ctx *c) {
    jpeg_std_error(&c->pub);
    c->pub.error_exit = on_error_exit;
    c->pub.emit_message = on_emit_message;
}

/* Pillow's cmyk2rgb (Convert.c): MULDIV255 rounding, then clip. */
static inline uint8_t muldiv255(int a, int b) {
    int t = a * b + 128;
    return (uint8_t)(((t >> 8) + t) >> 8);
}

static void cmyk_to_rgb(const uint8_t *in, uint8_t *out, uint32_t n, int inverted) {
    for (uint32_t i = 0; i < n; i++, in += 4, out += 3) {
        int cc = in[0], m = in[1], y = in[2], k = in[3];
        if (inverted) { cc = 255 - cc; m = 255 - m; y = 255 - y; k = 255 - k; }
        int nk = 255 - k;
        int r = nk - muldiv255(cc, nk), g = nk - muldiv255(m, nk), b = nk - muldiv255(y, nk);
        out[0] = (uint8_t)(r < 0 ? 0 : r);
        out[1] = (uint8_t)(g < 0 ? 0 : g);
        out[2] = (uint8_t)(b < 0 ? 0 : b);
    }
}

int cis_jpeg_decode_rgb8(const uint8_t *data, size_t size, uint64_t max_pixels, cis_image *out) {
    memset(out, 0, sizeof *out);
    if (size < 3 || data[0] != 0xFF || data[1] != 0xD8 || data[2] != 0xFF) {
        snprintf(out->message, sizeof out->message, "no JPEG start-of-image marker");
        return CIS_NOT_THIS_FORMAT;
    }
    struct jpeg_decompress_struct cinfo;
    struct jpeg_progress_mgr progress;
    jpeg_ctx *c = calloc(1, sizeof *c);
    if (!c) return CIS_NO_MEMORY;
    uint8_t *volatile pixels = NULL;
    uint8_t *volatile row = NULL;
    uint8_t *volatile exif = NULL;
    volatile int status = CIS_CORRUPT;
    memset(&cinfo, 0, sizeof cinfo); /* so jpeg_destroy is safe even if creation fails */
    init_errors(c);
    cinfo.err = &c->pub;
    if (setjmp(c->jump)) {
        snprintf(out->message, sizeof out->message, "%s", c->message);
        jpeg_destroy_decompress(&cinfo);
        free(pixels);
        free(row);
        free(exif);
        free(c);
        return status;
    }
    jpeg_create_decompress(&cinfo);
    progress.progress_monitor = on_progress;
    cinfo.progress = &progress;
    jpeg_mem_src(&cinfo, data, (unsigned long)size);
    jpeg_save_markers(&cinfo, JPEG_APP0 + 1, 0xFFFF);
    if (jpeg_read_header(&cinfo, TRUE) != JPEG_HEADER_OK) ERREXIT(&cinfo, JERR_NO_IMAGE);
    if ((uint64_t)cinfo.image_width * cinfo.image_height > max_pixels) {
        status = CIS_TOO_LARGE;
        snprintf(c->message, sizeof c->message, "image is larger than the pixel limit");
        longjmp(c->jump, 1);
    }
    for (jpeg_saved_marker_ptr m = cinfo.marker_list; m; m = m->next) {
        if (m->marker == JPEG_APP0 + 1 && m->data_length > 6 && memcmp(m->data, "Exif\0\0", 6) == 0) {
            exif = malloc(m->data_length - 6);
            if (!exif) { status = CIS_NO_MEMORY; ERREXIT(&cinfo, JERR_OUT_OF_MEMORY); }
            memcpy(exif, m->data + 6, m->data_length - 6);
            out->exif_size = m->data_length - 6;
            break;
        }
    }
    int cmyk = cinfo.jpeg_color_space == JCS_CMYK || cinfo.jpeg_color_space == JCS_YCCK;
    int inverted = cmyk && cinfo.saw_Adobe_marker;
    cinfo.out_color_space = cmyk ? JCS_CMYK : JCS_RGB;
    jpeg_start_decompress(&cinfo);
    uint32_t w = cinfo.output_width, h = cinfo.output_height;
    int comps = cinfo.output_components;
    if (comps != (cmyk ? 4 : 3)) ERREXIT(&cinfo, JERR_CONVERSION_NOTIMPL);
    status = CIS_NO_MEMORY;
    pixels = malloc((size_t)w * h * 3 + 1);
    row = malloc((size_t)w * 4 + 1);
    if (!pixels || !row) ERREXIT(&cinfo, JERR_OUT_OF_MEMORY);
    status = CIS_CORRUPT;
    while (cinfo.output_scanline < h) {
        uint32_t y = cinfo.output_scanline;
        JSAMPROW dst = cmyk ? row : pixels + (size_t)y * w * 3;
        if (jpeg_read_scanlines(&cinfo, &dst, 1) != 1) ERREXIT(&cinfo, JERR_INPUT_EOF);
        if (cmyk) cmyk_to_rgb(row, pixels + (size_t)y * w * 3, w, inverted);
    }
    if (c->truncated) {
        snprintf(c->message, sizeof c->message, "premature end of JPEG data (truncated file)");
        longjmp(c->jump, 1);
    }
    /* Skip jpeg_finish_decompress: trailing garbage after the last scan must not fail a good image. */
    jpeg_destroy_decompress(&cinfo);
    free(row);
    free(c);
    out->pixels = pixels;
    out->width = w;
    out->height = h;
    out->exif = exif;
    out->cmyk_inverted = inverted;
    return CIS_OK;
}

int cis_jpeg_encode(const uint8_t *samples, uint32_t width, uint32_t height, int components,
                    int quality, int adobe_marker, const uint8_t *app1, size_t app1_size,
                    uint8_t **out, size_t *out_size, char *message, size_t message_capacity) {
    *out = NULL;
    *out_size = 0;
    if (components != 1 && components != 3 && components != 4) return CIS_BAD_ARGUMENT;
    struct jpeg_compress_struct cinfo;
    jpeg_ctx *c = calloc(1, sizeof *c);
    if (!c) return CIS_NO_MEMORY;
    /* jpeg_mem_dest allocates and grows this buffer itself (with malloc). */
    unsigned char *buf = NULL;
    unsigned long len = 0;
    memset(&cinfo, 0, sizeof cinfo);
    init_errors(c);
    cinfo.err = &c->pub;
    if (setjmp(c->jump)) {
        if (message && message_capacity) snprintf(message, message_capacity, "%s", c->message);
        jpeg_destroy_compress(&cinfo);
        free(buf);
        free(c);
        return CIS_BAD_ARGUMENT;
    }
    jpeg_create_compress(&cinfo);
    jpeg_mem_dest(&cinfo, &buf, &len);
    cinfo.image_width = width;
    cinfo.image_height = height;
    cinfo.input_components = components;
    cinfo.in_color_space = components == 1 ? JCS_GRAYSCALE : components == 3 ? JCS_RGB : JCS_CMYK;
    jpeg_set_defaults(&cinfo);
    jpeg_set_quality(&cinfo, quality, TRUE);
    if (components == 4) cinfo.write_Adobe_marker = adobe_marker ? TRUE : FALSE;
    jpeg_start_compress(&cinfo, TRUE);
    if (app1 && app1_size > 0) jpeg_write_marker(&cinfo, JPEG_APP0 + 1, app1, (unsigned int)app1_size);
    while (cinfo.next_scanline < height) {
        JSAMPROW r = (JSAMPROW)(samples + (size_t)cinfo.next_scanline * width * components);
        jpeg_write_scanlines(&cinfo, &r, 1);
    }
    jpeg_finish_compress(&cinfo);
    jpeg_destroy_compress(&cinfo);
    free(c);
    *out = buf;
    *out_size = len;
    return CIS_OK;
}
