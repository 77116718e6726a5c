"""``finegrain demo``: both sides of the sqrt(log n) threshold, run end to end and explained.

Lower-bound side: a small random 3-CNF (seeded) goes through the default route of the
registry, k-SAT -> Orthogonal Vectors -> attention gradient (Construction H with probe
columns, decoder (c)), one exact gradient oracle call decides it, a few more find the
witness, and the decoded assignment is checked against the formula and compared with a SAT
solver (:func:`reductions.verify.verify` does the run).  Upper-bound side: an instance with
the same number of tokens but entries bounded by ``B < sqrt(ln n)`` is solved by the
polynomial method and compared with the exact oracle.

Everything is computed by :func:`run_demo` (library) and printed by :func:`render`; the
CLI's ``--json`` prints :meth:`DemoResult.to_json`.  Exit status 1 if the chain disagrees
with the SAT solver (or its witness does not satisfy the formula).
"""

from __future__ import annotations

import argparse
import math
import textwrap
import time
from dataclasses import asdict, dataclass, field
from typing import Any, Callable

from reductions.commands.common import print_json, progress

#: The embedded default: a random 3-CNF at the satisfiability threshold ratio, seeded.
DEFAULT_VARS, DEFAULT_SEED, RATIO, K = 14, 1, 4.26, 3
#: Largest ``--vars``: the gradient instance has 2^(ceil(N/2) + 1) tokens and the decoder
#: up to ceil(N/2) + 1 exact O(n^2 d) calls (N = 20: 2048 tokens, about 15 s on 2 cores).
MAX_VARS = 20
#: The other side: head dimension, entry bound, and the fast method's target error.
FAST_D, FAST_B, FAST_EPS = 4, 1.0, 1e-6

#: One phrase per step: the lemma it implements.
LEMMAS = {
    "formula": "SETH (AS24 Hypothesis 3.1): k-SAT on N variables needs 2^((1-o(1)) N) time",
    "ksat_to_ov": "Williams 2005 split and list: orthogonal pairs = models (THEORY 1.3)",
    "ov_to_gradient_probe": "Construction H + probe columns (THEORY 2.4, 4.7); AS24 Def. 1.4 instance",
    "oracle": "exact float64 gradient, O(n^2 d) (AS24 Lemma C.8), with its stated error bound",
    "decode": "the gradient is affine in E: one entry reads sum_j T_j (1 - T_j) (THEORY 0.2, 4.7)",
    "sat": "ground truth from CaDiCaL (python-sat); the witness is checked on the formula",
    "fast": "polynomial method, n^(1+o(1)) for B = o(sqrt(log n)) (AS24 Theorem 1.6 / D.6, THEORY 5.2)",
}


# ----------------------------------------------------------------------------- result
@dataclass
class OracleCall:
    """One gradient oracle call made by the decoder."""

    n: int
    d: int
    B: float
    seconds: float
    error_bound: float


@dataclass
class DemoResult:
    """Everything the demo computed (``to_json()`` is what ``finegrain demo --json`` prints)."""

    seed: int
    formula: dict[str, Any]
    ov: dict[str, Any]
    gradient: dict[str, Any]
    calls: list[OracleCall]
    decoding: dict[str, Any]
    sat: dict[str, Any]
    agree: bool
    witness_ok: bool | None
    formulas_ok: bool
    fast: dict[str, Any]
    path: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        """The chain agreed with the SAT solver and its witness satisfies the formula."""
        return self.agree and self.witness_ok is not False

    def to_json(self) -> dict[str, Any]:
        out = asdict(self)
        out["ok"] = self.ok
        return out


# ----------------------------------------------------------------------------- library
def run_demo(n_vars: int = DEFAULT_VARS, seed: int = DEFAULT_SEED, *, show_progress: bool = False) -> DemoResult:
    """Run both sides of the threshold on a random 3-CNF with ``n_vars`` variables.

    Parameters
    ----------
    n_vars : number of variables N (3 <= N <= MAX_VARS); ``round(4.26 N)`` clauses.
    seed : seed of the formula and of the bounded-entry instance.
    show_progress : a progress bar on stderr (when it is a terminal).

    Returns
    -------
    DemoResult

    Notes
    -----
    Sizes along the default route (THEORY 1.3, 2.4, 4.7): OV sides ``2^ceil(N/2)`` and
    ``2^floor(N/2)`` vectors of dimension ``m``; the gradient instance has
    ``n = 2^(ceil(N/2)+1)`` tokens, ``d = 2m + 2`` and entries up to
    ``B = sqrt((2m+2) ln(8 n_OV (n_OV+1)))`` (normalised), far above ``sqrt(ln n)``.  The
    bounded side uses ``d = 4``, ``B = 1`` and target error ``1e-6`` relative to
    ``max |dL/dX|``.
    """
    from reductions.errors import InvalidInstance

    if not 3 <= n_vars <= MAX_VARS:
        raise InvalidInstance(
            f"--vars {n_vars}: choose 3 <= N <= {MAX_VARS} (the gradient instance has 2^(N/2+1) tokens); "
            "for larger formulas use finegrain verify"
        )
    bar = progress(total=3, desc="demo", leave=False) if show_progress else progress(total=3, disable=True)
    try:
        chain = _chain(n_vars, seed)
        bar.update(1)
        fast = _fast_side(chain["gradient"]["n"], seed, bar)
        fast["on_hard_instance"] = _fast_on(chain.pop("hard_instance"))
    finally:
        bar.close()
    return DemoResult(seed=seed, fast=fast, **chain)


def _chain(n_vars: int, seed: int) -> dict[str, Any]:
    from reductions.generators.ksat import random_ksat
    from reductions.rules.ksat_to_ov import model_to_pair
    from reductions.verify import verify
    from solvers.sat import DEFAULT_SOLVER

    cnf = random_ksat(n_vars, ratio=RATIO, k=K, seed=seed)
    calls: list[OracleCall] = []
    instances: list[Any] = []
    report = verify(cnf, oracle=_recording_oracle(calls, instances))
    ov_step, grad_step = report.steps[0], report.steps[-1]
    decisions = grad_step.stats.get("decisions") or [grad_step.stats]
    stats = next((d for d in decisions if d.get("purpose") == "detect"), decisions[0])
    witness = report.chain_witness
    return {
        "hard_instance": instances[0],
        "path": report.path,
        "formula": {"N": cnf.nv, "m": len(cnf.clauses), "k": K, "ratio": len(cnf.clauses) / cnf.nv},
        "ov": {"n_U": ov_step.params["n_U"], "n_V": ov_step.params["n_V"], "m": ov_step.params["m"]},
        "gradient": {
            "n": grad_step.n,
            "d": grad_step.d,
            "B": grad_step.B,
            "B_formula": grad_step.B_formula,
            "B_over_sqrt_ln_n": grad_step.B / math.sqrt(math.log(grad_step.n)),
            "B_raw": grad_step.params.get("B_raw"),
            "s": grad_step.params.get("s"),
            "mu": grad_step.params.get("mu"),
            "precision": grad_step.params.get("precision"),
        },
        "calls": calls,
        "decoding": {
            "verdict": report.chain_answer,
            "statistic": stats.get("statistic"),
            "threshold": stats.get("threshold"),
            "margin": stats.get("margin"),
            "oracle_error": stats.get("oracle_error"),
            "model": witness,
            "pair": None if witness is None else list(model_to_pair(witness, cnf.nv)),
        },
        "sat": {
            "solver": DEFAULT_SOLVER,
            "verdict": report.ground_truth,
            "model": report.ground_truth_witness,
            "seconds": report.seconds["ground_truth"],
        },
        "agree": report.agree,
        "witness_ok": report.witness_ok,
        "formulas_ok": report.formulas_ok,
    }


def _recording_oracle(calls: list[OracleCall], instances: list[Any]) -> Callable[[Any], Any]:
    """The exact gradient oracle, logging each call's size, time and stated error (and the first instance)."""
    import attention

    def exact(instance: Any) -> Any:
        start = time.perf_counter()
        result = attention.gradient(instance, method="exact")
        calls.append(OracleCall(instance.n, instance.d, instance.B, time.perf_counter() - start, result.error_bound))
        if not instances:  # the detection instance; later calls differ only in their probe columns
            instances.append(instance)
        return result

    exact.__name__ = "exact"
    return exact


def _fast_side(n: int, seed: int, bar: Any) -> dict[str, Any]:
    import numpy as np

    import attention
    from attention import AttentionInstance

    instance = AttentionInstance.random(n=n, d=FAST_D, B=FAST_B, seed=seed)
    start = time.perf_counter()
    exact = attention.gradient(instance, method="exact")
    seconds_exact = time.perf_counter() - start
    bar.update(1)
    start = time.perf_counter()
    fast = attention.gradient(instance, method="fast", eps=FAST_EPS)
    seconds_fast = time.perf_counter() - start
    bar.update(1)
    scale = float(np.abs(exact.gradient).max())
    error = float(np.abs(fast.gradient - exact.gradient).max())
    return {
        "n": n,
        "d": FAST_D,
        "B": instance.B,
        "B_over_sqrt_ln_n": instance.B / math.sqrt(math.log(n)),
        "eps": FAST_EPS,
        "degree": fast.info["degree"],
        "rank": fast.info["rank"],
        "seconds_exact": seconds_exact,
        "seconds_fast": seconds_fast,
        "error": error,
        "error_relative": error / scale,
        "error_bound": fast.error_bound,
        "certified": bool(fast.info.get("certified", False)),
        "exact_error_bound": exact.error_bound,
        "flop_ratio": fast.info["exact_flops"] / fast.info["flops"],
    }


def _fast_on(instance: Any) -> str:
    """What the polynomial method says on the chain's instance: its refusal (or its result)."""
    import attention
    from attention.errors import PrecisionError, ResourceError

    try:
        result = attention.gradient(instance, method="fast", eps=FAST_EPS)
    except (ResourceError, PrecisionError) as exc:
        return f"refused ({type(exc).__name__}): {exc}"
    return f"rank {result.info['rank']}, degree {result.info['degree']}"


# ----------------------------------------------------------------------------- text
def render(r: DemoResult) -> str:
    """The demo's explanation: each step in a few lines, tied to the lemma it implements."""
    verdict = {True: "SATISFIABLE", False: "UNSATISFIABLE"}
    f, ov, g, dec, sat, fast = r.formula, r.ov, r.gradient, r.decoding, r.sat, r.fast
    half = (f["N"] + 1) // 2
    decide, search = r.calls[:1], r.calls[1:]
    out = ["finegrain demo: the attention-gradient threshold B ~ sqrt(log n), both sides", "(Alman and Song, NeurIPS 2024)"]

    def step(title: str, lemma: str, *lines: str) -> None:
        out.extend(["", title, f"   [{lemma}]", *(f"   {line}" for line in lines)])

    step("1. The formula", LEMMAS["formula"],
         f"random {f['k']}-CNF: N = {f['N']} variables, m = {f['m']} clauses (ratio {f['ratio']:.2f}), seed {r.seed}")
    step("2. k-SAT -> Orthogonal Vectors", LEMMAS["ksat_to_ov"],
         f"U: {ov['n_U']} vectors (assignments of x1..x{half}), V: {ov['n_V']} vectors (of x{half + 1}..x{f['N']}), "
         f"dimension m = {ov['m']}",
         "<U[i], V[j]> = 0  iff  the assignment (i, j) satisfies every clause")
    step("3. OV -> attention gradient", LEMMAS["ov_to_gradient_probe"],
         f"n = {g['n']} tokens (2 per vector), d = {g['d']} (2m + 2), scale s = ln(8 n_OV (n_OV + 1)) = {g['s']:.3f}",
         f"entry bound B = {g['B']:.2f} = {g['B_over_sqrt_ln_n']:.1f} sqrt(ln n)   (formula sqrt((2m+2) s) = "
         f"{g['B_formula']:.2f}): the hard side",
         f"target E[:, 0] = -mu on the real queries, mu = d (n_OV + 1) = {g['mu']:.0f}")
    step("4. Oracle calls", LEMMAS["oracle"],
         f"{len(r.calls)} calls on n = {decide[0].n}, d = {decide[0].d}: 1 to decide, {len(search)} to find the "
         f"witness row by halving; {sum(c.seconds for c in r.calls):.2f} s",
         f"stated entrywise error <= {max(c.error_bound for c in r.calls):.2g} per call; the decoder needs",
         f"< {g['precision']:.3g} (mu s margin, THEORY 4.7): constant precision suffices")
    lines = [f"V1 = d G[P, W] / (mu beta^2) = {dec['statistic']:.4g} vs threshold {dec['threshold']:.4g}: "
             f"{verdict[dec['verdict']]}",
             f"(margin {dec['margin']:.2g}; the oracle's error moves V1 by at most {dec['oracle_error']:.2g})"]
    if dec["model"] is not None:
        lines += [f"witness row i = {dec['pair'][0]}, its orthogonal partner j = {dec['pair'][1]} (key scan) "
                  f"-> x1..x{f['N']} = {_bits(dec['model'])}",
                  f"the assignment satisfies all {f['m']} clauses: {'yes' if r.witness_ok else 'NO'}"]
    step("5. Decoding", LEMMAS["decode"], *lines)
    same = "" if dec["model"] is None or dec["model"] == sat["model"] else " (another model; both satisfy the formula)"
    step("6. SAT solver", LEMMAS["sat"],
         f"{sat['solver']}: {verdict[sat['verdict']]} in {sat['seconds'] * 1e3:.1f} ms{same}",
         f"the chain {'agrees' if r.agree else 'DISAGREES'} with the SAT solver")
    step("7. The other side: the same n, bounded entries", LEMMAS["fast"],
         f"n = {fast['n']} tokens, d = {fast['d']}, entries B = {fast['B']:.2f} = {fast['B_over_sqrt_ln_n']:.2f} "
         f"sqrt(ln n), target error {fast['eps']:g} (relative)",
         f"polynomial degree g = {fast['degree']}, feature rank r = C(d+g, g) = {fast['rank']}, independent of n",
         f"fast {fast['seconds_fast'] * 1e3:.1f} ms vs exact {fast['seconds_exact'] * 1e3:.1f} ms; measured error "
         f"{fast['error_relative']:.2g} of max |dL/dX|",
         f"rigorous bound {fast['error_bound']:.2g} absolute: "
         + ("certifies the target" if fast["certified"] else "loose on this cancelling gradient (THEORY 5.4)"),
         f"flops exact / fast = 8 n^2 d / (4 n r (d+1)^2) = {fast['flop_ratio']:.2g}: the polynomial method",
         f"does fewer flops from n ~ {fast['n'] / fast['flop_ratio']:.0f} on (finegrain bench fast measures it)",
         f"on the chain's instance (B = {g['B']:.1f}, d = {g['d']}) the same method is",
         *textwrap.wrap(fast["on_hard_instance"], 96, initial_indent="  ", subsequent_indent="  "))
    out += ["", "Result: the chain " + ("agrees" if r.ok else "DISAGREES") + " with the SAT solver."]
    return "\n".join(out)


def _bits(model: list[int]) -> str:
    return "".join("1" if lit > 0 else "0" for lit in model)


# ----------------------------------------------------------------------------- CLI
def register(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "demo",
        help="the whole chain on an embedded random 3-CNF, explained step by step",
        description=(
            "Run k-SAT -> Orthogonal Vectors -> attention gradient on a small random 3-CNF "
            f"(default N = {DEFAULT_VARS} variables, seed {DEFAULT_SEED}, {RATIO} clauses per variable): "
            "the formula's size, the OV instance, the gradient instance (n, d, B vs sqrt(ln n)), the "
            "oracle calls, the decoded verdict and assignment, the SAT solver's verdict; then the same "
            "n with bounded entries solved by the polynomial method.  Exit status 1 if the chain "
            "disagrees with the SAT solver."
        ),
        epilog="Example: finegrain demo --vars 12 --seed 3 --json",
    )
    parser.add_argument("--vars", type=int, default=DEFAULT_VARS, metavar="N", help=f"variables (3..{MAX_VARS})")
    parser.add_argument("--seed", type=int, default=DEFAULT_SEED, help="seed of the formula and instances")
    parser.add_argument("--json", action="store_true", help="print the results as JSON")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    result = run_demo(args.vars, args.seed, show_progress=True)
    if args.json:
        print_json(result.to_json())
    else:
        print(render(result))
    return 0 if result.ok else 1
