#!/usr/bin/env python3
"""Predicted step time and data-parallel efficiency at N machines (docs/distributed.md §9), from a profiled step.

The model, per step and per rank (one rank per machine):
- compute: t_c seconds (measured by `bench train`, or derived for another machine: --core-speedup);
- each phase (D, then G) all-reduces its dense gradients with a ring: 2(N-1)/N * bytes / beta + 2(N-1) * alpha per
  bucket;
- with the low-rank FC.0 exchange (full generator), FC.0 leaves the G all-reduce and all-gathers
  (N-1) * 3b * (in + out) * 4 bytes instead, plus (N-1) * alpha;
- with overlap, a phase hides at most its readiness window (how long before the end of the phase's backward its
  gradients were final, `bench train`'s ready_<phase>_window_s, as a fraction of the step); D also hides behind the
  G phase's generator passes and the backward of its cycle, identity and CAM terms (d_completion_window_s), where it
  completes; G also hides behind the next step's real
  half of the D phase (g_completion_window_s, judged before the G update waits), its last bucket too, and then
  genA2B's bytes behind genB2A's update and the next step's genB2A(realB) (g_ahead_window_s: genB2A's bucket goes
  first and the non-finite flag before genA2B's; not with the low-rank FC.0 exchange or the sharded optimizer), but
  not the FC.0 all-gather (it runs after the G all-reduce); the rest is exposed;
- with the sharded optimizer (`--shard-optimizer`, ZeRO-1), each bucket is reduce-scattered instead of all-reduced
  ((N-1)/N * bytes / beta + (N-1) * alpha, overlapped as the all-reduce), and after the update the sharded parameters
  are all-gathered with the same cost, exposed (nothing runs beside it); FC.0 under the low-rank exchange is not
  sharded;
- efficiency = t_c / (t_c + exposed communication).
Where the hosts are one machine's cores (Scripts/netns-cluster), --validate of runs made with `bench scaling
--concurrent-baseline` takes t_c from N ranks computing at once and adds the collectives' CPU, N / cores of one
rank's (the probe's allreduce_cpu_s per 25 MB bucket), which machines of their own do not pay (validate_shared).

Usage:
  Scripts/scaling-model.py --model light128 [--gbit 10] [--alpha-us 50] [--ranks 2,4,16,64,256] [--core-speedup 1]
  Scripts/scaling-model.py --table            (the docs/distributed.md §9 tables)
  Scripts/scaling-model.py --shard-table      (full 256/64: sharded optimizer with and without the low-rank FC.0)
  Scripts/scaling-model.py --summarize RUN... (runs of one configuration: efficiencies pooled over their rounds)
  Scripts/scaling-model.py --validate BASELINE RUN...   (predicted against measured step times, docs/distributed.md §8.7)
  Scripts/scaling-model.py --validate RUN... [--cores C] (runs with bench scaling's --concurrent-baseline, §8.11)
  Scripts/scaling-model.py --days             (machines for Face2Webtoon's 1M images per domain in 8 days / 1 day)
Every input is a command-line default below, with the measurement it comes from; nothing is fitted.
"""
import argparse
import math
import os

# Parameter counts from the train banner (docs/distributed.md §7); compute per step from bench train on the
# 2-core machines of this project (§8.3, training.md); readiness windows from bench train's ready_* lines at
# light 128/32 (§7.2), as fractions of the step, applied to every model (an assumption: same network shape).
MODELS = {
    # t_c measured on 2026-12-06 (2-vCPU Intel Xeon, SkylakeX kernel): light 128/32 at default depths on 1 core, the
    # median seconds_per_iter_1 of the six netns-scaling-runs baselines at 2b04412 (docs/experiments/netns/
    # noput-2b04412/second); light 256/64 on 2 threads from bench-vs-pytorch at cf9336d (the 256/64 code since is the same
    # but for the finite check); full 256/64 on 2 threads from bench train --full (the commit after 5627aab, before
    # Winograd F(4x4): conservative). Stop 26 used 1.28 and 7.67 s; before the two-chain step and Winograd: 2.48, 23.9
    # and 36.6 s.
    # d_nets: the weights of one global and one local discriminator (U-GAT-IT's Discriminator at depths 6/4, ch 32,
    # and 7/5, ch 64; bench train's params_d is twice their sum), which set how many buckets the D phase has: buckets
    # never cross a network (DataParallel.layout)
    "light128": dict(g=5_306_048, d=7_047_816, d_nets=(3_321_824, 200_800), fc_in=128, fc_out=128, t_c=0.941,
                     note="light 128/32, 1 core"),
    "light256": dict(g=21_179_776, d=112_851_720, d_nets=(53_130_176, 3_290_560), fc_in=256, fc_out=256, t_c=7.07,
                     note="light 256/64, 2 cores"),
    "full256": dict(g=557_919_616, d=112_851_720, d_nets=(53_130_176, 3_290_560), fc_in=1_048_576, fc_out=256,
                    t_c=14.39, note="full 256/64, 2 cores"),
}
# The windows of the three 2-host runs at 377d7d0 (netns, 1 Gbit/s, `bench scaling --rounds 4`: docs/experiments/
# netns/walks-377d7d0/), as fractions of their mean 1-rank step (0.942, 0.966, 1.005 s; mean 0.971 s):
# ready_d_window_s 0.027-0.029 s, ready_g_window_s 0.070-0.076 s; d_completion_window_s 0.508-0.545 s (the generators'
# forward passes and the backward of the G loss's own terms through the cycle and identity calls, before the D update
# is needed: docs/distributed.md §4, §8.9; 0.20 s of 0.941 before 8931ca7); g_completion_window_s 0.087-0.096 s (the
# next step's real half of the D phase, judged before the G update waits; 0.146 of 1.29 s at 419ad72)
WINDOW_D = 0.028 / 0.971  # seconds a D gradient byte is final before the D backward ends, per second of step
WINDOW_G = 0.073 / 0.971
WINDOW_D_COMPLETION = 0.529 / 0.971
WINDOW_G_COMPLETION = 0.093 / 0.971
# genB2A's update and the next step's genB2A(realB) behind genA2B's bucket (7147459, g_ahead_window_s 0.098, 0.090,
# 0.087 s in the three 2-host runs of docs/experiments/netns/ahead-7147459/ab-1gbit, whose 1-rank steps took 1.742,
# 1.572, 1.546 s: the 2-vCPU AMD EPYC of 2026-12-07, docs/distributed.md §8.10), as a fraction of the step
WINDOW_G_AHEAD = 0.092 / 1.620
ADA_INTERVAL = 4  # train's --ada-interval: no real half is judged ahead after the steps that adjust p
BUCKET = 25 << 20  # bytes (DDP's default, `--bucket-mb 25`)


def step_time(m, n, gbit, alpha_us, lowrank, overlap, speedup=1.0, batch=1, shard=False):
    """(step seconds, exposed communication seconds) at n ranks."""
    t_c = m["t_c"] / speedup
    if n == 1:
        return t_c, 0.0
    beta = gbit * 1e9 / 8  # bytes/s, line rate
    alpha = alpha_us * 1e-6
    ring = 2 * (n - 1) / n

    def allreduce(nbytes, buckets=None):
        buckets = buckets or max(1, math.ceil(nbytes / BUCKET))
        if shard:  # a reduce-scatter: half of the ring all-reduce
            return ring / 2 * nbytes / beta + (n - 1) * alpha * buckets, buckets
        return ring * nbytes / beta + 2 * (n - 1) * alpha * buckets, buckets

    fc = 2 * m["fc_in"] * m["fc_out"]  # both generators' FC.0 weights
    rows = 3 * batch
    # `--fc-exchange auto`: the full generator, when the all-gather sends fewer bytes than the ring all-reduce
    use_lowrank = (lowrank and m["fc_in"] > m["fc_out"]
                   and (n - 1) * rows * (m["fc_in"] + m["fc_out"]) < ring * m["fc_in"] * m["fc_out"])
    g_dense = 4 * (m["g"] - (fc if use_lowrank else 0))
    # buckets never cross a network: two global and two local discriminators, two generators of half of g_dense
    t_d, _ = allreduce(4 * m["d"], 2 * sum(math.ceil(4 * w / BUCKET) for w in m["d_nets"]))
    t_g, _ = allreduce(g_dense, 2 * math.ceil(g_dense / 2 / BUCKET))
    t_gather = 0.0
    if use_lowrank:
        t_gather = (n - 1) * 2 * rows * (m["fc_in"] + m["fc_out"]) * 4 / beta + 2 * (n - 1) * alpha
    exposed = t_d + t_g + t_gather  # the FC.0 all-gather runs after the G all-reduce: never hidden
    if shard:  # the parameter all-gather after each update: the other half of the ring, exposed
        exposed += t_d + t_g
    if overlap:
        # D: every bucket, the last one too, may hide in its readiness window and behind the G phase's generator
        # passes; G likewise in its readiness window and behind the next step's real half of the D phase, except
        # after the 1 in ADA_INTERVAL steps that adjust ADA's p (`train`'s default adaptive ADA), where its last
        # bucket (final when backward ends) cannot hide
        hide_d = min(t_d, (WINDOW_D + WINDOW_D_COMPLETION) * t_c)
        last_g = min(t_g, allreduce(min(g_dense / 2, BUCKET))[0])  # genA2B's first bucket, the last to go
        ahead = 1 - 1 / ADA_INTERVAL
        # genB2A's update and translation ahead hide only genA2B's bytes (half of the dense G), and not with the
        # low-rank FC.0 exchange or the sharded optimizer (PhaseAverage.canFinishEarly)
        behind_ahead = 0.0 if (use_lowrank or shard) else min(WINDOW_G_AHEAD * t_c, t_g / 2)
        hide_g = (ahead * min(t_g, (WINDOW_G + WINDOW_G_COMPLETION) * t_c + behind_ahead)
                  + (1 - ahead) * min(t_g - last_g, WINDOW_G * t_c))
        exposed -= max(0.0, hide_d) + max(0.0, hide_g)
    return t_c + exposed, exposed


def read_keys(path):
    """key=value tokens of a captured `Scripts/netns-cluster --bench --probe` output."""
    out = {}
    for tok in open(path).read().split():
        if "=" in tok:
            k, v = tok.split("=", 1)
            try:
                out[k] = float(v)
            except ValueError:
                pass
    return out


def wire_bytes_per_element(r):
    """Bytes one gradient element takes on the wire in a run: 4 (float32), 2 with `--grad-wire bf16`.
    bytes_per_rank_per_step over dense_bytes_per_rank_per_step (float32) times 4: exact for runs without the
    low-rank FC.0 exchange, which are all the runs validated here (light models: `auto` keeps FC.0 dense)."""
    dense = r.get("dense_bytes_per_rank_per_step", 0)
    return 4 * r["bytes_per_rank_per_step"] / dense if dense else 4


def exposed_comm(r, n, bandwidth):
    """(Mbit/s, total, exposed) communication seconds per step of one run, from its probed link (`bandwidth`: the MPI
    probe's all-reduce bus bandwidth of one 25 MB bucket, allreduce_busbw_mbit_s, or the TCP stream's link_mbit_s;
    link_rtt_ms / 2 as alpha), its phases' sizes and buckets and its readiness windows, with step_time's ring and
    overlap model."""
    mbit = r.get(bandwidth, r["link_mbit_s"])
    beta = mbit * 1e6 / 8
    alpha = r["link_rtt_ms"] / 2 * 1e-3
    ring = 2 * (n - 1) / n
    cost = {}
    wire = wire_bytes_per_element(r) / 4  # buckets hold 25 MB of float32 gradients, whatever goes on the wire
    for ph in ("d", "g"):
        nbytes, buckets = 4 * r[f"params_{ph}"], r[f"buckets_{ph}"]
        total = ring * wire * nbytes / beta + 2 * (n - 1) * alpha * buckets
        last = ring * wire * min(nbytes, BUCKET) / beta + 2 * (n - 1) * alpha
        completion = r.get(f"{ph}_completion_window_s", math.nan)
        if ph == "g" and math.isfinite(r.get("g_ahead_window_s", math.nan)):
            # then genA2B's bytes (half of G's) behind genB2A's update and the next genB2A(realB)
            completion += min(r["g_ahead_window_s"], total / 2)
        if not r.get("overlap", 1):
            hide = 0.0
        elif math.isfinite(completion):
            # D completes behind the G phase's generator passes, G behind the next step's real half of the D
            # phase: all of a phase's buckets, the last one too, may run hidden there
            hide = min(total, r[f"ready_{ph}_window_s"] + completion)
        else:  # outputs from before the phase's completion window existed: never the last bucket
            hide = min(total - last, r[f"ready_{ph}_window_s"])
        cost[ph] = (total, max(0.0, hide))
    return mbit, sum(t for t, _ in cost.values()), sum(t - h for t, h in cost.values())


def hosts(r):
    return int(next(k for k in r if k.startswith("images_per_s_") and k != "images_per_s_1").rsplit("_", 1)[1])


def print_rows(bandwidth, rows, compute_label, efficiency_label="efficiency"):
    print(f"bandwidth: {bandwidth}")
    print(f"| run | hosts | Mbit/s | {compute_label} | comm | exposed (model) | predicted s/step | measured | error "
          f"| {efficiency_label} predicted | measured |")
    print("|---|---|---|---|---|---|---|---|---|---|---|")
    for p, n, mb, t_c, tot, ex, pr, me, ep, em in rows:
        print(f"| {p.rsplit('/', 1)[-1]} | {n} | {mb:.0f} | {t_c:.3f} | {tot:.3f} | {ex:.3f} | {pr:.3f} | {me:.3f} "
              f"| {100 * (pr - me) / me:+.1f}% | {ep:.2f} | {em:.2f} |")


def validate(baseline_path, run_paths, bandwidth="allreduce_busbw_mbit_s"):
    """Predicts each shaped run's step time from its probed link and the unshaped baseline of the same host count.

    From the baseline (same hosts, unshaped links): the compute per step t_c = seconds_per_iter_N - comm_exposed_s,
    times the run's seconds_per_iter_1 over the baseline's (each run measures its own 1-rank step just before).
    The prediction is t_c + the run's exposed communication (exposed_comm), against its measured
    seconds_per_iter_N."""
    base = read_keys(baseline_path)
    rows = []
    for path in run_paths:
        r = read_keys(path)
        n = hosts(r)
        assert n == hosts(base), f"{path}: {n} hosts, baseline {hosts(base)}"
        # the baseline's compute at N ranks, scaled by this run's own 1-rank step over the baseline's: the shared
        # machine's speed moved by up to 25% between runs of one hour (1-rank steps of 1.18-1.46 s at 419ad72)
        t_c = (base[f"seconds_per_iter_{n}"] - base["comm_exposed_s"]) * r["seconds_per_iter_1"] / base[
            "seconds_per_iter_1"]
        mbit, total, exposed = exposed_comm(r, n, bandwidth)
        predicted = t_c + exposed
        rows.append((path, n, mbit, t_c, total, exposed, predicted, r[f"seconds_per_iter_{n}"],
                     r["seconds_per_iter_1"] / predicted, r["scaling_efficiency"]))
    print_rows(bandwidth, rows, "t_c (baseline, scaled)")


def validate_shared(run_paths, cores, bandwidth="allreduce_busbw_mbit_s"):
    """Predicts each run's step time from what was measured beside it, where its N hosts are one machine's `cores`
    cores (Scripts/netns-cluster, `bench scaling --concurrent-baseline`).

    - t_c: seconds_per_iter_concurrent, N 1-rank processes at once without communication, in the same rounds as
      the N-rank runs: the compute of N ranks on these cores, their sharing of cores, caches and memory included;
    - the collectives' CPU, which the hosts' compute threads lose to them: the probe's allreduce_cpu_s (one rank's
      CPU seconds for one 25 MB bucket on this link, `bench allreduce`) per 25 MB of the step's gradients on the
      wire ((params_d + params_g) * wire_bytes_per_element), N ranks of it spread over the cores: + N / cores * that;
    - + the exposed communication of exposed_comm.
    Nothing is taken from the N-rank run but its sizes and readiness windows; its own comm_cpu_s is shown beside."""
    rows = []
    for path in run_paths:
        r = read_keys(path)
        n = hosts(r)
        t_c = r["seconds_per_iter_concurrent"]
        # the probe's bucket: 25 MiB on the wire
        cpu = r["allreduce_cpu_s"] * wire_bytes_per_element(r) * (r["params_d"] + r["params_g"]) / BUCKET
        mbit, total, exposed = exposed_comm(r, n, bandwidth)
        predicted = t_c + n / cores * cpu + exposed
        measured = r[f"seconds_per_iter_{n}"]
        rows.append((path, n, mbit, t_c + n / cores * cpu, total, exposed, predicted, measured,
                     t_c / predicted, r["distribution_efficiency"]))
        if bandwidth == "allreduce_busbw_mbit_s":  # once, not per bandwidth
            print(f"{path.rsplit('/', 1)[-1]}: collectives' CPU per step and rank {cpu:.3f} s from the probe "
                  f"(the run's own comm_cpu_s {r.get('comm_cpu_s', math.nan):.3f}), + {n / cores * cpu:.3f} s on "
                  f"{cores} cores; without it {t_c + exposed:.3f} s "
                  f"({100 * (t_c + exposed - measured) / measured:+.1f}%)")
    print_rows(bandwidth, rows, "t_c (N at once) + CPU", "distribution_efficiency")


def summarize(run_paths):
    """Pools the rounds of `bench scaling --rounds R [--concurrent-baseline]` runs of one configuration: each run's
    efficiency, and over all rounds the mean, standard deviation and a 95% interval for the mean (Student's t). The
    rounds are taken as independent samples; on a machine whose speed drifts over minutes they are not quite."""
    # two-sided 95% Student's t quantiles by degrees of freedom (beyond 40: the normal's 1.96 is within 2%)
    t95 = {1: 12.71, 2: 4.30, 3: 3.18, 4: 2.78, 5: 2.57, 6: 2.45, 7: 2.36, 8: 2.31, 9: 2.26, 10: 2.23, 12: 2.18,
           15: 2.13, 20: 2.09, 25: 2.06, 30: 2.04, 40: 2.02}
    for kind in ("scaling_efficiency", "distribution_efficiency"):
        per_run, rounds = [], []
        for path in run_paths:
            text = open(path).read().split()
            run = [float(tok.split("=", 1)[1]) for tok in text if tok.startswith(kind + "=")]
            pooled = [tok.split("=", 1)[1] for tok in text if tok.startswith(kind + "_rounds=")]
            if run:
                per_run.append(run[-1])
            if pooled:
                rounds += [float(v) for v in pooled[-1].split(",")]
        if len(rounds) < 2:
            print(f"{kind}: fewer than 2 rounds in these runs")
            continue
        n = len(rounds)
        mean = sum(rounds) / n
        sd = math.sqrt(sum((v - mean) ** 2 for v in rounds) / (n - 1))
        t = t95[max(k for k in t95 if k <= n - 1)] if n - 1 <= 40 else 1.96
        half = t * sd / math.sqrt(n)
        print(f"{kind}: runs {', '.join(f'{v:.3f}' for v in per_run)} (mean {sum(per_run) / len(per_run):.3f}); "
              f"{n} rounds: mean {mean:.3f}, sd {sd:.3f}, 95% interval {mean - half:.3f}-{mean + half:.3f}")


def row(m, n, gbit, alpha_us, speedup):
    before, _ = step_time(m, n, gbit, alpha_us, lowrank=False, overlap=False, speedup=speedup)
    after, _ = step_time(m, n, gbit, alpha_us, lowrank=True, overlap=True, speedup=speedup)
    t_c = m["t_c"] / speedup
    return before, t_c / before, after, t_c / after


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--model", choices=sorted(MODELS), default="light128")
    ap.add_argument("--gbit", type=float, default=10)
    ap.add_argument("--alpha-us", type=float, default=50, help="per-message latency (assumed; probe it with netns-cluster)")
    ap.add_argument("--ranks", default="2,4,16,64,256")
    ap.add_argument("--core-speedup", type=float, default=1.0,
                    help="compute speed relative to the measured machine (e.g. 12.8 for a 32-core machine, see --table)")
    ap.add_argument("--table", action="store_true")
    ap.add_argument("--days", action="store_true")
    ap.add_argument("--shard-table", action="store_true")
    ap.add_argument("--validate", nargs="+", metavar="FILE",
                    help="the unshaped baseline output, then shaped runs with the same host count; or only runs "
                         "made with `bench scaling --concurrent-baseline` (each its own baseline)")
    ap.add_argument("--cores", type=int, default=0,
                    help="the cores the emulated hosts shared (--validate of --concurrent-baseline runs; default: "
                         "the runs' machine_cores= (Scripts/netns-cluster prints it), else this machine's)")
    ap.add_argument("--summarize", nargs="+", metavar="FILE",
                    help="runs of one configuration made with `bench scaling --rounds R`: their efficiencies, and "
                         "the mean and 95%% interval over all their rounds")
    a = ap.parse_args()
    if a.summarize:
        summarize(a.summarize)
        return
    if a.validate:
        runs = [read_keys(p) for p in a.validate]
        for bw in ("allreduce_busbw_mbit_s", "link_mbit_s"):
            if all("seconds_per_iter_concurrent" in r for r in runs):
                cores = a.cores or int(runs[0].get("machine_cores", 0))
                if not cores:
                    cores = os.cpu_count()
                    if bw == "allreduce_busbw_mbit_s":
                        print(f"(no machine_cores= in {a.validate[0]} and no --cores: {cores}, this machine's)")
                validate_shared(a.validate, cores, bw)
            elif any("seconds_per_iter_concurrent" in r for r in runs):
                raise SystemExit("--validate: either every run has the concurrent baseline or none does")
            else:
                validate(a.validate[0], a.validate[1:], bw)
        return
    # A 32-core machine: the measured 2-core step spread over 32 cores at an assumed 80 % threading efficiency
    # (light 128/32 was measured on 1 core): speedup = cores / measured cores * 0.8.
    fast = {"light128": 32 * 0.8, "light256": 16 * 0.8, "full256": 16 * 0.8}
    if a.table:
        for name, m in MODELS.items():
            for label, sp in [("measured machine", 1.0), ("32-core machine (derived)", fast[name])]:
                print(f"\n{m['note']}, {label}: t_c = {m['t_c'] / sp:.3g} s")
                print("| N | 10 Gbit/s before | after | 100 Gbit/s before | after |")
                print("|---|---|---|---|---|")
                for n in [4, 16, 64, 256]:
                    cells = []
                    for gbit in (10, 100):
                        b, eb, af, ea = row(m, n, gbit, a.alpha_us, sp)
                        cells += [f"{b:.3g} s ({eb:.2f})", f"{af:.3g} s ({ea:.2f})"]
                    print(f"| {n} | " + " | ".join(cells) + " |")
        return
    if a.shard_table:
        m = MODELS["full256"]
        for label, sp in [("measured machine", 1.0), ("32-core machine (derived)", fast["full256"])]:
            print(f"\n{m['note']}, {label}: t_c = {m['t_c'] / sp:.3g} s; overlap on; step seconds (efficiency)")
            print("| N | Gbit/s | dense FC.0 | dense FC.0 + shard | low-rank FC.0 | low-rank FC.0 + shard |")
            print("|---|---|---|---|---|---|")
            for n in [4, 16, 64, 256]:
                for gbit in (10, 100):
                    cells = []
                    for lowrank in (False, True):
                        for shard in (False, True):
                            t, _ = step_time(m, n, gbit, a.alpha_us, lowrank, True, speedup=sp, shard=shard)
                            cells.append(f"{t:.3g} s ({m['t_c'] / sp / t:.2f})")
                    print(f"| {n} | {gbit:g} | " + " | ".join(cells) + " |")
        return
    if a.days:
        m = MODELS["full256"]
        images = 1_000_000
        print("full 256/64, 1M images per domain, global batch N at statistical efficiency 1.0 (assumed; docs/")
        print("convergence.md measured global batches 4 and 8 at 64 px), lowrank + overlap, 10 and 100 Gbit/s:")
        for label, sp in [("2-core machines as measured", 1.0), ("32-core machines (derived)", fast["full256"])]:
            for gbit in (10, 100):
                out = []
                for days in (8, 1):
                    n = 1
                    while n <= 100000:
                        t, _ = step_time(m, n, gbit, a.alpha_us, True, True, sp)
                        if images / n * t <= days * 86400:
                            break
                        n += 1
                    out.append(f"below {days} day{'s' if days > 1 else ''}: {n if n <= 100000 else '>100000'}")
                one = images * m["t_c"] / sp / 86400
                print(f"  {label}, {gbit:g} Gbit/s: one machine {one:.0f} days; " + ", ".join(out))
        return
    m = MODELS[a.model]
    print(f"{m['note']}: t_c = {m['t_c'] / a.core_speedup:.3g} s, {a.gbit:g} Gbit/s, alpha {a.alpha_us:g} us")
    for n in [int(x) for x in a.ranks.split(",")]:
        b, eb, af, ea = row(m, n, a.gbit, a.alpha_us, a.core_speedup)
        print(f"N={n}: before {b:.3f} s/step (efficiency {eb:.2f}), lowrank+overlap {af:.3f} s/step ({ea:.2f})")


if __name__ == "__main__":
    main()
