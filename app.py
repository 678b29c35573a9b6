"""Entry point of the dashboard: the router (page config, the shared sidebar once, the page)."""

from dashboard.navigation import route

route()
