"""The search spaces shipped with hand-nas (data only: one YAML file each; installed as ``hand_nas.search_spaces``)."""
