"""The vocabulary every layer speaks: errors, events, faults, identities, paths
and the one writer of state files. Imports nothing else of branchyard."""
