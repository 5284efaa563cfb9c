"""Compression of searched models: pruning (torch-pruning), quantization (brevitas), export bundles, workflows.

Depends on ``hand_nas``. No ``hand_nas`` library module imports this package; only the command
line (``hand_nas/cli.py``) dispatches to it (``tests/test_structure.py`` checks both).
"""
