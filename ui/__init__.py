"""Streamlit glue shared by the pages: cached data, URL parameters and links, the sidebar, the views.

This is the only place besides ``app.py`` and ``app_pages/`` that imports
streamlit; the ``mechmnistic`` core never does. Everything here is about
presentation and state, never analysis.
"""
