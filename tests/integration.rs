//! Integration tests: the real tool binaries against the real PostgreSQL and SeaweedFS
//! that `scripts/test` provisions. Run them with `scripts/test`.

mod util;

#[path = "by-tool/test_dump_neo4j.rs"]
mod test_dump_neo4j;
#[path = "by-tool/test_dump_pg.rs"]
mod test_dump_pg;
#[path = "by-tool/test_encryption.rs"]
mod test_encryption;
#[path = "by-tool/test_integrity_check.rs"]
mod test_integrity_check;
#[path = "by-tool/test_object_lock.rs"]
mod test_object_lock;
#[path = "by-tool/test_snap_qdrant.rs"]
mod test_snap_qdrant;
#[path = "by-tool/test_snap_qdrant_live.rs"]
mod test_snap_qdrant_live;
#[path = "by-tool/test_vault_copy.rs"]
mod test_vault_copy;
#[path = "by-tool/test_vault_get.rs"]
mod test_vault_get;
#[path = "by-tool/test_vault_ledger.rs"]
mod test_vault_ledger;
#[path = "by-tool/test_vault_prune.rs"]
mod test_vault_prune;
#[path = "by-tool/test_vault_put.rs"]
mod test_vault_put;

mod docs;
mod faults;
mod flows;
mod hardening;
mod pipeline;
mod upload_while_dumping;
