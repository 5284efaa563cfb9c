"""The application layer: workflows that chain the library's layers (search, report, compress, predict), what
the command line and notebooks call. The only part of ``hand_nas`` that imports ``compress``."""
