"""Evaluation: detectors against ground truth — live at the current ε, and the stored benchmark."""

import numpy as np
import pandas as pd
import streamlit as st

from dashboard import actions, charts, data, downstream, navigation, text, views

selection = navigation.selection()
st.title("Evaluation against ground truth")
name = actions.require_dataset(selection)
actions.require_encoded(selection)
detector, threshold = selection.detector, selection.threshold

has_truth = len(data.user_labels(name)) > 0
st.subheader("Planted truth of this dataset, at the current ε")
if not has_truth:
    st.info(
        f"{text.md_code(name)} has no planted change points (real logs have none). The spliced benchmark "
        "below builds ground truth from its real users."
    )
else:
    margin = st.radio(
        "Matching tolerance M (events either side)",
        [5, 10],
        index=1,
        horizontal=True,
        key="evaluation_margin",
    )
    live = downstream.truth_scores(name, detector, threshold, margin)
    cols = st.columns(5)
    cols[0].metric(f"Precision @{margin}", f"{live['precision']:.2f}", help=text.TERMS["precision / recall"])
    cols[1].metric(f"Recall @{margin}", f"{live['recall']:.2f}", help=text.TERMS["precision / recall"])
    cols[2].metric(f"F1 @{margin}", f"{live['f1']:.2f}", help=text.TERMS["F1@10"])
    cols[3].metric(
        "False alarms / 1,000 events (measured here)",
        f"{live['false_alarms_per_1000']:.2f}",
        help="Alarms on this dataset's stable and multi-interest users, which have no shift, counted now at ε.",
    )
    cols[4].metric("Matched / planted", f"{live['tp']} / {live['tp'] + live['fn']}")
    st.caption(
        f"The sidebar's {selection.false_alarms:.2f} false alarms per 1,000 events is the calibration's estimate "
        f"at this ε, measured on part of the users set aside for it; {live['false_alarms_per_1000']:.2f} is "
        "counted here on every user the ground truth marks as unchanged (and on multi-interest users), so the "
        "two differ a little."
    )
    left, right = st.columns(2)
    if selection.online:
        left.caption(
            f"{detector} is online: its alarms depend on ε beyond a filter, so no "
            "threshold curve is drawn here; the stored benchmark below has one."
        )
    else:
        curve = downstream.truth_sweep(name, detector, margin)
        left.plotly_chart(
            charts.pr_curve(
                curve,
                {"ε": threshold},
                f"Precision, recall, F1 vs threshold ({detector})",
            ),
            key="live_pr",
        )
        right.plotly_chart(
            charts.false_alarm_curve(
                curve,
                "false_alarms_per_1000",
                threshold,
                "False alarms on stable and multi-interest users",
            ),
            key="live_fa",
        )
        st.caption(
            "The curves are drawn from ε = 0, the lowest the sidebar sets, to just past the ε where recall (or "
            "the false-alarm rate) falls below 5% of its highest: above it nothing changes."
        )
    if live["delays"]:
        st.plotly_chart(
            charts.delay_histogram(live["delays"], f"Alert delay of the {live['tp']} matched change points"),
            key="live_delay",
        )
        st.caption(f"Median alert delay {np.median(live['delays']):.0f} events (alert event − true change).")

study = downstream.detection_study(name)
if study is not None:
    meta, rows, tradeoff = study
    st.subheader(
        "Detection on real logs, by shift size",
        help="Recorded by python -m bench.detection_study for a dataset of this name (bench/RESULTS.md, "
        "section 'Detection on real logs'): real users split in two, settings and thresholds from the "
        "calibration half only, splices of two test users scored by how different the two users are.",
    )
    f1_columns = [c for c in rows.columns if c.startswith("F1@10")]
    shown = ["detector", "setting", *f1_columns, "FA/1000 control", "test real FA/1000"]
    st.dataframe(
        views.settings_in_words(rows[[c for c in shown if c in rows.columns]]),
        hide_index=True,
        key="study_table",
        column_config={
            c: st.column_config.NumberColumn(c, format="%.3f")
            for c in [*f1_columns, "FA/1000 control", "test real FA/1000"]
        },
    )
    by_size = [c for c in f1_columns if c != "F1@10 other"][:4]
    if len(tradeoff):
        st.plotly_chart(
            charts.f1_by_false_alarms(
                tradeoff, by_size, "F1@10 against the real false-alarm rate each detector was calibrated to"
            ),
            key="study_tradeoff",
        )
    st.caption(
        f"{meta.get('n_calibration_users', '?')} calibration and {meta.get('n_test_users', '?')} test users. "
        "'clear', 'moderate' and 'hard' are splices of two users whose profiles are far apart, closer, and "
        "close (the F1 of a shift depends on its size); 'FA/1000 control' is false alarms per 1,000 events of "
        "real, unspliced test users. Recorded for a dataset of this name: if yours holds other data, "
        "these rows are not about it."
    )

st.subheader(
    "Benchmark: spliced real users",
    help="Real users' histories spliced together at a known event, so the true change is known; every "
    "detector is scored on them.",
)
stored = downstream.stored_evaluation(name)
n_users = int(data.info(name).get("n_users") or 0)
if stored is None and n_users < views.BENCHMARK_MIN_USERS:
    st.warning(
        f"{text.md_code(name)} has {n_users:,} users. The benchmark splices pairs of them into "
        f"{views.BENCHMARK_SPLICES} histories with a known change, so each user is reused many times and its "
        f"figures would say little; it needs {views.BENCHMARK_MIN_USERS:,} users or more to mean something.",
        icon=":material/warning:",
    )
if stored is None:
    actions.offer_task(
        "benchmark",
        name,
        "Run the benchmark",
        f"No benchmark of {text.md_code(name)} yet. It splices real users into ground-truth shifts and scores "
        "every detector on them: minutes on MovieLens-100K, in the background; the page shows the results "
        "when they are ready. (From a terminal: "
        f"{text.md_code(f'python -m core evaluate {name}')}.)",
    )
meta, table, curves, folder = stored
# the dataset's own cache folder, named from the data folder (never the server's path)
shown_folder = folder.relative_to(data.data_folder()) if folder.is_relative_to(data.data_folder()) else folder
st.caption(f"From {text.md_code(shown_folder)}. {len(table)} rows.")
st.caption(
    f"Test benchmark users: {text.md_escape(', '.join(f'{k} {v}' for k, v in meta.get('test_benchmark', {}).items()))}; "
    f"defaults calibrated to {text.md_escape(meta.get('target_false_alarms_per_1000', '?'))} false alarms per 1,000 events on "
    "calibration users; 'oracle' rows use the best threshold on the test users and are for reference only."
)
shown = [
    c
    for c in [
        "detector",
        "setting",
        "threshold",
        "F1@10",
        "P@10",
        "R@10",
        "F1@5",
        "F1@10 hard",
        "location_error",
        "alert_delay",
        "FA/1000 control",
        "FA/1000 shuffled",
        "selection F1@10",
    ]
    if c in table.columns
]
T = text.TERMS
st.dataframe(
    views.settings_in_words(table[shown]),
    hide_index=True,
    key="benchmark_table",
    column_config={
        "setting": st.column_config.TextColumn(
            "setting", help="default: ε calibrated on separate users. " + T["oracle"]
        ),
        "threshold": st.column_config.NumberColumn("threshold (ε)", format="%.3g", help=T["ε (epsilon)"]),
        "F1@10": st.column_config.NumberColumn("F1@10", format="%.3f", help=T["F1@10"]),
        "P@10": st.column_config.NumberColumn(
            "P@10", format="%.3f", help="Precision within 10 events. " + T["precision / recall"]
        ),
        "R@10": st.column_config.NumberColumn(
            "R@10", format="%.3f", help="Recall within 10 events. " + T["precision / recall"]
        ),
        "F1@5": st.column_config.NumberColumn("F1@5", format="%.3f", help="F1 within 5 events."),
        "F1@10 hard": st.column_config.NumberColumn(
            "F1@10 hard", format="%.3f", help="F1@10 on the hardest splices only (two similar users)."
        ),
        "location_error": st.column_config.NumberColumn(
            "location error",
            format="%.1f",
            help="Median events between a matched detection and the true change.",
        ),
        "alert_delay": st.column_config.NumberColumn(
            "alert delay",
            format="%.1f",
            help="Median events after the true change before the detector could know.",
        ),
        "FA/1000 control": st.column_config.NumberColumn(
            "false alarms /1,000 (real null)", format="%.2f", help=T["real null / control"]
        ),
        "FA/1000 shuffled": st.column_config.NumberColumn(
            "false alarms /1,000 (shuffled)", format="%.2f", help=T["false alarms per 1,000 events"]
        ),
        "selection F1@10": st.column_config.NumberColumn(
            "selection F1@10", format="%.3f", help="F1@10 on the users the default detector was chosen on."
        ),
    },
)
if len(curves) and detector in set(curves["detector"]):
    curve = curves[curves["detector"] == detector].sort_values("threshold")
    default = table[(table["detector"] == detector) & (table["setting"] == "default")]["threshold"]
    marks = {"ε": threshold}
    if len(default) and pd.notna(default.iloc[0]):
        marks["calibrated default"] = float(default.iloc[0])
    left, right = st.columns(2)
    left.plotly_chart(
        charts.pr_curve(
            curve,
            marks,
            f"Benchmark precision/recall/F1 @10 ({detector})",
            metrics=(("P@10", "precision"), ("R@10", "recall"), ("F1@10", "F1")),
        ),
        key="bench_pr",
    )
    if "FA/1000 control" in curve:
        right.plotly_chart(
            charts.false_alarm_curve(
                curve, "FA/1000 control", threshold, "False alarms on unspliced control users"
            ),
            key="bench_fa",
        )
    st.caption(
        "Why the benchmark's F1 at an ε is not the one above: its shifts are splices of two real users of "
        "this dataset, many of them between similar tastes (hard to see), where the planted shifts above are "
        "built to be clear; and it fits detectors on the calibration half of the users, while ε on this page "
        "comes from the detector fitted on every user, so the two threshold scales agree only approximately."
    )
else:
    st.caption(f"The stored benchmark has no curve for {detector}.")
