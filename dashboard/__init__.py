"""The Streamlit side of the dashboard: everything that imports ``streamlit``.

- :mod:`dashboard.data`: the data edge, the only module that calls ``core``, with its caches;
- :mod:`dashboard.sidebar`: the shared selection (dataset, detector, ε, user), built once per
  run by ``app.py`` and handed to the pages as a frozen value;
- :mod:`dashboard.navigation`: the page list of the router;
- :mod:`dashboard.actions`: what a page does on request (import an upload, encode items);
- :mod:`dashboard.text`: data text made inert before it reaches Markdown;
- :mod:`dashboard.charts`: the Plotly figures.

Pages (``pages/``) read the selection, call the data edge and draw.
"""
