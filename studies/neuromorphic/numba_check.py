"""Does numba pay in the chip simulator? Times the engine's per-step synaptic work (CSR
expansion of the events' synapses and accumulation into the next step's inputs) in numpy (what
the engine runs) and as a numba kernel, against the whole step, on the benchmark workload of
``bench_events.py``. Run: ``OMP_NUM_THREADS=1 python studies/neuromorphic/numba_check.py``
(needs numba, which is no longer a dependency: this measurement is why)."""

from __future__ import annotations

import os
import time

import bench_events  # noqa: E402  (next to this script)
import numpy as np

from rsgn.neuromorphic.simulator import _gather_ranges


def accum_np(indptr, dst, w, sidx, sval, n):
    spos, scnt = _gather_ranges(indptr, sidx)
    return np.bincount(dst[spos], weights=w[spos] * np.repeat(sval, scnt), minlength=n)


def main() -> None:
    import numba

    @numba.njit
    def accum_nb(indptr, dst, w, sidx, sval, n):
        x = np.zeros(n)
        for e in range(sidx.size):
            for p in range(indptr[sidx[e]], indptr[sidx[e] + 1]):
                x[dst[p]] += w[p] * sval[e]
        return x

    if hasattr(os, "sched_setaffinity"):
        os.sched_setaffinity(0, {sorted(os.sched_getaffinity(0))[0]})
    for n in (4096, 65536):
        sim, ext = bench_events.build_workload(n, 64, 0.05, 10)
        syn = sim.network.synapses
        rng = np.random.default_rng(0)
        sidx = np.sort(rng.choice(n, int(0.05 * n), replace=False))
        sval = rng.random(sidx.size)
        args = (syn.indptr, syn.dst, sim._weight, sidx, sval, n)
        assert np.allclose(accum_np(*args), accum_nb(*args))
        times = {}
        for name, f in (("numpy", accum_np), ("numba", accum_nb)):
            t0 = time.perf_counter()
            for _ in range(50):
                f(*args)
            times[name] = (time.perf_counter() - t0) / 50
        t0 = time.perf_counter()
        rep = sim.run(ext)
        step = (time.perf_counter() - t0) / rep.counts.steps
        saved = times["numpy"] - times["numba"]
        print(
            f"N={n}: accumulation numpy {times['numpy'] * 1e3:.2f} ms, numba "
            f"{times['numba'] * 1e3:.2f} ms per step; whole step {step * 1e3:.1f} ms; numba "
            f"would save {saved / step:.1%} of a step"
        )


if __name__ == "__main__":
    main()
