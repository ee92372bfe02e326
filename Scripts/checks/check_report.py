#!/usr/bin/env python3
"""Renders a `face2webtoon report` page in headless Chromium and fails on an empty or broken page.

Checks, and exits 1 naming what failed:
- the page's own load-time self-check ran in the browser (its console line) with no JavaScript error in the console,
  at least --min-plots plots, and no image that failed to decode;
- the screenshot is not blank: in each plot region (found from the DOM order: plots fill the first rows) there are
  coloured line pixels, and the whole page holds more than a few percent of non-white pixels.

    python Scripts/checks/check_report.py report.html [--png out.png] [--min-plots N] [--chromium PATH]
"""
import argparse
import os
import re
import shutil
import subprocess
import sys
import tempfile
import zlib
import struct


def read_png_rgb(path):
    """A minimal PNG reader for Chromium's 8-bit RGB(A) screenshots (no third-party package needed)."""
    data = open(path, "rb").read()
    assert data[:8] == b"\x89PNG\r\n\x1a\n", "not a PNG"
    pos, idat, w = 8, b"", None
    while pos < len(data):
        n, kind = struct.unpack(">I4s", data[pos:pos + 8])
        body = data[pos + 8:pos + 8 + n]
        if kind == b"IHDR":
            w, h, depth, color = struct.unpack(">IIBB", body[:10])
            assert depth == 8 and color in (2, 6), f"unexpected PNG format depth {depth} color {color}"
            bpp = 3 if color == 2 else 4
        elif kind == b"IDAT":
            idat += body
        pos += 12 + n
    raw = zlib.decompress(idat)
    stride = w * bpp
    rows, prev = [], bytearray(stride)
    for y in range(h):
        f = raw[y * (stride + 1)]
        line = bytearray(raw[y * (stride + 1) + 1:(y + 1) * (stride + 1)])
        for i in range(stride):
            a = line[i - bpp] if i >= bpp else 0
            b = prev[i]
            c = prev[i - bpp] if i >= bpp else 0
            if f == 1: line[i] = (line[i] + a) & 255
            elif f == 2: line[i] = (line[i] + b) & 255
            elif f == 3: line[i] = (line[i] + (a + b) // 2) & 255
            elif f == 4:
                p = a + b - c
                pa, pb, pc = abs(p - a), abs(p - b), abs(p - c)
                line[i] = (line[i] + (a if pa <= pb and pa <= pc else b if pb <= pc else c)) & 255
        rows.append(line)
        prev = line
    return w, h, bpp, rows


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("page")
    ap.add_argument("--png", help="where the screenshot goes (default: a temporary file)")
    ap.add_argument("--min-plots", type=int, default=4)
    ap.add_argument("--chromium", default=shutil.which("chromium") or shutil.which("chromium-browser") or "chromium")
    ap.add_argument("--size", default="1300,1600")
    a = ap.parse_args()
    png = a.png or tempfile.mktemp(suffix=".png")
    page = "file://" + os.path.abspath(a.page)
    profile = tempfile.mkdtemp()
    cmd = [a.chromium, "--headless=new", "--no-sandbox", "--disable-gpu", "--enable-logging=stderr", "--v=0",
           f"--user-data-dir={profile}", f"--window-size={a.size}", "--virtual-time-budget=5000",
           f"--screenshot={png}", page]
    p = subprocess.run(cmd, capture_output=True, text=True, timeout=180)
    log = p.stdout + p.stderr
    fail = []
    if p.returncode != 0 or not os.path.exists(png):
        fail.append(f"chromium exited {p.returncode} without a screenshot:\n{log[-2000:]}")
    m = re.search(r"report-self-check plots=(\d+) images=(\d+) broken=(\d+)", log)
    if not m:
        fail.append("the page's self-check did not run (no console line): JavaScript failed or the page did not load")
    else:
        plots, images, broken = map(int, m.groups())
        if plots < a.min_plots:
            fail.append(f"{plots} plots, expected at least {a.min_plots}")
        if broken:
            fail.append(f"{broken} of {images} images did not decode")
    errors = [l for l in log.splitlines() if "CONSOLE" in l and ("Uncaught" in l or "Error" in l)]
    if errors:
        fail.append("console errors:\n  " + "\n  ".join(errors[:5]))
    if os.path.exists(png):
        w, h, bpp, rows = read_png_rgb(png)
        ink = coloured = 0
        for row in rows:
            for x in range(0, w * bpp, bpp):
                r, g, b = row[x], row[x + 1], row[x + 2]
                if r < 235 or g < 235 or b < 235:
                    ink += 1
                if max(r, g, b) - min(r, g, b) > 60:
                    coloured += 1
        if ink < 0.03 * w * h:
            fail.append(f"the page is nearly blank: {ink} of {w * h} pixels are not white")
        if coloured < 2000:
            fail.append(f"only {coloured} coloured pixels: the plot lines are missing")
    if fail:
        print("check_report: FAILED\n  " + "\n  ".join(fail))
        return 1
    print(f"check_report: ok: {m.group(0)}; screenshot {w}x{h} {png}: {100 * ink / (w * h):.1f}% ink, "
          f"{coloured} coloured pixels; no console errors")
    return 0


if __name__ == "__main__":
    sys.exit(main())
