//! What the tools do with a vault. Backend-independent: everything here works on any
//! [`Backend`].
//!
//! - [`store`]: an artifact, verified, then its sidecar; an interrupted store is finished;
//!   [`start_following`]: the same for an artifact still being written;
//! - [`catalogue`], [`find_id`], [`latest`]: the backups, from their sidecars;
//! - [`fetch`]: an artifact into the spool, SHA-256 verified as it streams;
//! - [`orphans`], [`sweep`]: what is not a backup (half-stored, half-removed, unfinished);
//! - [`remove_backup`]: sidecar first, then artifact, so the catalogue never lists a
//!   backup whose artifact is gone.

mod catalogue;
mod fetch;
mod orphans;
mod store;

pub use catalogue::{catalogue, find_id, latest, Entry, Problem};
pub use fetch::{fetch, fetch_with, key_of};
pub use orphans::{orphans, sweep, Orphan, OrphanKind};
pub use store::{
    copy_backup, finish_following, start_following, start_following_with, store, store_with,
    upload_following, Following, Stored, Verify,
};

use manifest::sha256::HashingWriter;
use manifest::Sha256;
use toolkit::progress::Hidden;

use crate::backend::Backend;
use crate::error::Result;
use crate::key::ObjectKey;
use crate::layout::sidecar_key;

/// Size and SHA-256 of a stored object, read back in full.
pub(crate) fn hash_object(backend: &dyn Backend, key: &ObjectKey) -> Result<(u64, Sha256)> {
    let mut sink = HashingWriter::new(std::io::sink());
    backend.get(key, &mut sink, &Hidden)?;
    let (_, bytes, sha256) = sink.finish();
    Ok((bytes, sha256))
}

/// Removes a backup: its sidecar first, then its artifact. Interrupted between the two,
/// it leaves an artifact without a sidecar — not listed as a backup, found by [`orphans`]
/// and swept by the next prune — and never a listed backup whose artifact is gone.
pub fn remove_backup(backend: &dyn Backend, entry: &Entry) -> Result<()> {
    backend.delete(&sidecar_key(&entry.key))?;
    backend.delete(&entry.key).map_err(|e| {
        e.append("; its sidecar is gone, so it is no longer listed: the artifact is left as an orphan for the next sweep")
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::crypt::{Identities, Recipients};
    use crate::{ErrorKind, Expect, MemBackend};
    use manifest::time::Timestamp;
    use manifest::{Artifact, Kind, Manifest, Name};
    use std::path::Path;
    use toolkit::spool::SpoolDir;

    fn spooled(dir: &Path, name: &str, data: &[u8]) -> Manifest {
        spooled_at(dir, name, data, "2025-01-30T02:00:00Z")
    }

    fn spooled_at(dir: &Path, name: &str, data: &[u8], at: &str) -> Manifest {
        let at = Timestamp::parse(at).unwrap();
        let mut m = Manifest::new(Kind::Postgres, Some(&Name::new(name).unwrap()), at);
        let path = dir.join(format!("{}.dump", m.id));
        std::fs::write(&path, data).unwrap();
        m.artifact = Some(Artifact {
            path,
            format: "pg_dump/custom".into(),
            bytes: data.len() as u64,
            sha256: Sha256::of(data),
            extra: Default::default(),
        });
        m
    }

    fn spool(dir: &Path) -> SpoolDir {
        SpoolDir::open(&dir.join("restore")).unwrap()
    }

    #[test]
    fn store_then_fetch_round_trips() {
        let dir = tempfile::tempdir().unwrap();
        let vault = MemBackend::new();
        let m = spooled(dir.path(), "app", b"dump bytes");
        let stored = store(&vault, &m, Verify::ReadBack, &Hidden).unwrap();
        assert!(!stored.resumed);
        let stored = stored.manifest;
        let record = stored.vault.as_ref().unwrap();
        assert_eq!(
            record.url,
            "mem://test/postgres/2025/01/30/postgres_app_20250130_020000.dump"
        );
        assert_eq!(record.sha256, Sha256::of(b"dump bytes"));

        let (entries, problems) = catalogue(&vault, None).unwrap();
        assert!(problems.is_empty());
        assert_eq!(entries.len(), 1);
        assert_eq!(entries[0].manifest, stored);
        assert_eq!(find_id(&vault, &stored.id).unwrap().manifest, stored);

        let spool = spool(dir.path());
        let fetched = fetch(&vault, &entries[0].manifest, &spool, &Hidden).unwrap();
        let local = &fetched.artifact.as_ref().unwrap().path;
        assert_eq!(
            local,
            &spool.path().join("postgres_app_20250130_020000.dump")
        );
        assert_eq!(std::fs::read(local).unwrap(), b"dump bytes");
    }

    #[test]
    fn second_store_of_an_id_is_refused_whatever_its_extension() {
        let dir = tempfile::tempdir().unwrap();
        let vault = MemBackend::new();
        let m = spooled(dir.path(), "p1", b"x");
        store(&vault, &m, Verify::Size, &Hidden).unwrap();
        let err = store(&vault, &m, Verify::Size, &Hidden).unwrap_err();
        assert_eq!(err.kind(), ErrorKind::AlreadyExists);
        let mut other_format = m.clone();
        other_format.artifact.as_mut().unwrap().format = "x/tarball".into();
        let err = store(&vault, &other_format, Verify::Size, &Hidden).unwrap_err();
        assert_eq!(err.kind(), ErrorKind::AlreadyExists, "{err}");
        assert_eq!(
            vault.list("").unwrap().len(),
            2,
            "one artifact, one sidecar"
        );
    }

    #[test]
    fn changed_spool_file_is_refused_and_nothing_stored() {
        let dir = tempfile::tempdir().unwrap();
        let vault = MemBackend::new();
        let m = spooled(dir.path(), "p1", b"original");
        std::fs::write(&m.artifact.as_ref().unwrap().path, b"tampered").unwrap();
        let err = store(&vault, &m, Verify::ReadBack, &Hidden).unwrap_err();
        assert_eq!(err.kind(), ErrorKind::Integrity);
        assert!(vault.list("").unwrap().is_empty());
    }

    #[test]
    fn a_store_interrupted_before_the_sidecar_is_finished_by_the_next_run() {
        let dir = tempfile::tempdir().unwrap();
        let vault = MemBackend::new();
        let m = spooled(dir.path(), "p1", b"the dump");
        let key = crate::layout::artifact_key(&m).unwrap();
        // What a failed sidecar write leaves: the artifact alone.
        vault
            .put(&key, &mut &b"the dump"[..], Expect::exact(8, None), &Hidden)
            .unwrap();
        assert_eq!(
            catalogue(&vault, None).unwrap().0.len(),
            0,
            "not listed yet"
        );
        let found = orphans(&vault, "").unwrap();
        assert_eq!(found.len(), 1);
        assert_eq!(found[0].kind, OrphanKind::ArtifactWithoutSidecar);
        let stored = store(&vault, &m, Verify::ReadBack, &Hidden).unwrap();
        assert!(stored.resumed);
        assert_eq!(catalogue(&vault, None).unwrap().0.len(), 1);
        assert!(orphans(&vault, "").unwrap().is_empty());
    }

    #[test]
    fn an_artifact_of_the_id_with_other_content_is_not_taken_over() {
        let dir = tempfile::tempdir().unwrap();
        let vault = MemBackend::new();
        let m = spooled(dir.path(), "p1", b"mine");
        let key = crate::layout::artifact_key(&m).unwrap();
        vault
            .put(&key, &mut &b"theirs"[..], Expect::exact(6, None), &Hidden)
            .unwrap();
        let err = store(&vault, &m, Verify::ReadBack, &Hidden).unwrap_err();
        assert_eq!(err.kind(), ErrorKind::AlreadyExists);
        assert!(err.to_string().contains("not this artifact"), "{err}");
        let mut back = Vec::new();
        vault.get(&key, &mut back, &Hidden).unwrap();
        assert_eq!(back, b"theirs", "never overwritten");
    }

    #[test]
    fn a_manifest_too_large_for_a_sidecar_is_refused_before_upload() {
        let dir = tempfile::tempdir().unwrap();
        let vault = MemBackend::new();
        let mut m = spooled(dir.path(), "p1", b"x");
        m.extra.insert(
            "padding".into(),
            serde_json::Value::String("x".repeat(17 << 20)),
        );
        let err = store(&vault, &m, Verify::Size, &Hidden).unwrap_err();
        assert!(
            err.to_string().contains("a sidecar may be at most 16 MiB"),
            "{err}"
        );
        assert!(vault.list("").unwrap().is_empty());
    }

    #[test]
    fn corrupted_object_is_caught_and_partial_deleted() {
        let dir = tempfile::tempdir().unwrap();
        let vault = MemBackend::new();
        let stored = store(
            &vault,
            &spooled(dir.path(), "p1", b"good"),
            Verify::ReadBack,
            &Hidden,
        )
        .unwrap()
        .manifest;
        let key = key_of(&vault, &stored).unwrap();
        vault.tamper(&key, b"evil".to_vec());
        let spool = spool(dir.path());
        let err = fetch(&vault, &stored, &spool, &Hidden).unwrap_err();
        assert_eq!(err.kind(), ErrorKind::Integrity);
        assert_eq!(
            std::fs::read_dir(spool.path()).unwrap().count(),
            0,
            "partial left behind"
        );
    }

    #[test]
    fn catalogue_is_newest_first_and_reports_bad_sidecars() {
        let dir = tempfile::tempdir().unwrap();
        let vault = MemBackend::new();
        for (name, at) in [
            ("a", "2025-01-01T00:00:00Z"),
            ("b", "2025-03-01T00:00:00Z"),
            ("c", "2025-02-01T00:00:00Z"),
        ] {
            let m = spooled_at(dir.path(), name, name.as_bytes(), at);
            store(&vault, &m, Verify::Size, &Hidden).unwrap();
        }
        let junk =
            ObjectKey::new("postgres/2025/01/01/postgres_junk_20250101_000000.dump.manifest.json")
                .unwrap();
        vault
            .put(
                &junk,
                &mut &b"{not json"[..],
                Expect::exact(9, None),
                &Hidden,
            )
            .unwrap();
        // A sidecar copied under another id's key is not believed.
        let (entries, _) = catalogue(&vault, Some(&Kind::Postgres)).unwrap();
        let mut text = Vec::new();
        vault
            .get(
                &crate::layout::sidecar_key(&entries[0].key),
                &mut text,
                &Hidden,
            )
            .unwrap();
        let forged =
            ObjectKey::new("postgres/2025/04/01/postgres_x_20250401_000000.dump.manifest.json")
                .unwrap();
        vault
            .put(
                &forged,
                &mut &text[..],
                Expect::exact(text.len() as u64, None),
                &Hidden,
            )
            .unwrap();

        let (entries, problems) = catalogue(&vault, Some(&Kind::Postgres)).unwrap();
        let ids: Vec<_> = entries.iter().map(|e| e.manifest.id.as_str()).collect();
        assert_eq!(
            ids,
            [
                "postgres_b_20250301_000000",
                "postgres_c_20250201_000000",
                "postgres_a_20250101_000000"
            ]
        );
        assert_eq!(problems.len(), 2, "{problems:?}");
        assert_eq!(
            latest(&vault, &Kind::Postgres).unwrap().manifest.id,
            "postgres_b_20250301_000000"
        );
        let missing = manifest::Id::parse("postgres_zz_20250101_000000").unwrap();
        assert_eq!(
            find_id(&vault, &missing).unwrap_err().kind(),
            ErrorKind::NotFound
        );
        assert_eq!(
            latest(&vault, &Kind::Qdrant).unwrap_err().kind(),
            ErrorKind::NotFound
        );
    }

    #[test]
    fn removal_goes_sidecar_first_so_no_listed_backup_lacks_its_artifact() {
        let dir = tempfile::tempdir().unwrap();
        let vault = MemBackend::new();
        let stored = store(
            &vault,
            &spooled(dir.path(), "p1", b"x"),
            Verify::Size,
            &Hidden,
        )
        .unwrap();
        let entry = find_id(&vault, &stored.manifest.id).unwrap();
        let dry = crate::DryRun::new(&vault);
        remove_backup(&dry, &entry).unwrap();
        let sidecar = crate::layout::sidecar_key(&entry.key);
        assert_eq!(
            dry.planned(),
            [
                crate::dry_run::Planned::Delete(sidecar),
                crate::dry_run::Planned::Delete(entry.key.clone())
            ]
        );
        assert_eq!(
            catalogue(&vault, None).unwrap().0.len(),
            1,
            "a dry run changes nothing"
        );
        remove_backup(&vault, &entry).unwrap();
        assert!(vault.list("").unwrap().is_empty());
    }

    #[test]
    fn orphans_are_found_both_ways_and_swept() {
        let dir = tempfile::tempdir().unwrap();
        let vault = MemBackend::new();
        let a = store(
            &vault,
            &spooled(dir.path(), "a", b"a"),
            Verify::Size,
            &Hidden,
        )
        .unwrap();
        let b = store(
            &vault,
            &spooled(dir.path(), "b", b"b"),
            Verify::Size,
            &Hidden,
        )
        .unwrap();
        let a_key = key_of(&vault, &a.manifest).unwrap();
        let b_key = key_of(&vault, &b.manifest).unwrap();
        vault.delete(&a_key).unwrap(); // deleted behind the vault's back
        vault.delete(&crate::layout::sidecar_key(&b_key)).unwrap();
        let found = orphans(&vault, "").unwrap();
        let labels: Vec<_> = found
            .iter()
            .map(|o| (o.key.as_str().to_owned(), o.label()))
            .collect();
        assert_eq!(
            labels,
            [
                (format!("{a_key}.manifest.json"), "sidecar-without-artifact"),
                (b_key.to_string(), "artifact-without-sidecar"),
            ]
        );
        for orphan in &found {
            sweep(&vault, orphan).unwrap();
        }
        assert!(vault.list("").unwrap().is_empty());
    }

    fn keys() -> (Identities, Recipients, Identities) {
        let dir = tempfile::tempdir().unwrap();
        let (secret, public) = crate::crypt::generate();
        let (other, _) = crate::crypt::generate();
        let write = |name: &str, text: &str| {
            let path = dir.path().join(name);
            std::fs::write(&path, text).unwrap();
            Identities::from_file(&path).unwrap()
        };
        (
            write("mine", &secret),
            Recipients::parse(&public).unwrap(),
            write("other", &other),
        )
    }

    #[test]
    fn an_encrypted_store_is_the_age_file_and_fetches_back_only_with_its_identity() {
        let dir = tempfile::tempdir().unwrap();
        let vault = MemBackend::new();
        let (mine, recipients, other) = keys();
        let data: Vec<u8> = (0..200_000u32).map(|i| (i % 241) as u8).collect();
        let m = spooled(dir.path(), "app", &data);
        let stored = store_with(&vault, &m, Verify::ReadBack, Some(&recipients), &Hidden)
            .unwrap()
            .manifest;
        let record = stored.vault.as_ref().unwrap();
        let key = key_of(&vault, &stored).unwrap();
        assert!(key.as_str().ends_with(".dump.age"), "{key}");
        let e = record.encryption().unwrap().unwrap();
        assert_eq!(e.recipients, recipients.fingerprints());
        assert_eq!(hash_object(&vault, &key).unwrap(), (e.bytes, e.sha256));
        assert_eq!((record.bytes, record.sha256), (200_000, Sha256::of(&data)));
        assert_eq!(find_id(&vault, &stored.id).unwrap().manifest, stored);

        let spool = spool(dir.path());
        // (identity, fetched)
        let cases: [(Option<&Identities>, bool); 3] =
            [(None, false), (Some(&other), false), (Some(&mine), true)];
        for (ids, fetched) in cases {
            let got = fetch_with(&vault, &stored, &spool, ids, &Hidden);
            assert_eq!(got.is_ok(), fetched, "{got:?}");
            if let Err(e) = got {
                assert_eq!(e.kind(), ErrorKind::InvalidInput);
                assert!(e.to_string().contains(&e_fp(&recipients)), "{e}");
                assert_eq!(std::fs::read_dir(spool.path()).unwrap().count(), 0);
            }
        }
        let local = spool.path().join("postgres_app_20250130_020000.dump");
        assert!(std::fs::read(local).unwrap() == data);

        // What a store stopped before its sidecar leaves cannot be vouched for.
        vault.delete(&crate::layout::sidecar_key(&key)).unwrap();
        let err = store_with(&vault, &m, Verify::Size, Some(&recipients), &Hidden).unwrap_err();
        assert_eq!(err.kind(), ErrorKind::AlreadyExists);
        assert!(err.to_string().contains("without the identity"), "{err}");
    }

    fn e_fp(recipients: &Recipients) -> String {
        recipients.fingerprints()[0].clone()
    }

    #[test]
    fn an_encrypted_upload_of_a_growing_file_stores_nothing_unless_its_record_agrees() {
        let dir = tempfile::tempdir().unwrap();
        let (mine, recipients, _) = keys();
        let data = vec![5u8; 150_000];
        let m = spooled(dir.path(), "app", &data);
        let artifact = m.artifact.clone().unwrap();
        let writing = manifest::sections::Writing {
            partial: artifact.path.clone(),
            path: artifact.path.clone(),
            format: artifact.format.clone(),
            extra: Default::default(),
        };
        let right = || Ok((150_000, Sha256::of(&[5u8; 150_000])));
        let failed = || Err("the dump failed".to_owned());
        let longer = || Ok((150_001, Sha256::of(&[5u8; 150_000])));
        // (the final record's answer, stored)
        let cases: [(&(dyn Fn() -> crate::AtEndAnswer + Sync), bool); 3] =
            [(&failed, false), (&longer, false), (&right, true)];
        for (at_end, stored) in cases {
            let vault = MemBackend::new();
            let following = start_following_with(
                &vault,
                &m.writing_notice(&writing),
                &writing,
                Some(&recipients),
            )
            .unwrap();
            let put = upload_following(&vault, &following, &mut &data[..], at_end, &Hidden);
            assert_eq!(put.is_ok(), stored, "{put:?}");
            if !stored {
                assert_eq!(put.unwrap_err().kind(), ErrorKind::Integrity);
                assert!(vault.list("").unwrap().is_empty());
                continue;
            }
            let done = finish_following(&vault, &m, following, put.unwrap(), Verify::ReadBack)
                .unwrap()
                .manifest;
            assert!(done.vault.as_ref().unwrap().encryption().is_some());
            let spool = spool(dir.path());
            fetch_with(&vault, &done, &spool, Some(&mine), &Hidden).unwrap();
        }
    }

    #[test]
    fn a_copy_streams_the_stored_object_as_it_is_and_resumes_an_interrupted_one() {
        let dir = tempfile::tempdir().unwrap();
        let (from, to) = (MemBackend::new(), MemBackend::new());
        let (mine, recipients, _) = keys();
        let plain = spooled(dir.path(), "plain", &vec![1u8; 3_000_000]);
        let sealed = spooled(dir.path(), "sealed", &vec![2u8; 100_000]);
        store(&from, &plain, Verify::Size, &Hidden).unwrap();
        store_with(&from, &sealed, Verify::Size, Some(&recipients), &Hidden).unwrap();
        let (entries, _) = catalogue(&from, None).unwrap();
        for entry in &entries {
            let copied = copy_backup(&from, &to, entry, Verify::ReadBack, &Hidden).unwrap();
            assert!(!copied.resumed);
            let (a, b) = (
                entry.manifest.vault.as_ref().unwrap(),
                copied.manifest.vault.as_ref().unwrap(),
            );
            assert_eq!(
                (b.bytes, b.sha256, b.stored().unwrap()),
                (a.bytes, a.sha256, a.stored().unwrap())
            );
            assert_eq!(
                b.encryption(),
                a.encryption(),
                "an encrypted object is copied as it is"
            );
            assert_eq!(b.copied_from().unwrap().unwrap().url, a.url);
            assert_eq!(hash_object(&to, &entry.key).unwrap(), a.stored().unwrap());
            // Copied once: the destination lists it, a second copy is refused.
            let again = copy_backup(&from, &to, entry, Verify::ReadBack, &Hidden).unwrap_err();
            assert_eq!(again.kind(), ErrorKind::AlreadyExists);
        }
        let spool = spool(dir.path());
        let sealed_copy = find_id(&to, &sealed.id).unwrap().manifest;
        fetch_with(&to, &sealed_copy, &spool, Some(&mine), &Hidden).unwrap();

        // Interrupted between artifact and sidecar: the next copy finishes it.
        let entry = entries.iter().find(|e| e.manifest.id == plain.id).unwrap();
        to.delete(&crate::layout::sidecar_key(&entry.key)).unwrap();
        let resumed = copy_backup(&from, &to, entry, Verify::ReadBack, &Hidden).unwrap();
        assert!(resumed.resumed);
        assert_eq!(catalogue(&to, None).unwrap().0.len(), 2);

        // A damaged source is never stored in the destination.
        let other = MemBackend::new();
        from.tamper(&entry.key, vec![9u8; 3_000_000]);
        let err = copy_backup(&from, &other, entry, Verify::ReadBack, &Hidden).unwrap_err();
        assert_eq!(err.kind(), ErrorKind::Integrity, "{err}");
        assert!(other.list("").unwrap().is_empty());
    }
}
