"""Compression of searched models: pruning (torch-pruning), quantization (brevitas), export bundles.

Depends on ``hand_nas``. No ``hand_nas`` library module imports this package; only the application layer
(``hand_nas/app/``, ``hand_nas/cli/``) uses it (``tests/test_structure.py`` checks both).
"""
