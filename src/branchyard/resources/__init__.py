"""Resources as the ledger keeps them: the typed spec of each kind
(:mod:`~branchyard.resources.specs`), their JSON (:mod:`~branchyard.resources.codec`),
and the values a provider plans with (:mod:`~branchyard.resources.plan`)."""
