"""Overview: which dataset, how big, who shifted at the current threshold, and when."""

import streamlit as st

import charts
import ui
from core.errors import ShiftError

st.title("Who shifted, when, and to what")

name = ui.choose_dataset()

with st.expander("Import your own log (events + items, CSV or Parquet)", expanded=name is None):
    with st.form("upload"):
        st.markdown(
            "Events need the columns `user_id`, `item_id`, `timestamp` (unix seconds or ISO 8601), "
            "optionally `rating` and `event_type`; items need `item_id`, `title`, optionally "
            "`genres` (`|`-separated) and `description`. Files are checked before anything is "
            "replaced: a bad file leaves every dataset as it was."
        )
        new_name = st.text_input("Dataset name", placeholder="my-shop")
        delimiter = st.selectbox("CSV delimiter", [",", ";", "\t", "|"], format_func=repr)
        events_file = st.file_uploader("Events file", type=["csv", "parquet", "tsv", "txt"])
        items_file = st.file_uploader("Items file", type=["csv", "parquet", "tsv", "txt"])
        submitted = st.form_submit_button("Import")
    if submitted:
        if not (new_name and events_file and items_file):
            st.error("Give a dataset name, an events file and an items file.")
        else:
            try:
                with st.spinner("Validating and importing…"):
                    report = ui.import_uploads(new_name, events_file, items_file, delimiter)
            except ShiftError as err:
                ui.show_error(err)
            else:
                st.success(
                    f"Imported {report.n_events:,} events of {report.n_users:,} users over "
                    f"{report.n_items:,} items as `{new_name}`. Encode its items with "
                    f"`python -m core embed {new_name}` to detect shifts."
                )
                st.session_state["dataset"] = new_name

if name is None:
    st.stop()

info = ui.info(name)
cols = st.columns(4)
cols[0].metric("Users", f"{info.get('n_users', 0):,}")
cols[1].metric("Items", f"{info.get('n_items', 0):,}")
cols[2].metric("Events", f"{info.get('n_events', 0):,}")
cols[3].metric("Ground truth", "yes" if info.get("has_ground_truth") else "no")
st.caption(f"Source: {info.get('source', '')}")

categories = ui.category_counts(name)
if len(categories):
    top = categories.head(20)
    st.plotly_chart(
        charts.bars(top["category"], top["n_events"], "Events per category", "category", "events"),
        key="categories",
    )
