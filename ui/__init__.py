"""Streamlit glue shared by the pages: cached loaders, URL parameters, the sidebar.

This is the only place besides ``app.py`` and ``pages/`` that imports
streamlit; the ``mechmnistic`` core never does. Everything here is about
presentation and state, never analysis.
"""
