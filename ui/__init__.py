"""The Streamlit control panel (``comfy-orch panel``), a client of the service's REST API.

Run it with ``streamlit run ui/app.py -- --api URL`` (token in ``COMFY_ORCH_TOKEN``).
``ApiClient`` is the typed REST client the views use; it is usable on its own.
"""

from ui.api import (
    ApiClient,
    PanelError,
    ServiceRefused,
    ServiceUnreachable,
    TokenRefused,
    UnexpectedAnswer,
)

__all__ = [
    "ApiClient",
    "PanelError",
    "ServiceRefused",
    "ServiceUnreachable",
    "TokenRefused",
    "UnexpectedAnswer",
]
