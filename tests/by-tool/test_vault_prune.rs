//! vault-prune
