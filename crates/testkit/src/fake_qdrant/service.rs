//! Service routes: `/`, `/metrics`, `/telemetry`, `/cluster`.

use serde_json::{json, Map, Value};

use super::errors::{ok, QError};
use super::http::Response;
use super::router::Ctx;
use super::util::rfc3339_millis;

/// What `GET /` answers (the recorded server's build).
pub(crate) fn root() -> Response {
    Response::json(
        200,
        &json!({
            "title": "qdrant - vector search engine",
            "version": "1.17.1",
            "commit": "eabee371fda447974a94d29fbaa675a6a596cc7b"
        }),
    )
}

/// Prometheus text with the gauges a tool might look at (the real server writes ~60).
pub(crate) fn metrics(ctx: &Ctx) -> Response {
    let state = ctx.shared.state();
    let collections = state.collections.len();
    let vectors: usize = state
        .collections
        .values()
        .map(|c| c.points.values().map(|p| p.vectors.len()).sum::<usize>())
        .sum();
    drop(state);
    let cluster = i32::from(!ctx.shared.other_peers.is_empty());
    let text = format!(
        "# HELP app_info information about qdrant server\n\
         # TYPE app_info gauge\n\
         app_info{{name=\"qdrant\",version=\"1.17.1\"}} 1\n\
         # HELP app_status_recovery_mode features enabled in qdrant server\n\
         # TYPE app_status_recovery_mode gauge\n\
         app_status_recovery_mode 0\n\
         # HELP collections_total number of collections\n\
         # TYPE collections_total gauge\n\
         collections_total {collections}\n\
         # HELP collections_vector_total total number of vectors in all collections\n\
         # TYPE collections_vector_total gauge\n\
         collections_vector_total {vectors}\n\
         # HELP cluster_enabled is cluster support enabled\n\
         # TYPE cluster_enabled gauge\n\
         cluster_enabled {cluster}\n"
    );
    Response::text(200, &text)
}

/// `GET /telemetry` with the default detail level: app, collection count, cluster flag and
/// the REST answers per route and status.
pub(crate) fn telemetry(ctx: &Ctx) -> Response {
    let collections = ctx.shared.state().collections.len();
    let mut responses = Map::new();
    for (route, by_status) in ctx.shared.stats.lock().unwrap().iter() {
        if route.ends_with("<unknown>") {
            continue;
        }
        let mut statuses = Map::new();
        for (status, count) in by_status {
            statuses.insert(
                status.to_string(),
                json!({"count": count, "avg_duration_micros": 10.0}),
            );
        }
        responses.insert(route.clone(), Value::Object(statuses));
    }
    let result = json!({
        "id": ctx.shared.telemetry_id,
        "app": {
            "name": "qdrant",
            "version": "1.17.1",
            "startup": rfc3339_millis(ctx.shared.started),
        },
        "collections": {"number_of_collections": collections},
        "cluster": {"enabled": !ctx.shared.other_peers.is_empty(), "resharding_enabled": false},
        "requests": {"rest": {"responses": responses}, "grpc": {"responses": {}}},
    });
    ok(result, ctx.elapsed())
}

fn peer_uri(index: usize) -> String {
    format!("http://qdrant-{index}:6335/")
}

/// `GET /cluster`: `{"status": "disabled"}` on a single node (how a real one started without
/// `--uri`/`cluster.enabled` answers); with simulated peers, an enabled cluster led by this
/// peer.
pub(crate) fn cluster(ctx: &Ctx) -> Response {
    let shared = ctx.shared;
    if shared.other_peers.is_empty() {
        return ok(json!({"status": "disabled"}), ctx.elapsed());
    }
    let mut peers = Map::new();
    peers.insert(shared.peer_id.to_string(), json!({"uri": peer_uri(0)}));
    for (i, peer) in shared.other_peers.iter().enumerate() {
        peers.insert(peer.to_string(), json!({"uri": peer_uri(i + 1)}));
    }
    let result = json!({
        "status": "enabled",
        "peer_id": shared.peer_id,
        "peers": peers,
        "raft_info": {
            "term": 1,
            "commit": 3 + shared.other_peers.len(),
            "pending_operations": 0,
            "leader": shared.peer_id,
            "role": "Leader",
            "is_voter": true
        },
        "consensus_thread_status": {
            "consensus_thread_status": "working",
            "last_update": rfc3339_millis(shared.clock.now()),
        },
        "message_send_failures": {}
    });
    ok(result, ctx.elapsed())
}

/// `GET /collections/{name}/cluster`: one local shard on this peer.
pub(crate) fn collection_cluster(ctx: &Ctx, name: &str) -> Response {
    let state = ctx.shared.state();
    let result = match state.collections.get(name) {
        None => Err(QError::no_collection(name)),
        Some(c) => Ok(json!({
            "peer_id": ctx.shared.peer_id,
            "shard_count": 1,
            "local_shards": [{"shard_id": 0, "points_count": c.points.len(), "state": "Active"}],
            "remote_shards": [],
            "shard_transfers": []
        })),
    };
    drop(state);
    ctx.reply(result)
}
