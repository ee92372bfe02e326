#!/usr/bin/env python3
"""Plots of the convergence study (docs/convergence.md) from the runs' metrics files.

Usage: plot.py --run NAME=PATH ... [--reference NAME] [--csv-dir DIR] [--out DIR]
PATH is a run folder of ours (its metrics.jsonl; KID rows are the lines with a "kid" key) or a kid.csv written by
pytorch_reference.py (columns run,step,images_seen,elapsed_seconds,kid,kid_std). Writes NAME.csv per run into
--csv-dir, kid_vs_images.png and kid_vs_wallclock.png into --out, and prints a Markdown summary with the images each
run needed to reach the reference run's final KID (first crossing, linear between KID points). Needs matplotlib.

--seconds-per-step NAME=S (repeatable) also draws kid_vs_hours.png: KID against step × S, the hours each run takes at
a benchmarked step time S (measured for 1 and 2 ranks, projected for more; docs/convergence.md says which), instead
of the elapsed seconds the runs logged on a shared, loaded machine.
"""
import argparse, csv, json, os

COLUMNS = ["run", "step", "images_seen", "elapsed_seconds", "kid", "kid_std"]


def kid_rows(name, path):
    if path.endswith(".csv"):
        with open(path) as f:
            return [{k: float(r[k]) for k in COLUMNS[1:]} for r in csv.DictReader(f) if r.get("kid")]
    rows = []
    with open(os.path.join(path, "metrics.jsonl")) as f:
        for line in f:
            r = json.loads(line)
            if isinstance(r.get("kid"), (int, float)):
                rows.append({k: float(r[k]) for k in COLUMNS[1:]})
    # a step redone after a resume replaces the earlier row
    return sorted({r["step"]: r for r in rows}.values(), key=lambda r: r["step"])


def images_to_reach(rows, target):
    prev = None
    for r in rows:
        if r["kid"] <= target:
            if prev is None:
                return r["images_seen"]
            t = (prev["kid"] - target) / (prev["kid"] - r["kid"])
            return prev["images_seen"] + t * (r["images_seen"] - prev["images_seen"])
        prev = r
    return None


def images_staying_below(rows, target):
    """The first KID point from which every later point is at or below target (less sensitive to one lucky point)."""
    for i, r in enumerate(rows):
        if all(x["kid"] <= target for x in rows[i:]):
            return r["images_seen"]
    return None


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--run", action="append", required=True, help="NAME=PATH")
    ap.add_argument("--reference")
    ap.add_argument("--csv-dir")
    ap.add_argument("--out")
    ap.add_argument("--seconds-per-step", action="append", default=[], help="NAME=S: benchmarked seconds per step")
    a = ap.parse_args()
    step_seconds = {k: float(v) for k, v in (x.split("=", 1) for x in a.seconds_per_step)}
    runs = {}
    for spec in a.run:
        name, path = spec.split("=", 1)
        runs[name] = kid_rows(name, path)
    if a.csv_dir:
        os.makedirs(a.csv_dir, exist_ok=True)
        for name, rows in runs.items():
            with open(os.path.join(a.csv_dir, f"{name}.csv"), "w", newline="") as f:
                w = csv.writer(f)
                w.writerow(COLUMNS)
                for r in rows:
                    w.writerow([name, int(r["step"]), int(r["images_seen"]), f"{r['elapsed_seconds']:.1f}",
                                f"{r['kid']:.6f}", f"{r['kid_std']:.6f}"])
    if a.out:
        import matplotlib
        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
        os.makedirs(a.out, exist_ok=True)
        plots = [("images_seen", 1, "images seen per domain", "kid_vs_images.png"),
                 ("elapsed_seconds", 3600, "hours of training as logged (1 core per run, loaded machine)", "kid_vs_wallclock.png")]
        if step_seconds:
            plots.append(("bench_seconds", 3600, "hours at the benchmarked seconds per step (1 core per rank)", "kid_vs_hours.png"))
        for key, scale, label, fname in plots:
            fig, ax = plt.subplots(figsize=(7, 4.5))
            for name, rows in runs.items():
                if key == "bench_seconds" and name not in step_seconds:
                    continue
                xs = [r["step"] * step_seconds[name] if key == "bench_seconds" else r[key] for r in rows]
                ax.errorbar([x / scale for x in xs], [r["kid"] for r in rows], yerr=[r["kid_std"] for r in rows],
                            marker="o", ms=3, capsize=2, label=name)
            ax.set_xlabel(label)
            ax.set_ylabel("KID (genA2B(testA) vs testB, 10 subsets of 50)")
            ax.grid(alpha=0.3)
            ax.legend()
            fig.tight_layout()
            fig.savefig(os.path.join(a.out, fname), dpi=110)
    ref = runs.get(a.reference) if a.reference else None
    target = ref[-1]["kid"] if ref else None
    print("| run | images | final KID ± std | best KID | first reaches the reference's final KID (images, ratio) "
          "| stays below it from (images, ratio) |")
    print("|---|---|---|---|---|---|")
    for name, rows in runs.items():
        last = rows[-1]
        cells = []
        for reach in ([images_to_reach(rows, target), images_staying_below(rows, target)] if target is not None else [None, None]):
            cells.append(f"{reach:.0f}, {reach / ref[-1]['images_seen']:.2f}" if reach is not None else "not reached")
        print(f"| {name} | {int(last['images_seen'])} | {last['kid']:.4f} ± {last['kid_std']:.4f} | "
              f"{min(r['kid'] for r in rows):.4f} | {cells[0]} | {cells[1]} |")


if __name__ == "__main__":
    main()
