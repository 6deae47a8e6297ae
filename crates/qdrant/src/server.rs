//! What the server is (version, cluster) and what a collection holds (its fingerprint).

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use manifest::fingerprint::{CollectionStats, SparseVectorParams, VectorParams};
use serde_json::{json, Value};
use toolkit::http::RequestTimeout;

use crate::client::{encode, Client, Req};
use crate::error::{ErrorKind, QdrantError};

/// `major.minor` of a version text (`1.17.1`, `v1.7.0-rc1`), if it has them.
pub fn minor_version(version: &str) -> Option<(u64, u64)> {
    let v = version.trim().trim_start_matches('v');
    let mut parts = v.split(['.', '-', '+']);
    let major = parts.next()?.parse().ok()?;
    let minor = parts.next()?.parse().ok()?;
    Some((major, minor))
}

/// Whether a snapshot made by `made_by` can be restored into `target`: Qdrant restores
/// snapshots only into the same minor version.
pub fn same_minor(made_by: &str, target: &str) -> bool {
    match (minor_version(made_by), minor_version(target)) {
        (Some(a), Some(b)) => a == b,
        _ => false,
    }
}

/// One page of [`Client::scroll`].
#[derive(Clone, Debug, PartialEq)]
pub struct ScrollPage {
    /// The points, in id order.
    pub points: Vec<ScrolledPoint>,
    /// Where the next page starts (`None`: this was the last).
    pub next_offset: Option<Value>,
}

/// A point of a [`ScrollPage`].
#[derive(Clone, Debug, PartialEq)]
pub struct ScrolledPoint {
    /// Its id: an unsigned integer or a UUID string.
    pub id: Value,
    /// Its payload, when asked for (`None` also when it has none).
    pub payload: Option<Value>,
}

/// Cluster mode as `GET /cluster` tells it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Cluster {
    /// Whether distributed mode is enabled.
    pub enabled: bool,
    /// Peers in the cluster (1 on a single node).
    pub peers: usize,
    /// This peer's id, when the server says.
    pub peer_id: Option<u64>,
}

impl Client {
    /// The server's version (`GET /`).
    pub fn version(&self) -> Result<String, QdrantError> {
        let what = format!("Qdrant at {}", self.shown_url());
        let root = self.call(Req::get("/".into()), &what)?;
        root.get("version")
            .and_then(Value::as_str)
            .map(str::to_owned)
            .ok_or_else(|| {
                QdrantError::new(
                    ErrorKind::Protocol,
                    format!("{what}: GET / names no version: is this a Qdrant server?"),
                )
            })
    }

    /// Whether the server is one node of a cluster (`GET /cluster`).
    pub fn cluster(&self) -> Result<Cluster, QdrantError> {
        let what = format!("cluster status of Qdrant at {}", self.shown_url());
        let result = match self.call(Req::get("/cluster".into()), &what) {
            Ok(r) => r,
            // Older servers without the route are single nodes.
            Err(e) if e.is_status(404) => {
                return Ok(Cluster {
                    enabled: false,
                    peers: 1,
                    peer_id: None,
                })
            }
            Err(e) => return Err(e),
        };
        let enabled = result.get("status").and_then(Value::as_str) == Some("enabled");
        let peers = result
            .get("peers")
            .and_then(Value::as_object)
            .map_or(1, |p| p.len().max(1));
        Ok(Cluster {
            enabled,
            peers: if enabled { peers } else { 1 },
            peer_id: result.get("peer_id").and_then(Value::as_u64),
        })
    }

    /// Whether every shard is ready (`GET /readyz`, no key needed): `Ok` on 200, the
    /// answer as an error otherwise.
    pub fn ready(&self) -> Result<(), QdrantError> {
        let what = format!("readiness of Qdrant at {}", self.shown_url());
        let req = Req::get("/readyz".into());
        self.retrying(|| {
            let response = self.send_once(&req, &[], toolkit::http::Body::Empty, false, &what)?;
            let status = response.status;
            let content_type = response.content_type().map(str::to_owned);
            let text = response
                .text(1 << 16)
                .map_err(|e| QdrantError::transport(&what, &e))?;
            if status == 200 {
                Ok(())
            } else {
                Err(QdrantError::answer(
                    &what,
                    status,
                    content_type.as_deref(),
                    &text,
                ))
            }
        })
    }

    /// One page of points in id order (`POST …/points/scroll`, no vectors): at most `limit`
    /// points from `offset` on (`None`: the first), with their payloads when
    /// `with_payload`. Qdrant sorts by id (integers before UUIDs), so pages from
    /// `next_offset` on never repeat a point.
    pub fn scroll(
        &self,
        name: &str,
        offset: Option<&Value>,
        limit: usize,
        with_payload: bool,
    ) -> Result<ScrollPage, QdrantError> {
        let what = format!("points of collection {}", toolkit::cli::quote(name));
        let mut body = json!({"limit": limit, "with_payload": with_payload, "with_vector": false});
        if let Some(offset) = offset {
            body["offset"] = offset.clone();
        }
        let req = Req {
            method: "POST",
            path: format!("/collections/{}/points/scroll", encode(name)),
            query: vec![],
            json: Some(body),
            timeout: RequestTimeout::Default,
            // A read.
            idempotent: true,
        };
        let result = self.call(req, &what)?;
        let malformed = || {
            QdrantError::new(
                ErrorKind::Protocol,
                format!("{what}: the scroll answer has no points list"),
            )
        };
        let points = result
            .get("points")
            .and_then(Value::as_array)
            .ok_or_else(malformed)?
            .iter()
            .map(|p| {
                Ok(ScrolledPoint {
                    id: p.get("id").cloned().ok_or_else(malformed)?,
                    payload: p.get("payload").cloned(),
                })
            })
            .collect::<Result<Vec<_>, QdrantError>>()?;
        Ok(ScrollPage {
            points,
            next_offset: result
                .get("next_page_offset")
                .filter(|v| !v.is_null())
                .cloned(),
        })
    }

    /// Names of every collection (`GET /collections`), sorted.
    pub fn collections(&self) -> Result<Vec<String>, QdrantError> {
        let what = format!("list of collections of Qdrant at {}", self.shown_url());
        let result = self.call(Req::get("/collections".into()), &what)?;
        let list = result
            .get("collections")
            .and_then(Value::as_array)
            .ok_or_else(|| {
                QdrantError::new(
                    ErrorKind::Protocol,
                    format!("{what}: no collections in the answer"),
                )
            })?;
        let mut names: Vec<String> = list
            .iter()
            .filter_map(|c| c.get("name").and_then(Value::as_str).map(str::to_owned))
            .collect();
        names.sort();
        Ok(names)
    }

    /// `GET /collections/{name}`'s result, `None` when there is no such collection.
    pub fn collection_info(&self, name: &str) -> Result<Option<Value>, QdrantError> {
        let what = format!("collection {}", toolkit::cli::quote(name));
        match self.call(Req::get(format!("/collections/{}", encode(name))), &what) {
            Ok(info) => Ok(Some(info)),
            Err(e) if e.is_status(404) && e.message.contains("doesn't exist") => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// The exact number of points (`POST …/points/count` with `exact: true`).
    pub fn count(&self, name: &str) -> Result<u64, QdrantError> {
        let what = format!(
            "count of points in collection {}",
            toolkit::cli::quote(name)
        );
        let req = Req {
            method: "POST",
            path: format!("/collections/{}/points/count", encode(name)),
            query: vec![],
            json: Some(json!({"exact": true})),
            timeout: RequestTimeout::Default,
            idempotent: true,
        };
        let result = self.call(req, &what)?;
        result.get("count").and_then(Value::as_u64).ok_or_else(|| {
            QdrantError::new(
                ErrorKind::Protocol,
                format!("{what}: no count in the answer"),
            )
        })
    }

    /// The fingerprint of a collection: exact points, vectors, sparse vectors, payload
    /// indexes and status.
    pub fn fingerprint(&self, name: &str) -> Result<CollectionStats, QdrantError> {
        let info = self.collection_info(name)?.ok_or_else(|| {
            QdrantError::answer(
                &format!("collection {}", toolkit::cli::quote(name)),
                404,
                None,
                &format!("Not found: Collection `{name}` doesn't exist!"),
            )
        })?;
        let points = self.count(name)?;
        stats_of(&info, points).map_err(|e| {
            QdrantError::new(
                ErrorKind::Protocol,
                format!("collection {}: {e}", toolkit::cli::quote(name)),
            )
        })
    }

    /// Waits until the collection is green (optimizations done, ready), at most `timeout`,
    /// and returns the status it ended in. Grey (Qdrant 1.9+: optimizations pending but not
    /// triggered, as after a restart; it stays grey until the next update) is ready as well
    /// and returned at once: waiting would not make it green. A red collection, or one that
    /// disappears, is an error at once; yellow (optimizing) is waited out.
    pub fn wait_green(&self, name: &str, timeout: Duration) -> Result<String, QdrantError> {
        let started = Instant::now();
        let mut delay = Duration::from_millis(200);
        loop {
            let info = self.collection_info(name)?.ok_or_else(|| {
                QdrantError::new(
                    ErrorKind::Protocol,
                    format!(
                        "collection {} is gone right after its restore",
                        toolkit::cli::quote(name)
                    ),
                )
            })?;
            let status = info
                .get("status")
                .and_then(Value::as_str)
                .unwrap_or("unknown");
            match status {
                "green" | "grey" => return Ok(status.to_owned()),
                "red" => {
                    return Err(QdrantError::new(
                        ErrorKind::Protocol,
                        format!(
                            "collection {} is red after its restore (a shard failed): see the \
                             server's log",
                            toolkit::cli::quote(name)
                        ),
                    ))
                }
                _ if started.elapsed() >= timeout => {
                    return Err(QdrantError::new(
                        ErrorKind::Protocol,
                        format!(
                            "collection {} is still {status} {} s after its restore (optimizing?): \
                             not compared; raise --green-timeout",
                            toolkit::cli::quote(name),
                            started.elapsed().as_secs()
                        ),
                    ))
                }
                _ => {}
            }
            toolkit::interrupt::sleep(delay).map_err(|e| {
                QdrantError::new(ErrorKind::Interrupted, format!("waiting for green: {e}"))
            })?;
            delay = (delay * 2).min(Duration::from_secs(2));
        }
    }
}

/// A collection's fingerprint from its info (`GET /collections/{name}`) and exact count.
pub fn stats_of(info: &Value, points: u64) -> Result<CollectionStats, String> {
    let params = info
        .pointer("/config/params")
        .ok_or("the collection info has no config.params")?;
    let mut vectors = BTreeMap::new();
    let dense = |v: &Value| -> Result<VectorParams, String> {
        Ok(VectorParams {
            size: v
                .get("size")
                .and_then(Value::as_u64)
                .ok_or("a vector without size")?,
            distance: v
                .get("distance")
                .and_then(Value::as_str)
                .ok_or("a vector without distance")?
                .to_owned(),
        })
    };
    match params.get("vectors") {
        Some(Value::Object(map)) if map.contains_key("size") => {
            vectors.insert(String::new(), dense(&params["vectors"])?);
        }
        Some(Value::Object(map)) => {
            for (name, v) in map {
                vectors.insert(name.clone(), dense(v)?);
            }
        }
        None | Some(Value::Null) => {}
        Some(other) => return Err(format!("unexpected vectors config {other}")),
    }
    let mut sparse_vectors = BTreeMap::new();
    if let Some(map) = params.get("sparse_vectors").and_then(Value::as_object) {
        for (name, v) in map {
            let modifier = v.get("modifier").and_then(Value::as_str).map(str::to_owned);
            sparse_vectors.insert(name.clone(), SparseVectorParams { modifier });
        }
    }
    let mut payload_indexes = BTreeMap::new();
    if let Some(map) = info.get("payload_schema").and_then(Value::as_object) {
        for (field, schema) in map {
            let data_type = schema
                .get("data_type")
                .and_then(Value::as_str)
                .unwrap_or("unknown");
            payload_indexes.insert(field.clone(), data_type.to_owned());
        }
    }
    Ok(CollectionStats {
        points,
        vectors,
        sparse_vectors,
        payload_indexes,
        status: info
            .get("status")
            .and_then(Value::as_str)
            .map(str::to_owned),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn table_of_versions() {
        let cases = [
            ("1.17.1", "1.17.0", true),
            ("1.17.1", "1.16.3", false),
            ("v1.7.0-rc1", "1.7.4", true),
            ("2.0.0", "1.17.1", false),
            ("garbage", "1.17.1", false),
        ];
        for (a, b, same) in cases {
            assert_eq!(same_minor(a, b), same, "{a} {b}");
        }
    }

    /// The recorded `get-collection-multi` answer: named dense vectors, a sparse vector,
    /// two payload indexes.
    #[test]
    fn the_recorded_multi_collection_fingerprints_exactly() {
        let info = json!({
            "status": "green", "points_count": 3,
            "config": {"params": {
                "vectors": {"image": {"size": 4, "distance": "Dot"}, "text": {"size": 8, "distance": "Cosine"}},
                "shard_number": 1, "sparse_vectors": {"keywords": {}}}},
            "payload_schema": {"category": {"data_type": "keyword", "points": 3},
                               "rank": {"data_type": "integer", "points": 2}}
        });
        let stats = stats_of(&info, 3).unwrap();
        let value = serde_json::to_value(&stats).unwrap();
        assert_eq!(
            value,
            json!({"points": 3,
                   "vectors": {"image": {"size": 4, "distance": "Dot"}, "text": {"size": 8, "distance": "Cosine"}},
                   "sparse_vectors": {"keywords": {}},
                   "payload_indexes": {"category": "keyword", "rank": "integer"},
                   "status": "green"})
        );
        let single = json!({"status": "yellow", "config": {"params": {"vectors": {"size": 8, "distance": "Cosine"}}}});
        let stats = stats_of(&single, 27).unwrap();
        assert_eq!(stats.vectors[""].size, 8);
        assert!(stats_of(&json!({}), 0).is_err());
    }
}
