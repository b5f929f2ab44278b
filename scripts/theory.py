"""Measure the statements of docs/theory.md: 1-D quadratures, then one ring8 training run.

    python scripts/theory.py --out docs/images            # the figures and numbers in docs/theory.md
    python scripts/theory.py --out /tmp/t --steps 40 --every 20   # a seconds-long smoke run

Part 1 (no training, about a second): p_data = N(0, 1) and p_g = N(mu, 1) for several mu. Every
number is an adaptive quadrature (scipy.integrate.quad): JS(p_data || p_g); the generator's
gradient d/dmu for the minimax loss E_g log(1 - D*) and the non-saturating loss E_g[-log D*] with
D* frozen at the current mu (the score-function form E_g[loss(x) (x - mu)]); the derivatives of
2 JS and of KL(p_g || p_data) - 2 JS by central differences; W1 = int |F_data - F_g| and its
derivative; and W1 again from the dual side, E_data f* - E_g f* with the optimal 1-Lipschitz
critic, by Monte Carlo. The theory says the columns pair up; the table shows by how much they do.

Part 2: ``ganforge``'s Trainer on ring8 with the non-saturating loss, plain MLPs, EMA off (so the
generator measured is the one the discriminator plays against), one thread. Every ``--every``
steps, with the networks in eval mode and a separate random stream (training's own is untouched):

- 2,000 generated samples -> a Gaussian KDE (bandwidth by leave-one-out likelihood) q_hat;
- JS(p_data || q_hat) by Monte Carlo, with ``--n-eval`` samples of the exact mixture and of q_hat;
- the lower bound 1/2 (V(D) + log 4) <= JS that the trained discriminator certifies;
- PacGAN's mode counts on the 2,000 samples (ganforge.metrics.modes).

Before training it measures the KDE floor: the same JS with q_hat fitted to 2,000 *real* samples,
what a perfect generator would score. At the end it plots sigmoid(D(x)) against D*(x) =
p_data / (p_data + q_hat) (theory_dstar.png) and the JS curves (theory_js.png), and prints every
number docs/theory.md quotes. ``--json FILE`` writes them too.
"""

from __future__ import annotations

import os

for _var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_var, "1")  # numpy's BLAS on one core too: measurements stay light

import argparse
import json
import math
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from scipy import integrate, stats

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from divergence import (  # noqa: E402  (scripts/divergence.py, beside this file)
    GaussianKde,
    gaussian_kde,
    js_divergence,
    js_lower_bound,
    mixture_log_density,
    optimal_discriminator,
)

LOG2 = math.log(2.0)


# -- part 1: the three statements in 1-D, by quadrature ---------------------------------------------


def _quad(f, lo: float, hi: float, points=None) -> float:  # type: ignore[no-untyped-def]
    value, _ = integrate.quad(f, lo, hi, points=points, limit=500, epsabs=1e-14, epsrel=1e-12)
    return value


def js_1d(mu: float) -> float:
    """JS(N(0, 1) || N(mu, 1)) by quadrature, in log space."""

    def integrand(x: float) -> float:
        a, b = stats.norm.logpdf(x), stats.norm.logpdf(x, mu)
        mid = np.logaddexp(a, b) - LOG2
        return 0.5 * (math.exp(a) * (a - mid) + math.exp(b) * (b - mid))

    return _quad(integrand, min(0, mu) - 15, max(0, mu) + 15, points=sorted({0.0, mu}))


def w1_1d(mu: float) -> float:
    """W1(N(0, 1), N(mu, 1)) = int |F_data - F_g| by quadrature."""
    return _quad(lambda x: abs(stats.norm.cdf(x) - stats.norm.cdf(x, mu)), min(0, mu) - 15, max(0, mu) + 15,
                 points=sorted({0.0, mu}))


def w1_dual_1d(mu: float, n: int = 200_000, seed: int = 0) -> tuple[float, float]:
    """E_data f* - E_g f* by Monte Carlo with the optimal 1-Lipschitz critic of 1-D
    (f*' = sign(F_g - F_data), tabulated on a fine grid): Kantorovich-Rubinstein's dual side.
    Returns (estimate, standard error)."""
    rng = np.random.default_rng(seed)
    grid = np.linspace(min(0, mu) - 12, max(0, mu) + 12, 200_001)
    slope = np.sign(stats.norm.cdf(grid[:-1], mu) - stats.norm.cdf(grid[:-1]))
    critic = np.concatenate([[0.0], np.cumsum(slope * np.diff(grid))])
    fp = np.interp(rng.normal(0, 1, n), grid, critic)
    fq = np.interp(rng.normal(mu, 1, n), grid, critic)
    return float(fp.mean() - fq.mean()), math.sqrt((fp.var() + fq.var()) / n)


def generator_gradients(mu: float) -> dict[str, float]:
    """d/dmu of each generator loss with D* frozen at mu, and of the divergences it should match."""
    def logit(x: float) -> float:  # log p_data - log p_g: D* = sigmoid(logit)
        return float(stats.norm.logpdf(x) - stats.norm.logpdf(x, mu))

    def score_gradient(loss) -> float:  # type: ignore[no-untyped-def]
        # d/dmu E_{x ~ N(mu, 1)} loss(x) = E[loss(x) (x - mu)], loss held fixed
        return _quad(lambda x: stats.norm.pdf(x, mu) * loss(x) * (x - mu), mu - 15, mu + 15, points=[mu])

    eps = 1e-4
    d_js = (js_1d(mu + eps) - js_1d(mu - eps)) / (2 * eps)
    dual, dual_se = w1_dual_1d(mu, seed=round(1000 * mu))
    return {
        "mu": mu,
        "js": js_1d(mu),
        "grad_minimax": score_gradient(lambda x: -np.logaddexp(0.0, logit(x))),  # log(1 - D*)
        "d_2js": 2 * d_js,
        "grad_nonsat": score_gradient(lambda x: np.logaddexp(0.0, -logit(x))),  # -log D*
        "d_kl_minus_2js": mu - 2 * d_js,  # KL(N(mu, 1) || N(0, 1)) = mu^2 / 2
        "w1": w1_1d(mu),
        "w1_dual": dual,
        "w1_dual_se": dual_se,
        "d_w1": (w1_1d(mu + eps) - w1_1d(mu - eps)) / (2 * eps),
    }


def part1(mus: list[float]) -> list[dict[str, float]]:
    rows = [generator_gradients(mu) for mu in mus]
    print("Part 1: p_data = N(0, 1), p_g = N(mu, 1); quadratures except the last column (Monte Carlo, "
          "200,000 samples a side); nats")
    print(f"{'mu':>5} {'JS':>8} | {'minimax grad':>13} {'d(2JS)':>12} | {'nonsat grad':>11} "
          f"{'d(KL-2JS)':>10} | {'W1':>6} {'dW1':>6} {'W1 dual (MC)':>16}")
    for r in rows:
        print(f"{r['mu']:5.1f} {r['js']:8.5f} | {r['grad_minimax']:13.4e} {r['d_2js']:12.4e} | "
              f"{r['grad_nonsat']:11.5f} {r['d_kl_minus_2js']:10.5f} | {r['w1']:6.3f} {r['d_w1']:6.3f} "
              f"{r['w1_dual']:7.4f} +- {r['w1_dual_se']:.4f}")
    gaps = {"minimax": max(abs(r["grad_minimax"] - r["d_2js"]) for r in rows),
            "nonsat": max(abs(r["grad_nonsat"] - r["d_kl_minus_2js"]) for r in rows),
            "w1_dual_z": max(abs(r["w1_dual"] - r["w1"]) / r["w1_dual_se"] for r in rows)}
    print(f"largest |G gradient - divergence gradient|: minimax {gaps['minimax']:.1e}, non-saturating "
          f"{gaps['nonsat']:.1e}; largest |dual - W1| {gaps['w1_dual_z']:.1f} standard errors")
    return rows


# -- part 2: ring8 ----------------------------------------------------------------------------------


def fit_kde(samples: np.ndarray) -> GaussianKde:
    return gaussian_kde(samples)  # bandwidth by leave-one-out likelihood


def measure(trainer, data, rng_t, rng_np, n_kde: int, n_eval: int) -> dict[str, float]:  # type: ignore[no-untyped-def]
    """JS(p_data || KDE of the generator), the discriminator's JS lower bound and mode counts."""
    import torch

    from ganforge.metrics.modes import mode_stats

    g, d = trainer.generator, trainer.discriminator
    g.eval(), d.eval()
    try:
        with torch.no_grad():
            z_dim = trainer.config.z_dim
            fake = g(torch.randn(n_kde, z_dim, generator=rng_t)).double().numpy()
            real = data.sample(n_eval, rng_t).double()
            fresh_fake = g(torch.randn(n_eval, z_dim, generator=rng_t))
            bound = js_lower_bound(d(real.float()).numpy(), d(fresh_fake).numpy())
    finally:
        g.train(), d.train()
    kde = fit_kde(fake)
    log_p = lambda x: mixture_log_density(x, data.modes, data.std)  # noqa: E731
    js = js_divergence(real.numpy(), kde.sample(n_eval, rng_np), log_p, kde)
    modes = mode_stats(torch.from_numpy(fake), data.modes, data.std)
    return {"step": trainer.step, "js": js.value, "js_se": js.stderr, "bound": bound.value,
            "bound_se": bound.stderr, "bandwidth": kde.bandwidth, "modes": modes["modes"],
            "high_quality": modes["high_quality"], "_kde": kde}  # type: ignore[dict-item]


def dstar_comparison(trainer, data, kde: GaussianKde, rng_t, rng_np,  # type: ignore[no-untyped-def]
                     n: int) -> dict[str, float]:
    """How close sigmoid(D) is to D* where it matters: on samples of p_data and of q_hat."""
    import torch

    real = data.sample(n, rng_t).double().numpy()
    fake = kde.sample(n, rng_np)
    out: dict[str, float] = {}
    d = trainer.discriminator.eval()
    with torch.no_grad():
        for name, x in (("data", real), ("gen", fake)):
            trained = torch.sigmoid(d(torch.from_numpy(x).float())).double().numpy()
            optimal = optimal_discriminator(mixture_log_density(x, data.modes, data.std), kde(x))
            out[f"mean_sigmoid_d_on_{name}"] = float(trained.mean())
            out[f"mean_dstar_on_{name}"] = float(optimal.mean())
            out[f"mean_abs_gap_on_{name}"] = float(np.abs(trained - optimal).mean())
    d.train()
    return out


def plot_dstar(path: Path, trainer, data, kde: GaussianKde,  # type: ignore[no-untyped-def]
               fake: np.ndarray) -> dict[str, float]:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import torch

    modes = data.modes.double().numpy()
    d = trainer.discriminator.eval()

    def sig_d(x: np.ndarray) -> np.ndarray:
        with torch.no_grad():
            return torch.sigmoid(d(torch.from_numpy(x).float())).double().numpy()

    def log_densities(x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        return mixture_log_density(x, data.modes, data.std), kde(x)

    # Heat maps on [-1.5, 1.5]^2.
    side = np.linspace(-1.5, 1.5, 301)  # 0.01 apart: one data std
    xs, ys = np.meshgrid(side, side, indexing="xy")
    grid = np.stack([xs.ravel(), ys.ravel()], 1)
    lp, lq = log_densities(grid)
    dstar_map = optimal_discriminator(lp, lq).reshape(xs.shape)
    # D* only matters where a sample can land: hide it where both densities are below 1e-3
    # (the mixture peaks at 200, the uniform density on this square is 0.11).
    negligible = (np.logaddexp(lp, lq) < math.log(1e-3)).reshape(xs.shape)
    sd_map = sig_d(grid).reshape(xs.shape)

    # Along the unit circle (through the modes' centres).
    theta = np.linspace(-math.pi / 8, 2 * math.pi - math.pi / 8, 8001)
    circle = np.stack([np.cos(theta), np.sin(theta)], 1)
    lp_c, lq_c = log_densities(circle)
    dstar_c, sd_c = optimal_discriminator(lp_c, lq_c), sig_d(circle)
    zoom = np.linspace(-0.08, 0.08, 801)  # around the mode at angle 0, +- 8 standard deviations
    circle_z = np.stack([np.cos(zoom), np.sin(zoom)], 1)
    lp_z, lq_z = log_densities(circle_z)
    dstar_z, sd_z = optimal_discriminator(lp_z, lq_z), sig_d(circle_z)
    d.train()

    fig = plt.figure(figsize=(13, 8.2), layout="constrained")
    sub = fig.subfigures(2, 1, height_ratios=[1.25, 1])
    top = sub[0].subplots(1, 3)
    extent = (-1.5, 1.5, -1.5, 1.5)
    im = top[0].imshow(sd_map, origin="lower", extent=extent, cmap="RdBu_r", vmin=0, vmax=1)
    top[0].set_title("trained discriminator sigmoid(D(x))")
    masked = np.ma.masked_where(negligible, dstar_map)
    cmap = matplotlib.colormaps["RdBu_r"].copy()
    cmap.set_bad("0.85")
    top[1].imshow(masked, origin="lower", extent=extent, cmap=cmap, vmin=0, vmax=1)
    top[1].set_title("optimal D*(x) = p_data / (p_data + p_g)\n(grey: both densities < 1e-3)")
    for ax in top[:2]:
        ax.scatter(fake[:500, 0], fake[:500, 1], s=2, c="k", alpha=0.5, label="generated (500)")
        ax.scatter(modes[:, 0], modes[:, 1], s=60, facecolors="none", edgecolors="limegreen", lw=1.5,
                   label="data modes")
        ax.set_xlabel("x1")
        ax.set_ylabel("x2")
        ax.set_xlim(-1.5, 1.5)
        ax.set_ylim(-1.5, 1.5)
        ax.set_aspect("equal")
    top[0].legend(loc="upper right", fontsize=8, framealpha=0.9)
    sub[0].colorbar(im, ax=top[:2], shrink=0.85, label="probability 'real'")
    top[2].plot(zoom / data.std, dstar_z, color="tab:red", lw=2, label="D*")
    top[2].plot(zoom / data.std, sd_z, color="tab:blue", lw=2, label="sigmoid(D)")
    top[2].axhline(0.5, color="0.6", lw=0.8, ls=":")
    top[2].set_xlabel("arc length from the 0-degree mode (data stds)")
    top[2].set_title("zoom: along the circle through one mode")
    top[2].set_ylim(-0.03, 1.03)
    top[2].legend(fontsize=8)

    ax = sub[1].subplots(1, 1)
    deg = np.degrees(theta)
    ax.plot(deg, dstar_c, color="tab:red", lw=1.2, label="optimal D*(x)")
    ax.plot(deg, sd_c, color="tab:blue", lw=1.8, label="trained sigmoid(D(x))")
    for k in range(8):
        ax.axvline(45 * k, color="limegreen", lw=0.8, ls="--", zorder=0)
    ax.axhline(0.5, color="0.6", lw=0.8, ls=":")
    ax.set_xlim(deg[0], deg[-1])
    ax.set_ylim(-0.03, 1.03)
    ax.set_xticks(np.arange(0, 360, 45))
    ax.set_xlabel("angle on the unit circle (degrees); dashed green: the 8 data modes")
    ax.set_ylabel("probability 'real'")
    ax.set_title(f"along the unit circle, ring8 after {trainer.step} steps of the non-saturating GAN")
    ax.legend(loc="center right", fontsize=9, framealpha=0.95)
    fig.savefig(path, dpi=110)
    plt.close(fig)

    on_modes = np.abs(((theta + math.pi / 8) % (math.pi / 4)) - math.pi / 8) < 3 * data.std  # within 3 std
    return {"circle_mean_dstar_at_modes": float(dstar_c[on_modes].mean()),
            "circle_mean_sigmoid_d_at_modes": float(sd_c[on_modes].mean()),
            "circle_mean_dstar_between": float(dstar_c[~on_modes].mean()),
            "circle_mean_sigmoid_d_between": float(sd_c[~on_modes].mean()),
            "circle_sigmoid_d_min": float(sd_c.min()), "circle_sigmoid_d_max": float(sd_c.max())}


def plot_js(path: Path, rows: list[dict[str, float]], floor: float, floor_se: float) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    steps = np.array([r["step"] for r in rows])
    js, se = np.array([r["js"] for r in rows]), np.array([r["js_se"] for r in rows])
    bound = np.array([r["bound"] for r in rows])
    fig, (ax, ax2) = plt.subplots(2, 1, figsize=(8, 6.4), sharex=True, height_ratios=[3, 1],
                                  layout="constrained")
    ax.fill_between(steps, js - 2 * se, js + 2 * se, color="tab:red", alpha=0.2, lw=0)
    ax.plot(steps, js, "o-", color="tab:red", label="JS(p_data || KDE of p_g), +- 2 s.e.")
    ax.plot(steps, bound, "s-", color="tab:blue", label="lower bound from the trained D: (V(D) + log 4) / 2")
    ax.axhline(LOG2, color="0.3", ls="--", lw=1)
    ax.text(steps[-1], LOG2, "log 2: disjoint supports", ha="right", va="bottom", fontsize=8)
    ax.axhspan(0, floor + 2 * floor_se, color="0.85", zorder=0)
    ax.text(steps[-1], floor + 2 * floor_se, f"KDE floor {floor:.3f} (perfect generator)", ha="right",
            va="bottom", fontsize=8)
    ax.set_ylabel("nats")
    ax.set_ylim(min(0.0, float(bound.min()) - 0.02), LOG2 + 0.05)
    ax.set_title("ring8, non-saturating GAN: Jensen-Shannon divergence during training")
    ax.legend(loc="center right", fontsize=9)
    ax2.plot(steps, [r["modes"] for r in rows], "o-", color="tab:green")
    ax2.set_ylabel("modes captured", color="tab:green")
    ax2.set_ylim(-0.3, 8.3)
    ax2.set_yticks([0, 2, 4, 6, 8])
    ax2.set_xlabel("training step")
    hq = ax2.twinx()
    hq.plot(steps, [r["high_quality"] for r in rows], "^--", color="tab:purple")
    hq.set_ylabel("high quality %", color="tab:purple")
    hq.set_ylim(-3, 103)
    fig.savefig(path, dpi=110)
    plt.close(fig)


def part2(args: argparse.Namespace) -> dict[str, object]:
    import torch

    from ganforge import RunConfig, Trainer

    torch.set_num_threads(1)
    rng_t = torch.Generator().manual_seed(args.seed + 1000)  # measurements' own streams
    rng_np = np.random.default_rng(args.seed + 1000)
    with tempfile.TemporaryDirectory() as tmp:
        trainer = Trainer(RunConfig(data="ring8", loss="nonsat", steps=args.steps, seed=args.seed, threads=1,
                                    out=str(Path(tmp) / "run"), sample_every=0, ckpt_every=0, log_every=0,
                                    ema=0.0))
        data = trainer.data
        c = trainer.config
        print(f"\nPart 2: ring8, loss nonsat, gen {c.gen} / disc {c.disc}, batch {c.batch_size}, z_dim {c.z_dim}, "
              f"{c.optimizer} lr {c.lr_g}/{c.lr_d} betas {c.betas}, seed {c.seed}, {c.steps} steps, threads 1")
        real_kde = fit_kde(data.sample(args.n_kde, rng_t).double().numpy())
        floor = js_divergence(data.sample(args.n_eval, rng_t).double().numpy(), real_kde.sample(args.n_eval, rng_np),
                              lambda x: mixture_log_density(x, data.modes, data.std), real_kde)
        print(f"KDE floor: JS(p_data || KDE of {args.n_kde} real samples) = {floor:.4f} nats, "
              f"bandwidth {real_kde.bandwidth:.4f}")
        print(f"{'step':>6} {'JS':>16} {'D bound':>16} {'bandwidth':>9} {'modes':>5} {'HQ %':>5} {'train s':>7}")
        rows: list[dict[str, float]] = []
        train_s = measure_s = 0.0
        trainer.start()
        try:
            while True:
                t0 = time.perf_counter()
                rows.append(measure(trainer, data, rng_t, rng_np, args.n_kde, args.n_eval))
                measure_s += time.perf_counter() - t0
                r = rows[-1]
                print(f"{r['step']:6d} {r['js']:9.4f} +- {r['js_se']:.3f} {r['bound']:9.4f} +- {r['bound_se']:.3f} "
                      f"{r['bandwidth']:9.4f} {r['modes']:5.0f} {r['high_quality']:5.1f} {train_s:7.1f}", flush=True)
                if trainer.step >= args.steps:
                    break
                t0 = time.perf_counter()
                trainer.train(min(args.every, args.steps - trainer.step))
                train_s += time.perf_counter() - t0
            final_kde: GaussianKde = rows[-1]["_kde"]  # type: ignore[assignment]
            gaps = dstar_comparison(trainer, data, final_kde, rng_t, rng_np, args.n_eval)
            args.out.mkdir(parents=True, exist_ok=True)
            circle = plot_dstar(args.out / "theory_dstar.png", trainer, data, final_kde, final_kde.points)
        finally:
            trainer.stop()
    plot_js(args.out / "theory_js.png", rows, floor.value, floor.stderr)
    for r in rows:
        r.pop("_kde")
    print(f"\nFinal generator vs D* (on {args.n_eval} samples each of p_data and of the KDE of p_g):")
    for k, v in {**gaps, **circle}.items():
        print(f"  {k:34s} {v:.4f}")
    print(f"training {train_s:.1f} s ({args.steps / max(train_s, 1e-9):.0f} steps/s), measuring {measure_s:.1f} s")
    print(f"wrote {args.out / 'theory_dstar.png'} and {args.out / 'theory_js.png'}")
    return {"floor": floor.value, "floor_se": floor.stderr, "floor_bandwidth": real_kde.bandwidth,
            "rows": rows, "final": {**gaps, **circle}, "train_s": train_s, "measure_s": measure_s}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--out", type=Path, required=True, help="folder for theory_dstar.png and theory_js.png")
    parser.add_argument("--steps", type=int, default=3000)
    parser.add_argument("--every", type=int, default=250, help="measure every this many steps")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--n-kde", type=int, default=2000, help="generated samples the KDE is fitted to")
    parser.add_argument("--n-eval", type=int, default=5000, help="Monte-Carlo samples per side for JS")
    parser.add_argument("--mus", type=float, nargs="+", default=[0.5, 1.0, 2.0, 4.0, 8.0])
    parser.add_argument("--json", type=Path, help="also write every number here")
    args = parser.parse_args(argv)
    t0 = time.perf_counter()
    result = {"part1": part1(args.mus), "part2": part2(args)}
    print(f"total {time.perf_counter() - t0:.1f} s")
    if args.json:
        args.json.write_text(json.dumps(result, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
