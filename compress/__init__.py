"""Compression of searched models: pruning (torch-pruning), quantization (brevitas), export bundles.

Depends on ``hand_nas``; ``hand_nas`` never imports this package.
"""
