//! Properties of the manifest parser and the id and name types, over generated input: no
//! input makes them panic, every error names what is wrong, and every valid record
//! survives a round trip byte for byte in meaning.

use manifest::ndjson::parse_line;
use manifest::{Id, Kind, Manifest, Name};
use proptest::prelude::*;

/// Text of every sort: printable, control characters, multi-byte, the characters ids are
/// made of, and JSON's own punctuation.
fn any_text() -> impl Strategy<Value = String> {
    prop_oneof![
        any::<String>(),
        "[a-z0-9_./-]{0,40}",
        "[\\x00-\\x1f\\x7f\"\\\\{}:,\\[\\]]{0,20}",
    ]
}

fn kind() -> impl Strategy<Value = Kind> {
    prop_oneof![
        Just(Kind::Postgres),
        Just(Kind::Qdrant),
        Just(Kind::Neo4j),
        "[a-z][a-z0-9-]{0,12}".prop_map(|k| k.parse().expect("a well-formed kind")),
    ]
}

/// A valid record: a kind, a name, a time, a status, some fields of a newer tool.
fn manifest() -> impl Strategy<Value = Manifest> {
    (
        kind(),
        proptest::option::of("[A-Za-z0-9][A-Za-z0-9._-]{0,30}"),
        0u64..4_102_444_800, // until 2100
        prop_oneof![
            Just("ok".to_owned()),
            Just("failed".to_owned()),
            Just("pruned".to_owned()),
            "[a-z_-]{1,12}"
        ],
        proptest::option::of(any::<String>()),
        proptest::collection::btree_map("x_[a-z]{1,8}", any::<i64>(), 0..3),
    )
        .prop_map(|(kind, name, secs, status, error, extra)| {
            let at = manifest::time::Timestamp::from_system_time(
                std::time::UNIX_EPOCH + std::time::Duration::from_secs(secs),
            );
            let name = name.map(|n| Name::new(n).unwrap());
            let mut m = Manifest::new(kind, name.as_ref(), at);
            m.status = status.parse().unwrap();
            m.error = error;
            for (k, v) in extra {
                m.extra.insert(k, serde_json::json!(v));
            }
            m
        })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn no_line_makes_the_parser_panic(text in any_text()) {
        let _ = parse_line(&text);
    }

    #[test]
    fn no_json_object_makes_the_parser_panic(
        fields in proptest::collection::btree_map(
            prop_oneof![Just("schema"), Just("id"), Just("kind"), Just("created_at"), Just("status"), Just("run"), Just("artifact"), Just("stats")],
            prop_oneof![
                any_text().prop_map(serde_json::Value::String),
                any::<i64>().prop_map(|n| serde_json::json!(n)),
                Just(serde_json::json!(null)),
                Just(serde_json::json!({"path": "/x", "bytes": -1})),
                Just(serde_json::json!("stackvault.manifest/1")),
            ],
            0..8,
        )
    ) {
        let line = serde_json::to_string(&fields).unwrap();
        if let Err(e) = parse_line(&line) {
            prop_assert!(!e.is_empty());
            prop_assert!(!e.contains('\n'), "one line: {e}");
        }
    }

    #[test]
    fn every_valid_record_round_trips(m in manifest()) {
        let line = serde_json::to_string(&m).unwrap();
        let back = parse_line(&line).map_err(|e| TestCaseError::fail(format!("{e}: {line}")))?;
        prop_assert_eq!(&back, &m);
        prop_assert_eq!(serde_json::to_string(&back).unwrap(), line);
    }

    #[test]
    fn ids_and_names_never_panic_and_valid_ones_are_safe(text in any_text()) {
        if let Ok(name) = Name::new(text.clone()) {
            prop_assert!(!name.contains('/') && !name.starts_with('.') && name.len() <= 200);
            prop_assert!(name.chars().all(|c| c.is_ascii_graphic()));
        }
        let sanitized = Name::sanitize(&text);
        prop_assert!(Name::new(sanitized.as_str()).is_ok(), "{sanitized}");
        if let Ok(id) = Id::parse(&text) {
            prop_assert_eq!(Id::parse(id.as_str()).unwrap(), id.clone());
            prop_assert!(id.date_path().len() == 10);
        } else if let Err(e) = Id::parse(&text) {
            prop_assert!(!e.to_string().contains('\n'), "escaped: {}", e);
        }
    }
}
