//! Qdrant: health (`/readyz`, the collection green), the fingerprint by the qdrant crate's
//! own code, the payload rule (a scroll through every point), and the point ids of
//! cross-database rules (the same scroll, without payloads).

use std::time::Instant;

use manifest::fingerprint::{Fingerprint, QdrantStats};
use manifest::sections::{Check, CheckStatus};
use qdrant::Client;
use serde_json::Value;

use crate::error::Error;
use crate::keys::{IdSource, Key};
use crate::rules::Payload;
use crate::{check, figures};

/// The health of `collection`: the server ready (`GET /readyz`), its version, and the
/// collection green (grey — optimizations pending after a restart — counts as ready, as
/// for a restore; yellow and red fail). `Err` when the server does not answer.
pub fn health(client: &Client, collection: &str) -> Result<Check, Error> {
    let started = Instant::now();
    client.ready().map_err(Error::from_qdrant)?;
    let version = client.version().map_err(Error::from_qdrant)?;
    let ms = started.elapsed().as_millis() as u64;
    let info = client
        .collection_info(collection)
        .map_err(Error::from_qdrant)?;
    let Some(info) = info else {
        return Ok(check(
            "health",
            CheckStatus::Fail,
            format!(
                "Qdrant {version} at {} is ready, but has no collection {}",
                client.shown_url(),
                toolkit::cli::quote(collection)
            ),
            figures! {"server_version" => version, "ms" => ms},
        ));
    };
    let status = info
        .get("status")
        .and_then(Value::as_str)
        .unwrap_or("unknown")
        .to_owned();
    let ok = matches!(status.as_str(), "green" | "grey");
    Ok(check(
        "health",
        crate::pass_if(ok),
        format!(
            "Qdrant {version} at {} ready in {ms} ms; collection {} is {status}{}",
            client.shown_url(),
            toolkit::cli::quote(collection),
            if ok {
                ""
            } else {
                " (not ready to serve: optimizing, or a shard failed)"
            }
        ),
        figures! {"server_version" => version, "ms" => ms, "status" => status},
    ))
}

/// What `collection` holds now: exact points, vectors, payload indexes (the fingerprint
/// snap-qdrant records).
pub fn fingerprint(client: &Client, collection: &str) -> Result<Fingerprint, Error> {
    let stats = client.fingerprint(collection).map_err(Error::from_qdrant)?;
    Ok(Fingerprint::Qdrant(QdrantStats {
        collections: [(collection.to_owned(), stats)].into(),
    }))
}

/// Whether a payload value counts as empty: null, `""`, `[]`, `{}`.
fn empty(v: &Value) -> bool {
    match v {
        Value::Null => true,
        Value::String(s) => s.is_empty(),
        Value::Array(a) => a.is_empty(),
        Value::Object(o) => o.is_empty(),
        _ => false,
    }
}

/// `payload COLLECTION`: every point has each field, not empty; scrolls `page` points at
/// a time (payloads included), names the first offending points.
pub fn payload(
    client: &Client,
    collection: &str,
    rule: &Payload,
    page: usize,
    sample: usize,
    tick: &mut dyn FnMut(u64),
) -> Result<Check, Error> {
    let name = format!("payload {}", rule.collection);
    let mut offset: Option<Value> = None;
    let (mut points, mut trips) = (0u64, 0u64);
    let mut missing = vec![0u64; rule.fields.len()];
    let mut emptied = vec![0u64; rule.fields.len()];
    let mut bad_sample: Vec<Value> = vec![];
    loop {
        Error::check_interrupted()?;
        let got = client
            .scroll(collection, offset.as_ref(), page, true)
            .map_err(Error::from_qdrant)?;
        trips += 1;
        for p in &got.points {
            points += 1;
            let mut bad = false;
            for (i, field) in rule.fields.iter().enumerate() {
                match p.payload.as_ref().and_then(|pl| pl.get(field)) {
                    None => {
                        missing[i] += 1;
                        bad = true;
                    }
                    Some(v) if empty(v) => {
                        emptied[i] += 1;
                        bad = true;
                    }
                    Some(_) => {}
                }
            }
            if bad && bad_sample.len() < sample {
                bad_sample.push(p.id.clone());
            }
        }
        tick(got.points.len() as u64);
        match got.next_offset {
            Some(next) => offset = Some(next),
            None => break,
        }
    }
    let mut per_field = serde_json::Map::new();
    let mut said = vec![];
    for (i, field) in rule.fields.iter().enumerate() {
        per_field.insert(
            field.clone(),
            serde_json::json!({"missing": missing[i], "empty": emptied[i]}),
        );
        if missing[i] + emptied[i] > 0 {
            said.push(format!(
                "{field}: {} missing, {} empty",
                missing[i], emptied[i]
            ));
        }
    }
    let figures = figures! {"points" => points, "fields" => per_field, "round_trips" => trips, "sample" => bad_sample.clone()};
    if said.is_empty() {
        return Ok(check(
            name,
            CheckStatus::Pass,
            format!(
                "all {points} points of {} have {}",
                toolkit::cli::quote(collection),
                rule.fields.join(", ")
            ),
            figures,
        ));
    }
    let ids: Vec<String> = bad_sample.iter().map(Value::to_string).collect();
    Ok(check(
        name,
        CheckStatus::Fail,
        format!(
            "points of {} without a payload field: {}; first points: {}",
            toolkit::cli::quote(collection),
            said.join("; "),
            ids.join(", ")
        ),
        figures,
    ))
}

/// The point ids of a collection, in scroll pages.
pub struct QdrantIds<'a> {
    client: &'a Client,
    collection: String,
    page: usize,
    offset: Option<Value>,
    done: bool,
    trips: u64,
}

impl<'a> QdrantIds<'a> {
    /// The ids of `collection`, `page` at a time.
    pub fn new(client: &'a Client, collection: &str, page: usize) -> Self {
        QdrantIds {
            client,
            collection: collection.to_owned(),
            page,
            offset: None,
            done: false,
            trips: 0,
        }
    }
}

impl IdSource for QdrantIds<'_> {
    fn describe(&self) -> String {
        format!("qdrant {}", self.collection)
    }

    fn next_page(&mut self) -> Result<Vec<Key>, Error> {
        if self.done {
            return Ok(vec![]);
        }
        let got = self
            .client
            .scroll(&self.collection, self.offset.as_ref(), self.page, false)
            .map_err(Error::from_qdrant)?;
        self.trips += 1;
        self.done = got.next_offset.is_none();
        self.offset = got.next_offset;
        got.points
            .iter()
            .map(|p| match &p.id {
                Value::Number(n) => n.as_u64().map(|n| Key::Int(n.into())),
                Value::String(s) => Some(Key::Str(s.to_ascii_lowercase())),
                _ => None,
            })
            .map(|k| {
                k.ok_or_else(|| {
                    Error::Failed(format!(
                        "{}: a point id that is neither a number nor a UUID",
                        self.describe()
                    ))
                })
            })
            .collect()
    }

    fn round_trips(&self) -> u64 {
        self.trips
    }
}
