"""Entry point of the dashboard: page config and the router, nothing else."""

import streamlit as st

st.set_page_config(page_title="Interest-shift dashboard", page_icon=":material/timeline:", layout="wide")

st.navigation(
    [
        st.Page("pages/overview.py", title="Overview", icon=":material/dashboard:", default=True),
        st.Page("pages/timeline.py", title="User timeline", icon=":material/timeline:"),
        st.Page("pages/projection.py", title="Projection", icon=":material/scatter_plot:"),
        st.Page("pages/recommendations.py", title="Recommendations", icon=":material/recommend:"),
        st.Page("pages/evaluation.py", title="Evaluation", icon=":material/fact_check:"),
    ]
).run()
