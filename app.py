"""Entry point of the dashboard: page config, the shared sidebar once, and the router."""

import streamlit as st

from dashboard import navigation, sidebar

st.set_page_config(page_title="Interest-shift dashboard", page_icon=":material/timeline:", layout="wide")

page = navigation.register()
sidebar.share(sidebar.build(with_user=navigation.shows_one_user(page)))
page.run()
