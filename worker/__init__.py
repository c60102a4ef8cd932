"""A self-hosted RunPod-compatible image worker: diffusers pipelines behind the RunPod SDK's handler API.

`python -m worker.handler --rp_serve_api` serves it on a team's own GPU; on RunPod the same module is
the serverless handler (worker/Dockerfile). See the README's "GPU worker" section.
"""
