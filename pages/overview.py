"""Overview: which dataset, how big, who shifted at the current threshold, and when."""

from urllib.parse import urlencode

import numpy as np
import pandas as pd
import streamlit as st

from core import headline as core_headline
from core.errors import ShiftError
from dashboard import actions, charts, data, downstream, navigation, sidebar, text, views

selection = navigation.selection()
st.title("Who shifted, when, and to what")
name = selection.dataset
if name is None:
    actions.warn_no_dataset()

with st.expander("Import your own log (events + items, CSV or Parquet)", expanded=name is None):
    with st.form("upload"):
        st.markdown(
            "Events need the columns `user_id`, `item_id`, `timestamp` (unix seconds or ISO 8601), "
            "optionally `rating` and `event_type`; items need `item_id`, `title`, optionally "
            "`genres` (`|`-separated) and `description`. Files are checked before anything is "
            "replaced: a bad file leaves every dataset as it was."
        )
        new_name = st.text_input(
            "Dataset name",
            value=actions.fresh_name(data.dataset_names()),
            help="Letters, digits, '.', '_' and '-'. A new name by default: an upload never "
            "replaces a dataset unless you tick the box below.",
        )
        replace = st.checkbox(
            "Replace the dataset of that name if there is one", value=False, key="upload_replace"
        )
        delimiter = st.selectbox("CSV delimiter", [",", ";", "\t", "|"], format_func=repr)
        events_file = st.file_uploader("Events file", type=["csv", "parquet", "tsv", "txt"])
        items_file = st.file_uploader("Items file", type=["csv", "parquet", "tsv", "txt"])
        with st.expander("Options for messy files"):
            drop_unknown = st.checkbox(
                actions.FORM_LABELS["drop_unknown_items"],
                key="upload_drop_unknown",
                help="Otherwise an event of an item the items file lacks stops the import.",
            )
            drop_duplicates = st.checkbox(
                actions.FORM_LABELS["drop_duplicates"],
                key="upload_drop_duplicates",
                help="Otherwise a repeated event (same user, item and time) stops the import.",
            )
            unit = st.selectbox(
                actions.FORM_LABELS["timestamp_unit"],
                [None, "s", "ms", "us", "ns"],
                format_func=lambda u: actions.UNIT_LABELS[u],
                key="upload_unit",
            )
            separator = st.text_input(actions.FORM_LABELS["genre_separator"], value="|", max_chars=3)
        submitted = st.form_submit_button("Import")
    if submitted:
        if not (new_name and events_file and items_file):
            st.error("Give a dataset name, an events file and an items file.")
        else:
            options = actions.import_options(drop_unknown, drop_duplicates, unit, separator or "|")
            try:
                with st.spinner("Validating and importing…"):
                    report = actions.import_uploads(
                        new_name, events_file, items_file, delimiter, replace, options=options
                    )
            except ShiftError as err:
                st.error(text.md_escape(err), icon=":material/error:")
            else:
                actions.encode_with_progress(new_name)
                # Switch every page to the new dataset now (its detector is fitted next, in the
                # run for a small log, in the background for a big one).
                actions.flash(
                    f"Imported {report.n_events:,} events of {report.n_users:,} users over "
                    f"{report.n_items:,} items as {text.md_code(new_name)}. It is now the selected dataset."
                )
                actions.switch_dataset(new_name)

actions.show_flash()
if name is None:
    navigation.end_page()

info = data.info(name)
cols = st.columns(4)
cols[0].metric("Users", f"{info.get('n_users', 0):,}")
cols[1].metric("Items", f"{info.get('n_items', 0):,}")
cols[2].metric("Events", f"{info.get('n_events', 0):,}")
cols[3].metric("Ground truth", "yes" if info.get("has_ground_truth") else "no")
st.caption(f"Source: {text.md_escape(info.get('source', ''))}")

actions.require_encoded(selection)
cps = data.change_points(name, selection.detector, selection.threshold)
summary = data.population_summary(name, selection.detector, selection.threshold)
eps_text = text.eps(selection.threshold)
st.subheader(f"{summary.n_shifted:,} of {summary.n_users:,} users shifted at ε = {eps_text}")
said = views.headline(name, selection.detector, selection.threshold)
st.markdown("  \n".join(said[topic] for topic in core_headline.ORDER if topic in said))
with st.expander("How this was measured (for data scientists)"):
    choice = data.feature_choice(name, selection.detector)
    st.markdown(
        f"Detector {text.md_escape(selection.detector)}: {summary.n_change_points:,} change points in all; "
        f"{text.md_escape(summary.rates_text)}. A held-aside half of the users the false-alarm rate was "
        "measured on set the threshold's calibration; the other half (the check sample) did not."
        + (
            f" Shuffled histories: {text.md_escape(summary.calibration_fallback)}."
            if summary.calibration_fallback
            else ""
        )
        + ("" if choice is None else f" Item features: {text.md_escape(choice.describe())}.")
    )

left, right = st.columns(2)
with left:
    ranking = data.user_ranking(name, selection.detector)
    st.plotly_chart(
        charts.score_histogram(
            ranking["max_score"].to_numpy(), selection.threshold, "Strongest shift score per user"
        ),
        key="score_histogram",
    )
with right:
    if len(cps):
        by = st.radio("Where the shifts are", ["event index", "month"], horizontal=True, key="overview_where")
        if by == "month":
            months = pd.to_datetime(cps["timestamp"]).dt.to_period("M").astype(str)
            counts = months.value_counts().sort_index()
            st.plotly_chart(
                charts.bars(
                    counts.index, counts.to_numpy(), "Change points per month", "month", "change points"
                ),
                key="where_chart",
            )
            if views.dates_backfilled(name):
                st.caption(
                    "Most users here entered their events in one sitting (dates back-filled), so months say "
                    "little about when tastes changed: prefer event index."
                )
        else:
            edges = np.arange(0, int(cps["event_index"].max()) + 21, 20)
            counts, _ = np.histogram(cps["event_index"], bins=edges)
            labels = [f"{a}–{b - 1}" for a, b in zip(edges[:-1], edges[1:])]
            st.plotly_chart(
                charts.bars(
                    labels, counts, "Change points per event-index bucket", "event index", "change points"
                ),
                key="where_chart",
            )

if len(cps):
    st.subheader("Most shifted users")
    top = (
        cps.sort_values("score", ascending=False, kind="stable")
        .drop_duplicates("user_id")
        .head(25)
        .reset_index(drop=True)
    )
    top["from → to"] = [
        downstream.explanation(
            name,
            r.user_id,
            r.event_index,
            tuple(sorted(int(c) for c in cps.loc[cps["user_id"] == r.user_id, "event_index"])),
        ).summary
        if 0 < r.event_index < len(data.user_items(name, r.user_id))
        else ""
        for r in top.itertuples()
    ]
    top["change points"] = top["user_id"].map(cps["user_id"].value_counts())
    probability = data.user_probabilities(name, selection.detector)
    top["real"] = top["user_id"].astype(str).map(probability) if probability is not None else float("nan")
    # A link per user (opens in a new tab with that user selected); selecting a row switches here.
    top["timeline"] = [f"/timeline?{urlencode({'dataset': name, 'user': u})}" for u in top["user_id"]]
    shown = ["user_id", "timeline", "event_index", "score", "real", "change points", "from → to", "timestamp"]
    event = st.dataframe(
        top[[c for c in shown if c != "real" or probability is not None]],
        hide_index=True,
        key="top_users",
        on_select="rerun",
        selection_mode="single-row",
        column_config={
            "event_index": "strongest change at event",
            "score": st.column_config.NumberColumn(format="%.3g"),
            "real": st.column_config.ProgressColumn(
                "chance it is real",
                help="The probability that this user's change is beyond everyday drift (1 - local false "
                "discovery rate, from how this dataset's users usually drift)",
                format="percent",
                min_value=0.0,
                max_value=1.0,
            ),
            "timestamp": st.column_config.DatetimeColumn("time of change"),
            "timeline": st.column_config.LinkColumn("timeline", display_text="open"),
        },
    )
    st.caption("Select a row to open that user's timeline here, or follow its link to open it in a new tab.")
    rows = event.selection.rows if event is not None else []
    if rows:
        sidebar.select_user(name, top.loc[rows[0], "user_id"])
        st.switch_page("pages/timeline.py")
    st.subheader("What they left and joined")
    moves = data.category_moves(name, selection.detector, selection.threshold)
    st.dataframe(
        moves,
        hide_index=True,
        key="category_moves",
        column_config={
            "from": "left (share fell most)",
            "to": "joined (share rose most)",
            "users": st.column_config.NumberColumn("users", format="%d"),
            "example": "for example, user",
        },
    )
    st.caption("Per shifted user, between the 20 events before and after the strongest change point.")
else:
    st.info("No change point at this ε: lower it in the sidebar.")

categories = data.category_counts(name)
if len(categories):
    top = categories.head(20)
    st.plotly_chart(
        charts.bars(top["category"], top["n_events"], "Events per category", "category", "events"),
        key="categories",
    )
