//! Routes as actix resolves them for Qdrant: a path matches by segments (each segment
//! percent-decoded, so `%2F` stays inside one), the first route whose method matches wins,
//! and anything else — unknown path, wrong method, `HEAD` — is 404 with an empty body.
//! Also the extractor rules shared by handlers: query parameters, JSON bodies, collection
//! names, and `wait`.

use std::sync::Arc;
use std::time::Instant;

use serde::de::DeserializeOwned;
use serde_json::{json, Value};

use super::auth::{self, Access};
use super::errors::{accepted, ok, QError};
use super::http::{Request, Response, JSON_LIMIT};
use super::util::percent_decode;
use super::{collections, points, restore, service, snapshots, Shared, Tasks};

/// A matched route with its (decoded) path parameters.
#[derive(Clone, Debug)]
pub(crate) enum Route {
    Root,
    Healthz,
    Livez,
    Readyz,
    Metrics,
    Telemetry,
    Cluster,
    ListCollections,
    GetCollection(String),
    CreateCollection(String),
    DeleteCollection(String),
    CollectionExists(String),
    CollectionCluster(String),
    CreateIndex(String),
    DeleteIndex(String, String),
    Upsert(String),
    Retrieve(String),
    GetPoint(String, String),
    DeletePoints(String),
    Count(String),
    Scroll(String),
    ListSnapshots(String),
    CreateSnapshot(String),
    UploadSnapshot(String),
    RecoverSnapshot(String),
    DownloadSnapshot(String, String),
    DeleteSnapshot(String, String),
    ListFull,
    CreateFull,
    DownloadFull(String),
    DeleteFull(String),
}

impl Route {
    /// The route as Qdrant's telemetry names it (`POST /collections/{collection_name}/snapshots`).
    pub fn pattern(&self) -> &'static str {
        use Route::*;
        match self {
            Root => "GET /",
            Healthz => "GET /healthz",
            Livez => "GET /livez",
            Readyz => "GET /readyz",
            Metrics => "GET /metrics",
            Telemetry => "GET /telemetry",
            Cluster => "GET /cluster",
            ListCollections => "GET /collections",
            GetCollection(_) => "GET /collections/{collection_name}",
            CreateCollection(_) => "PUT /collections/{collection_name}",
            DeleteCollection(_) => "DELETE /collections/{collection_name}",
            CollectionExists(_) => "GET /collections/{collection_name}/exists",
            CollectionCluster(_) => "GET /collections/{collection_name}/cluster",
            CreateIndex(_) => "PUT /collections/{collection_name}/index",
            DeleteIndex(..) => "DELETE /collections/{collection_name}/index/{field_name}",
            Upsert(_) => "PUT /collections/{collection_name}/points",
            Retrieve(_) => "POST /collections/{collection_name}/points",
            GetPoint(..) => "GET /collections/{collection_name}/points/{id}",
            DeletePoints(_) => "POST /collections/{collection_name}/points/delete",
            Count(_) => "POST /collections/{collection_name}/points/count",
            Scroll(_) => "POST /collections/{collection_name}/points/scroll",
            ListSnapshots(_) => "GET /collections/{collection_name}/snapshots",
            CreateSnapshot(_) => "POST /collections/{collection_name}/snapshots",
            UploadSnapshot(_) => "POST /collections/{collection_name}/snapshots/upload",
            RecoverSnapshot(_) => "PUT /collections/{collection_name}/snapshots/recover",
            DownloadSnapshot(..) => "GET /collections/{collection_name}/snapshots/{snapshot_name}",
            DeleteSnapshot(..) => "DELETE /collections/{collection_name}/snapshots/{snapshot_name}",
            ListFull => "GET /snapshots",
            CreateFull => "POST /snapshots",
            DownloadFull(_) => "GET /snapshots/{snapshot_name}",
            DeleteFull(_) => "DELETE /snapshots/{snapshot_name}",
        }
    }

    /// Whether the handler reads a JSON body (and so the 32 MiB limit applies).
    fn takes_json(&self) -> bool {
        use Route::*;
        matches!(
            self,
            CreateCollection(_)
                | CreateIndex(_)
                | Upsert(_)
                | Retrieve(_)
                | DeletePoints(_)
                | Count(_)
                | Scroll(_)
                | RecoverSnapshot(_)
        )
    }
}

/// Matches a request to a route.
pub(crate) fn resolve(method: &str, path: &str) -> Option<Route> {
    let rest = path.strip_prefix('/')?;
    let segments: Vec<String> = if rest.is_empty() {
        Vec::new()
    } else {
        rest.split('/').map(percent_decode).collect()
    };
    // A `{param}` matches one or more characters: `/collections/` is no route.
    if segments.iter().any(String::is_empty) {
        return None;
    }
    let s: Vec<&str> = segments.iter().map(String::as_str).collect();
    let own = |x: &str| x.to_owned();
    use Route::*;
    Some(match (method, s.as_slice()) {
        ("GET", []) => Root,
        ("GET", ["healthz"]) => Healthz,
        ("GET", ["livez"]) => Livez,
        ("GET", ["readyz"]) => Readyz,
        ("GET", ["metrics"]) => Metrics,
        ("GET", ["telemetry"]) => Telemetry,
        ("GET", ["cluster"]) => Cluster,
        ("GET", ["collections"]) => ListCollections,
        ("GET", ["collections", c]) => GetCollection(own(c)),
        ("PUT", ["collections", c]) => CreateCollection(own(c)),
        ("DELETE", ["collections", c]) => DeleteCollection(own(c)),
        ("GET", ["collections", c, "exists"]) => CollectionExists(own(c)),
        ("GET", ["collections", c, "cluster"]) => CollectionCluster(own(c)),
        ("PUT", ["collections", c, "index"]) => CreateIndex(own(c)),
        ("DELETE", ["collections", c, "index", f]) => DeleteIndex(own(c), own(f)),
        ("PUT", ["collections", c, "points"]) => Upsert(own(c)),
        ("POST", ["collections", c, "points"]) => Retrieve(own(c)),
        ("POST", ["collections", c, "points", "delete"]) => DeletePoints(own(c)),
        ("POST", ["collections", c, "points", "count"]) => Count(own(c)),
        ("POST", ["collections", c, "points", "scroll"]) => Scroll(own(c)),
        ("GET", ["collections", c, "points", id]) => GetPoint(own(c), own(id)),
        ("GET", ["collections", c, "snapshots"]) => ListSnapshots(own(c)),
        ("POST", ["collections", c, "snapshots"]) => CreateSnapshot(own(c)),
        ("POST", ["collections", c, "snapshots", "upload"]) => UploadSnapshot(own(c)),
        ("PUT", ["collections", c, "snapshots", "recover"]) => RecoverSnapshot(own(c)),
        ("GET", ["collections", c, "snapshots", name]) => DownloadSnapshot(own(c), own(name)),
        ("DELETE", ["collections", c, "snapshots", name]) => DeleteSnapshot(own(c), own(name)),
        ("GET", ["snapshots"]) => ListFull,
        ("POST", ["snapshots"]) => CreateFull,
        ("GET", ["snapshots", name]) => DownloadFull(own(name)),
        ("DELETE", ["snapshots", name]) => DeleteFull(own(name)),
        _ => return None,
    })
}

/// Whether the body of a request is JSON, so that over 32 MiB it is refused before it is
/// read. The auth middleware runs first: a request it refuses gets its 401 after the body
/// is read like any other, whatever the route's limit.
pub(crate) fn json_limited(
    shared: &Shared,
    method: &str,
    path: &str,
    headers: &[(String, String)],
) -> bool {
    auth::authenticate(shared, path, headers).is_ok()
        && resolve(method, path).is_some_and(|r| r.takes_json())
}

/// 400 for a JSON body over the limit (actix's `JsonPayloadError::Overflow*` wording).
pub(crate) fn json_too_large(length: Option<u64>) -> Response {
    let message = match length {
        Some(length) => format!(
            "Payload error: JSON payload ({length} bytes) is larger than allowed (limit: {JSON_LIMIT} bytes)."
        ),
        None => format!("Payload error: JSON payload is larger than allowed (limit: {JSON_LIMIT} bytes)."),
    };
    QError::new(400, message).json(0.0)
}

/// Answers a request that has been read completely.
pub(crate) fn handle(shared: &Arc<Shared>, request: Request) -> Response {
    let started = Instant::now();
    let route = resolve(&request.method, &request.path);
    let key = route
        .as_ref()
        .map(|r| r.pattern().to_owned())
        .unwrap_or_else(|| format!("{} <unknown>", request.method));
    let access = auth::authenticate(shared, &request.path, &request.headers);
    let response = match access {
        Err(refused) => refused,
        Ok(access) => match route {
            None => Response::empty(404),
            Some(route) => dispatch(shared, route, request, access, started),
        },
    };
    *shared
        .stats
        .lock()
        .unwrap()
        .entry(key)
        .or_default()
        .entry(response.status)
        .or_default() += 1;
    response
}

fn dispatch(
    shared: &Arc<Shared>,
    route: Route,
    mut request: Request,
    access: Access,
    started: Instant,
) -> Response {
    // An upload is handed over rather than copied: it may be large.
    let upload = match route {
        Route::UploadSnapshot(_) => std::mem::take(&mut request.body),
        _ => Vec::new(),
    };
    let ctx = Ctx {
        shared,
        request: &request,
        access,
        started,
    };
    use Route::*;
    match route {
        Root => service::root(),
        Healthz | Livez => Response::text(200, "healthz check passed"),
        Readyz => Response::text(200, "all shards are ready"),
        Metrics => service::metrics(&ctx),
        Telemetry => service::telemetry(&ctx),
        Cluster => service::cluster(&ctx),
        CollectionCluster(c) => service::collection_cluster(&ctx, &c),
        ListCollections => collections::list(&ctx),
        GetCollection(c) => collections::get(&ctx, &c),
        CreateCollection(c) => collections::create(&ctx, &c),
        DeleteCollection(c) => collections::delete(&ctx, &c),
        CollectionExists(c) => collections::exists(&ctx, &c),
        CreateIndex(c) => collections::create_index(&ctx, &c),
        DeleteIndex(c, f) => collections::delete_index(&ctx, &c, &f),
        Upsert(c) => points::upsert(&ctx, &c),
        Retrieve(c) => points::retrieve(&ctx, &c),
        GetPoint(c, id) => points::get_point(&ctx, &c, &id),
        DeletePoints(c) => points::delete(&ctx, &c),
        Count(c) => points::count(&ctx, &c),
        Scroll(c) => points::scroll(&ctx, &c),
        ListSnapshots(c) => snapshots::list(&ctx, &c),
        CreateSnapshot(c) => snapshots::create(&ctx, &c),
        UploadSnapshot(c) => restore::upload(&ctx, &c, upload),
        RecoverSnapshot(c) => restore::recover(&ctx, &c),
        DownloadSnapshot(c, name) => snapshots::download(&ctx, &c, &name),
        DeleteSnapshot(c, name) => snapshots::delete(&ctx, &c, &name),
        ListFull => snapshots::list_full(&ctx),
        CreateFull => snapshots::create_full(&ctx),
        DownloadFull(name) => snapshots::download_full(&ctx, &name),
        DeleteFull(name) => snapshots::delete_full(&ctx, &name),
    }
}

/// What a handler gets.
pub(crate) struct Ctx<'a> {
    pub shared: &'a Arc<Shared>,
    pub request: &'a Request,
    pub access: Access,
    pub started: Instant,
}

impl Ctx<'_> {
    /// Seconds since the request was read: the envelope's `time`.
    pub fn elapsed(&self) -> f64 {
        self.started.elapsed().as_secs_f64()
    }

    /// `{"result": …}` or the error envelope.
    pub fn reply(&self, result: Result<Value, QError>) -> Response {
        match result {
            Ok(value) => ok(value, self.elapsed()),
            Err(e) => e.json(self.elapsed()),
        }
    }

    /// The query string, parsed.
    pub fn query(&self) -> Query {
        Query::parse(&self.request.query)
    }

    /// The JSON body as `T` (content type not checked, as Qdrant does not).
    pub fn json<T: DeserializeOwned>(&self) -> Result<T, QError> {
        serde_json::from_slice(&self.request.body).map_err(|e| QError::format("JSON body", e))
    }

    /// Runs `work` now (`wait=true`: its result or error) or in the background (`wait=false`:
    /// 202 whatever happens).
    pub fn run_or_accept(
        &self,
        wait: bool,
        what: String,
        work: impl FnOnce(&Arc<Shared>) -> Result<Value, QError> + Send + 'static,
    ) -> Response {
        if wait {
            let result = work(self.shared);
            self.reply(result)
        } else {
            Tasks::spawn(self.shared, what, move |shared| work(shared).map(|_| ()));
            accepted(self.elapsed())
        }
    }
}

/// Query parameters as serde_urlencoded reads them into Qdrant's parameter structs:
/// unknown parameters ignored, a known one given twice refused.
pub(crate) struct Query {
    pairs: Vec<(String, String)>,
}

impl Query {
    pub fn parse(raw: &str) -> Query {
        Query {
            pairs: url::form_urlencoded::parse(raw.as_bytes())
                .map(|(k, v)| (k.into_owned(), v.into_owned()))
                .collect(),
        }
    }

    /// The value of a parameter the route knows.
    pub fn get(&self, name: &str) -> Result<Option<&str>, QError> {
        let mut values = self.pairs.iter().filter(|(k, _)| k == name);
        let first = values.next();
        if values.next().is_some() {
            return Err(QError::deserialize(
                "query parameters",
                format!("duplicate field `{name}`"),
            ));
        }
        Ok(first.map(|(_, v)| v.as_str()))
    }

    /// A boolean parameter (`true` / `false` only).
    pub fn bool(&self, name: &str) -> Result<Option<bool>, QError> {
        match self.get(name)? {
            None => Ok(None),
            Some("true") => Ok(Some(true)),
            Some("false") => Ok(Some(false)),
            Some(_) => Err(QError::deserialize(
                "query parameters",
                "provided string was not `true` or `false`",
            )),
        }
    }

    /// A parameter that is one of `variants` (serde's unknown-variant wording).
    pub fn variant(&self, name: &str, variants: &[&str]) -> Result<Option<String>, QError> {
        match self.get(name)? {
            None => Ok(None),
            Some(v) if variants.contains(&v) => Ok(Some(v.to_owned())),
            Some(v) => Err(QError::deserialize(
                "query parameters",
                unknown_variant(v, variants),
            )),
        }
    }

    /// `wait`, for routes whose default is `true` (snapshots) or `false` (points, indexes).
    pub fn wait(&self, default: bool) -> Result<bool, QError> {
        Ok(self.bool("wait")?.unwrap_or(default))
    }
}

/// serde's message for an unknown enum variant.
pub(crate) fn unknown_variant(value: &str, variants: &[&str]) -> String {
    let expected = match variants {
        [] => "there are no variants".to_owned(),
        [one] => format!("expected `{one}`"),
        [a, b] => format!("expected `{a}` or `{b}`"),
        many => format!(
            "expected one of {}",
            many.iter()
                .map(|v| format!("`{v}`"))
                .collect::<Vec<_>>()
                .join(", ")
        ),
    };
    format!("unknown variant `{value}`, {expected}")
}

/// `validate_collection_name` plus `length(min = 1, max = 255)`, for the routes that take
/// `valid::Path<CollectionPath>` (create, upload, recover): 422.
pub(crate) fn validate_collection_name(name: &str) -> Result<(), QError> {
    const INVALID: [char; 11] = ['<', '>', ':', '"', '/', '\\', '|', '?', '*', '\0', '\u{1F}'];
    let mut problems = Vec::new();
    let chars = name.chars().count();
    if !(1..=255).contains(&chars) {
        problems.push(format!(
            "collection_name: value {name:?} invalid, must be from 1 to 255 characters"
        ));
    }
    if let Some(c) = INVALID.iter().find(|c| name.contains(**c)) {
        problems.push(format!(
            "collection_name: collection name cannot contain \"{c}\" char"
        ));
    }
    if problems.is_empty() {
        Ok(())
    } else {
        Err(QError::validation("path parameters", problems.join(", ")))
    }
}

/// Qdrant's `validate_sha256_hash`, rendered as `label_errors` renders it.
pub(crate) fn validate_sha256(field: &str, value: &str, place: &str) -> Result<(), QError> {
    if value.len() == 64 && value.bytes().all(|b| b.is_ascii_hexdigit()) {
        return Ok(());
    }
    let params = if value.len() != 64 {
        format!(
            "{{\"length\": Number({}), \"value\": String({value:?}), \"expected_length\": Number(64)}}",
            value.len()
        )
    } else {
        format!("{{\"value\": String({value:?})}}")
    };
    Err(QError::validation(
        place,
        format!("{field}: Validation error: invalid_sha256_hash [{params}]"),
    ))
}

/// `{"result": …}` for a value built with `json!`.
pub(crate) fn result_true() -> Value {
    json!(true)
}
