"""One module per page of the panel; each runs its ``render()`` when Streamlit runs it."""
