"""Deployment of trained supervised models: ONNX export and an onnxruntime-backed predictor
(`export`), compression by quantisation and pruning (`compress`), and explanations (`explain`).
Builds on kiln.supervised; the entry points (cli, serve) import it lazily."""

import kiln.deploy.spec  # noqa: E402,F401  (registers the `compress:` config section)
