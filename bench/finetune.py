"""What the fine-tune buys: pretrained vs fine-tuned item features on the same benchmark users.

For each log: the default detector (best_split with the product's settings, calibrated on the
calibration users' real histories at 1.0 false alarm per 1,000 events) is run on the
detection study's test benchmark (splices, multi-splices, ramps and unspliced controls of
*test* users, which the fine-tune never read) with each feature set. The benchmark users are
drawn once, with the pretrained features (the splice builder picks pairs by profile
distance), so both feature sets are scored on the very same users and change points.
Also: the held-out next-item recall@10 (test users), the cosine of random user-profile pairs
(test users; how far apart tastes sit), and the fine-tune's cost from its stored report.

    SHIFT_DATA_DIR=... python -m bench.finetune movielens-100k food

needs ``python -m core finetune NAME`` first (the stored model is used as it is); writes
bench/results/finetune.md and .json.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import time

import numpy as np

from bench.detection_study import (
    CROSS_LOG_DEFAULT,
    RESULTS,
    best_split_run,
    load_world,
    make_bench,
    random_pair_cosines,
    subset,
)
from core import artefacts
from core.finetune import next_item_recall

KEEP = (
    "F1@10 all splices",
    "F1@10 multi",
    "F1@10 gradual",
    "stated FA/1000",
    "check FA/1000",
    "FA/1000 control",
    "test real FA/1000",
    "test real users flagged",
)


def compare(name: str, say=print) -> dict:
    t0 = time.perf_counter()
    model = artefacts.finetuned_model_path(name)
    if model is None:
        raise SystemExit(f"{name}: no current fine-tuned model; run python -m core finetune {name}")
    report = json.loads((model / "manifest.json").read_text())
    world = load_world(name)
    tuned = artefacts.item_matrix(name, artefacts.encoder_for(name, "finetuned")).astype(np.float64)
    worlds = {"pretrained": world, "fine-tuned": dataclasses.replace(world, emb=tuned)}
    has_cat = world.genres is not None
    clear_cut = None if has_cat else float(np.quantile(random_pair_cosines(world, world.test_users), 0.25))
    test = make_bench(world, world.test_users, seed=1, clear_cut=clear_cut, n_splices=900)
    test_real = subset(world, world.test_users)
    say(f"{name}: {len(test.users)} benchmark users from {len(world.test_users)} test users")
    rows = []
    for label, w in worlds.items():
        r = best_split_run(w, CROSS_LOG_DEFAULT, test, test_real)
        cos = random_pair_cosines(w, w.test_users)
        row = {"features": label} | {k: r[k] for k in KEEP if k in r}
        row |= {k: r[k] for k in r if k.startswith("F1@10 ") and k not in row}
        row["next-item recall@10 (test users)"] = next_item_recall(w.emb, w.events, w.test_users)
        row["random user-pair cosine (mean)"] = float(cos.mean())
        row["random user-pair cosine (median)"] = float(np.median(cos))
        rows.append(row)
        say(f"  {label}: F1 {row['F1@10 all splices']:.3f}, real FA {row['test real FA/1000']:.2f}/1000")
    return {
        "dataset": name,
        "model": str(model.name),
        "finetune": report["manifest"]["params"],
        "training": {k: v for k, v in report["report"].items() if k != "losses"},
        "rows": rows,
        "seconds": time.perf_counter() - t0,
        "load average": os.getloadavg(),
    }


def prevalence_compare(name: str, say=print) -> list[dict]:
    """The detection issue's splice logs (5-50% of users spliced, histories cut to 80-160
    events or whole), built from *test* users only (the fine-tune read the others), scored by
    today's default as ``detect`` runs it (fit on the whole log, calibrated on its own real
    histories at 1.0 / 1,000) with each feature set; the logs are the same for both."""
    import itertools

    from bench.detection_study import LENGTHS, MAX_PREVALENCE_USERS, SHARES, old_default_cell, splice_log
    from core.benchmark.training import training_events

    world = load_world(name)
    test_world = dataclasses.replace(world, events=training_events(world.events, world.test_users))
    tuned = artefacts.item_matrix(name, artefacts.encoder_for(name, "finetuned")).astype(np.float64)
    rows = []
    for lengths, share in itertools.product(LENGTHS, SHARES):
        log = splice_log(test_world, share, lengths, seed=0, max_users=MAX_PREVALENCE_USERS)
        row = {"histories": lengths, "spliced": share, "users": len(log.truth)}
        for label, feats in (("pretrained", world.emb), ("fine-tuned", tuned)):
            cell = old_default_cell(feats, log)
            row |= {f"{label} {k}": cell[k] for k in ("F1@10", "FA/1000 control", "stated FA/1000")}
        rows.append(row)
        say(f"  {lengths} {share:.1%}: F1 {row['pretrained F1@10']:.3f} -> {row['fine-tuned F1@10']:.3f}")
    return rows


def lift_compare(name: str, say=print) -> list[dict]:
    """NDCG@10 on the fair lift protocol with each feature set, on the same cases.

    The cases (validation and test splices and controls) are drawn once, with the pretrained
    features, by :func:`core.benchmark.lift.prepare_lift_splits`; for the fine-tuned features
    the same cases get their own recommender, detector (fitted and calibrated on the training
    users) and validation-tuned settings. ALS (implicit) reads no item text: one row for both.
    """
    from core.benchmark.lift import (
        ALL_POLICIES,
        default_detect,
        prepare_lift_splits,
        reference_scores,
        score_cases,
        tune_on_validation,
    )
    from core.benchmark.reference import fit_reference

    validation, test = prepare_lift_splits(name, random_state=0, progress=say)
    tuned = artefacts.item_matrix(name, artefacts.encoder_for(name, "finetuned"))
    rows = []
    for label, vectors in (("pretrained", validation.item_vectors), ("fine-tuned", tuned)):
        if label == "fine-tuned":
            detect, _ = default_detect(vectors, test.training)

            def redo(setup, detect=detect, vectors=vectors):
                offsets = np.concatenate([[0], np.cumsum([len(c.visible) for c in setup.cases])])
                found = detect(np.concatenate([c.visible for c in setup.cases]), offsets)
                return dataclasses.replace(setup, item_vectors=vectors, detected=found)

            val, tst = redo(validation), redo(test)
        else:
            val, tst = validation, test
        choice, _ = tune_on_validation(val, tst.recommender(), collaborative_weights=(0.25, 1.0, 4.0, 1000.0))
        rec = tst.recommender(collaborative_weight=choice["collaborative_weight"])
        rec.past_weight, rec.half_life = choice["past_weight"], choice["now_half_life"]
        scores = score_cases(
            rec,
            tst.cases,
            tst.detected,
            last_n=choice["last_n"],
            half_life=choice["half_life"],
            policies=ALL_POLICIES,
            static=choice["best_static"],
        )
        means = scores.groupby(["kind", "policy"])["ndcg"].mean()
        for (kind, policy), value in means.items():
            rows.append({"features": label, "kind": kind, "policy": policy, "NDCG@10": float(value)})
        rows.append({"features": label, "kind": "choice", "policy": str(choice), "NDCG@10": float("nan")})
        say(f"  lift {label}: {means.to_dict()}")
    n_items = len(tuned)
    best, best_val = None, -1.0
    for factors in (32, 64, 128):
        ref = fit_reference("als", test.training, n_items, random_state=0, factors=factors)
        val = float(np.mean([_ndcg(ref(c.visible, 10), c.relevant) for c in validation.cases]))
        if val > best_val:
            best, best_val = ref, val
    for kind, value in (
        reference_scores(best, test.cases, policy="als").groupby("kind")["ndcg"].mean().items()
    ):
        rows.append({"features": "none (ALS)", "kind": kind, "policy": "als", "NDCG@10": float(value)})
    return rows


def _ndcg(top, relevant) -> float:
    from core.metrics import ndcg_at_k

    return ndcg_at_k(top, relevant)


def markdown(results: list[dict]) -> str:
    lines = []
    for res in results:
        t = res["training"]
        lines.append(
            f"\n#### {res['dataset']}\n\nfine-tune: {t['n_pairs']:,} pairs of {t['n_training_users']:,} "
            f"calibration users, {t['steps']} steps, {t['seconds']:.0f} s ({t['pairs_per_second']:.1f} pairs/s, "
            f"{t['device']}, {t['precision']}), loss {t['first_loss']:.3f} → {t['last_loss']:.3f}; "
            f"params {res['finetune']}\n"
        )
        cols = list(res["rows"][0])
        lines.append("| " + " | ".join(cols) + " |")
        lines.append("|" + "---|" * len(cols))
        for r in res["rows"]:
            lines.append("| " + " | ".join(_cell(r.get(c)) for c in cols) + " |")
        lines.append(f"\nbenchmark wall time {res['seconds']:.0f} s, load average {res['load average']}")
        if res.get("prevalence"):
            cols = list(res["prevalence"][0])
            lines.append("\nSplice logs of test users (default detector as detect runs it, 1.0 / 1,000):\n")
            lines.append("| " + " | ".join(cols) + " |")
            lines.append("|" + "---|" * len(cols))
            lines += ["| " + " | ".join(_cell(r[c]) for c in cols) + " |" for r in res["prevalence"]]
        if res.get("lift"):
            lift = [r for r in res["lift"] if r["kind"] != "choice"]
            lines.append("\nFair lift protocol, test users, mean NDCG@10:\n")
            lines.append("| features | kind | policy | NDCG@10 |\n|---|---|---|---|")
            lines += [f"| {r['features']} | {r['kind']} | {r['policy']} | {r['NDCG@10']:.4f} |" for r in lift]
            lines += [
                f"\n{r['features']} choice on validation users: {r['policy']}"
                for r in res["lift"]
                if r["kind"] == "choice"
            ]
    return "\n".join(lines)


def _cell(v) -> str:
    if isinstance(v, float):
        return f"{v:.3f}"
    return str(v)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("names", nargs="+")
    parser.add_argument("--lift", action="store_true", help="also the fair lift protocol (NDCG@10)")
    parser.add_argument("--prevalence", action="store_true", help="also the splice logs at 5-50%% spliced")
    parser.add_argument("--out", default="finetune", help="file stem under bench/results (default finetune)")
    args = parser.parse_args(argv)
    results = []
    for name in args.names:
        results.append(compare(name))
        if args.prevalence:
            results[-1]["prevalence"] = prevalence_compare(name)
        if args.lift:
            results[-1]["lift"] = lift_compare(name)
    text = markdown(results)
    print(text)
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / f"{args.out}.md").write_text(text + "\n")
    (RESULTS / f"{args.out}.json").write_text(json.dumps(results, indent=1, default=float))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
