"""Streamlit pages: thin views over `core`."""
