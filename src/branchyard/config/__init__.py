"""``branchyard.toml``: the model (``model``), reading and merging it (``load``) and
checking what it says (``check``)."""
