"""Install, start and stop a local CPU ComfyUI, and make the test checkpoint.

Used by the CLI (``comfy-orch comfyui install|start``, ``comfy-orch up``) and by the test
fixtures, so there is one way to get a real ComfyUI on a fresh machine.
"""
