"""Interest-shift detection for recommender systems: pure Python, no Streamlit.

The data path runs one way: logs -> store -> encoder -> trajectories -> detectors ->
recommendations. Pages and the CLI sit on top of it.
"""
