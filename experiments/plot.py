#!/usr/bin/env python3
"""Figures from moesim HDF5 results files (schema: docs/results-format.md).

    python3 experiments/plot.py results.h5 [more.h5 ...] --out figs/

For each file, makes whichever of these figures the file supports, as
<out>/<file stem>_<figure>.png, and says which it skipped and why:

    breakdown        per-GPU time breakdown, stacked bars       (/breakdown)
    throughput_ttft  throughput vs TTFT over a rate sweep        (/sweep)
    links            link-utilisation heat map, src x dst        (/links)
    experts          expert load per MoE layer, and imbalance   (/experts)

Needs Debian's python3-h5py and python3-matplotlib (Agg backend: no display,
no network). Exit status: 0 files read (even if every figure was skipped),
2 missing/unreadable file or bad arguments, 77 a Python module is missing.
"""

import argparse
import os
import re
import sys

EXIT_BAD_INPUT = 2
EXIT_MISSING_MODULE = 77  # the automake/ctest convention for "skipped"
DEBIAN_PYTHON = "/usr/bin/python3"

try:
    import h5py
    import numpy as np
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.colors import Normalize
    from matplotlib.ticker import MaxNLocator
except ImportError as missing:
    # Debian installs python3-h5py and python3-matplotlib for its own
    # interpreter only; a pyenv/venv python3 first on PATH does not see them.
    if (
        os.path.exists(DEBIAN_PYTHON)
        and os.path.realpath(sys.executable) != os.path.realpath(DEBIAN_PYTHON)
        and not os.environ.get("MOESIM_PLOT_REEXEC")
    ):
        os.environ["MOESIM_PLOT_REEXEC"] = "1"
        os.execv(DEBIAN_PYTHON, [DEBIAN_PYTHON] + sys.argv)
    sys.stderr.write(
        f"plot.py: {missing}; install Debian's python3-h5py and python3-matplotlib "
        "(scripts/setup does)\n"
    )
    sys.exit(EXIT_MISSING_MODULE)


class Skip(Exception):
    """A figure the file cannot support; the message says why."""


# ---------------------------------------------------------------------------
# Reading the schema


def read_table(f, path):
    """A table (docs/results-format.md): dict column -> numpy array, in order."""
    if path not in f:
        raise Skip(f"the file has no {path} table")
    group = f[path]
    if not isinstance(group, h5py.Group) or "columns" not in group.attrs:
        raise Skip(f"{path} is not a table (no 'columns' attribute)")
    names = [n.decode() if isinstance(n, bytes) else str(n) for n in np.atleast_1d(group.attrs["columns"])]
    table = {}
    for name in names:
        if name not in group:
            raise Skip(f"{path} lists column '{name}' but has no such dataset")
        ds = group[name]
        table[name] = ds.asstr()[()] if h5py.check_string_dtype(ds.dtype) is not None else ds[()]
    return table


def require(table, path, columns):
    missing = [c for c in columns if c not in table]
    if missing:
        raise Skip(f"{path} lacks column(s) {', '.join(missing)}")


def natural_key(name):
    """'gpu10' after 'gpu9'."""
    return [int(part) if part.isdigit() else part for part in re.split(r"(\d+)", str(name))]


def save(fig, out_dir, stem, figure):
    os.makedirs(out_dir, exist_ok=True)
    path = os.path.join(out_dir, f"{stem}_{figure}.png")
    fig.savefig(path, dpi=120, bbox_inches="tight")
    plt.close(fig)
    return path


# ---------------------------------------------------------------------------
# Figures. Each returns the figure or raises Skip.

BREAKDOWN_PARTS = [
    ("compute_s", "compute", "#4c72b0"),
    ("communication_exposed_s", "exposed communication", "#dd8452"),
    ("all_to_all_s", "all-to-all", "#c44e52"),
    ("bubble_s", "pipeline bubble", "#8172b3"),
    ("idle_s", "idle", "#bbbbbb"),
]


def fig_breakdown(f):
    t = read_table(f, "/breakdown")
    require(t, "/breakdown", ["gpu"] + [c for c, _, _ in BREAKDOWN_PARTS])
    gpus = np.asarray(t["gpu"])
    if gpus.size == 0:
        raise Skip("/breakdown has no rows")
    order = np.argsort(gpus, kind="stable")
    x = np.arange(gpus.size)
    fig, ax = plt.subplots(figsize=(max(6.0, min(0.35 * gpus.size, 24.0)), 4.5))
    bottom = np.zeros(gpus.size)
    width = 0.8 if gpus.size <= 64 else 1.0
    for column, label, colour in BREAKDOWN_PARTS:
        values = np.asarray(t[column], dtype=float)[order]
        ax.bar(x, values, width, bottom=bottom, label=label, color=colour, linewidth=0)
        bottom += values
    ax.set_xlabel("GPU")
    ax.set_ylabel("time (s)")
    ax.set_title("Per-GPU time breakdown")
    if gpus.size <= 64:
        ax.set_xticks(x)
        ax.set_xticklabels([str(g) for g in gpus[order]], fontsize=7)
    ax.set_xlim(-0.5, gpus.size - 0.5)
    ax.legend(loc="upper center", bbox_to_anchor=(0.5, -0.15), ncol=5, fontsize=8, frameon=False)
    return fig


def fig_throughput_ttft(f):
    t = read_table(f, "/sweep")
    if "workload.rate" not in t:
        raise Skip("the sweep did not vary workload.rate")
    throughput = next(
        (c for c in ("throughput.output_tokens_per_s", "throughput.tokens_per_s") if c in t), None
    )
    if throughput is None:
        raise Skip("/sweep lacks throughput.output_tokens_per_s and throughput.tokens_per_s")
    require(t, "/sweep", ["ttft_s.p50", "ttft_s.p99"])
    rate = np.asarray(t["workload.rate"], dtype=float)
    if rate.size == 0:
        raise Skip("/sweep has no rows")
    order = np.argsort(rate, kind="stable")
    rate = rate[order]
    tput = np.asarray(t[throughput], dtype=float)[order]
    p50 = np.asarray(t["ttft_s.p50"], dtype=float)[order]
    p99 = np.asarray(t["ttft_s.p99"], dtype=float)[order]
    unit = "output tokens/s" if throughput.endswith("output_tokens_per_s") else "tokens/s"

    fig, (left, right) = plt.subplots(1, 2, figsize=(11, 4.2))
    left.plot(tput, p50 * 1e3, "o-", label="TTFT p50")
    left.plot(tput, p99 * 1e3, "s--", label="TTFT p99")
    for x, y, r in zip(tput, p99 * 1e3, rate):
        if np.isfinite(x) and np.isfinite(y):
            left.annotate(f"{r:g}/s", (x, y), textcoords="offset points", xytext=(4, 4), fontsize=7)
    left.set_xlabel(f"achieved throughput ({unit})")
    left.set_ylabel("TTFT (ms)")
    left.set_yscale("log")
    left.set_title("Throughput vs TTFT (labels: offered rate)")
    left.legend(fontsize=8)
    right.plot(rate, tput, "o-")
    right.set_xlabel("offered rate (requests/s)")
    right.set_ylabel(f"achieved throughput ({unit})")
    right.set_title("Throughput vs offered load")
    for ax in (left, right):
        ax.grid(alpha=0.3)
    return fig


def fig_links(f):
    t = read_table(f, "/links")
    require(t, "/links", ["src", "dst", "utilisation"])
    src = [str(s) for s in t["src"]]
    dst = [str(d) for d in t["dst"]]
    if not src:
        raise Skip("/links has no rows")
    util = np.asarray(t["utilisation"], dtype=float)
    rows = sorted(set(src), key=natural_key)
    cols = sorted(set(dst), key=natural_key)
    ri = {n: i for i, n in enumerate(rows)}
    ci = {n: i for i, n in enumerate(cols)}
    grid = np.full((len(rows), len(cols)), np.nan)
    for s, d, u in zip(src, dst, util):
        # Parallel links between one pair: show the busiest.
        cur = grid[ri[s], ci[d]]
        grid[ri[s], ci[d]] = u if np.isnan(cur) else max(cur, u)
    fig, ax = plt.subplots(figsize=(min(2.0 + 0.3 * len(cols), 20.0), min(1.5 + 0.3 * len(rows), 20.0)))
    cmap = plt.get_cmap("viridis").copy()
    cmap.set_bad("#f0f0f0")  # no link between the pair
    image = ax.imshow(np.ma.masked_invalid(grid), cmap=cmap, norm=Normalize(0.0, 1.0), aspect="auto",
                      interpolation="nearest")
    fig.colorbar(image, ax=ax, label="utilisation")
    if len(cols) <= 80:
        ax.set_xticks(range(len(cols)))
        ax.set_xticklabels(cols, rotation=90, fontsize=6)
    if len(rows) <= 80:
        ax.set_yticks(range(len(rows)))
        ax.set_yticklabels(rows, fontsize=6)
    ax.set_xlabel("destination")
    ax.set_ylabel("source")
    ax.set_title(f"Link utilisation ({len(util)} links, max {np.nanmax(util):.2f})")
    return fig


def fig_experts(f):
    if "/experts/load" not in f:
        raise Skip("the file has no /experts/load dataset")
    load = np.asarray(f["/experts/load"][()], dtype=float)
    if load.ndim != 2 or load.size == 0:
        raise Skip(f"/experts/load has shape {load.shape}, expected layers x experts")
    imbalance = None
    if "/experts/imbalance" in f:
        imbalance = np.asarray(f["/experts/imbalance"][()], dtype=float)
    elif load.shape[1] > 0:
        mean = load.mean(axis=1)
        imbalance = np.divide(load.max(axis=1), mean, out=np.full(mean.shape, np.nan), where=mean > 0)
    layers, experts = load.shape
    fig, (top, bottom) = plt.subplots(
        2, 1, figsize=(min(3.0 + 0.12 * experts, 20.0), 3.0 + min(0.15 * layers, 8.0) + 2.0),
        gridspec_kw={"height_ratios": [3, 1]},
    )
    image = top.imshow(load, aspect="auto", interpolation="nearest", cmap="magma")
    fig.colorbar(image, ax=top, label="tokens")
    top.set_xlabel("expert")
    top.set_ylabel("MoE layer")
    top.set_title("Tokens routed to each expert")
    bottom.bar(np.arange(layers), imbalance, color="#c44e52")
    bottom.axhline(1.0, color="black", linewidth=0.8)
    bottom.set_xlabel("MoE layer")
    bottom.set_ylabel("max / mean")
    bottom.set_title("Load imbalance per layer")
    bottom.set_xlim(-0.5, layers - 0.5)
    for axis in (top.xaxis, top.yaxis, bottom.xaxis):
        axis.set_major_locator(MaxNLocator(integer=True))
    fig.tight_layout()
    return fig


FIGURES = [
    ("breakdown", fig_breakdown),
    ("throughput_ttft", fig_throughput_ttft),
    ("links", fig_links),
    ("experts", fig_experts),
]


def plot_file(path, out_dir):
    stem = os.path.splitext(os.path.basename(path))[0]
    made = 0
    with h5py.File(path, "r") as f:
        for name, make in FIGURES:
            try:
                fig = make(f)
            except Skip as why:
                print(f"{path}: skipped {name}: {why}")
                continue
            except (KeyError, ValueError, TypeError, IndexError) as error:
                # Data of an unexpected shape: report it, go on with the rest.
                print(f"{path}: skipped {name}: cannot plot it ({type(error).__name__}: {error})")
                plt.close("all")
                continue
            print(f"{path}: wrote {save(fig, out_dir, stem, name)}")
            made += 1
    return made


def main(argv):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("files", nargs="+", metavar="RESULTS.h5", help="moesim HDF5 results files")
    parser.add_argument("--out", "-o", default="figs", help="directory for the PNG files (default: figs)")
    args = parser.parse_args(argv)
    for path in args.files:
        if not os.path.isfile(path):
            sys.stderr.write(f"plot.py: '{path}' does not exist\n")
            return EXIT_BAD_INPUT
        if not h5py.is_hdf5(path):
            sys.stderr.write(f"plot.py: '{path}' is not an HDF5 file\n")
            return EXIT_BAD_INPUT
    for path in args.files:
        try:
            plot_file(path, args.out)
        except OSError as error:
            sys.stderr.write(f"plot.py: cannot read '{path}': {error}\n")
            return EXIT_BAD_INPUT
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
