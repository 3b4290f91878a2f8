"""A reference page for the browser benchmarks: Streamlit with a title and a line of text, nothing else.

Its deep-link time is what any Streamlit page costs to open on the machine, before any work of MechMNISTic's.
"""

import streamlit as st

st.title("Reference page")
st.write("A title and one line of text.")
