"""The ComfyUI-compatible gateway: ComfyUI's HTTP and websocket API in front of the pool.

Existing ComfyUI clients (SillyTavern, ComfyUI's own script examples, Comfy Cloud v1
clients) change only their server address to ``http://HOST:PORT/comfyui/<token>`` (or send
the token as ``X-API-Key`` to ``/comfyui``) and their prompts run as jobs on our nodes.
"""

from orchestrator.web.gateway.routes import gateway_router, mount_gateway

__all__ = ["gateway_router", "mount_gateway"]
