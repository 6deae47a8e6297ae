//! Qdrant's errors and the three ways it writes them: the JSON envelope
//! `{"status":{"error":…},"time":…}` (most routes), `text/plain` (snapshot downloads,
//! multipart), and a bare body without content type (401 from the auth middleware).

use std::fmt;

use serde_json::{json, Value};

use super::http::Response;

/// An error as Qdrant's storage layer describes it: a status and the full message
/// (`Not found: Collection `x` doesn't exist!`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct QError {
    pub status: u16,
    pub message: String,
}

impl fmt::Display for QError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl QError {
    pub fn new(status: u16, message: impl Into<String>) -> Self {
        QError {
            status,
            message: message.into(),
        }
    }

    /// 404 `Not found: {what}`.
    pub fn not_found(what: impl fmt::Display) -> Self {
        Self::new(404, format!("Not found: {what}"))
    }

    /// 404 for a collection that does not exist.
    pub fn no_collection(name: &str) -> Self {
        Self::not_found(format!("Collection `{name}` doesn't exist!"))
    }

    /// 404 `Not found: Snapshot {name} not found` (CollectionError::NotFound wording).
    pub fn no_snapshot(what: impl fmt::Display) -> Self {
        Self::not_found(format!("{what} not found"))
    }

    /// 400 `Wrong input: …` (StorageError::BadInput).
    pub fn bad_input(what: impl fmt::Display) -> Self {
        Self::new(400, format!("Wrong input: {what}"))
    }

    /// 400 `Bad request: …` (StorageError::BadRequest).
    pub fn bad_request(what: impl fmt::Display) -> Self {
        Self::new(400, format!("Bad request: {what}"))
    }

    /// 409 for a collection that exists already.
    pub fn already_exists(name: &str) -> Self {
        Self::new(
            409,
            format!("Wrong input: Collection `{name}` already exists!"),
        )
    }

    /// 403 `Forbidden: …`.
    pub fn forbidden(what: impl fmt::Display) -> Self {
        Self::new(403, format!("Forbidden: {what}"))
    }

    /// 500 `Service internal error: …`.
    pub fn service(what: impl fmt::Display) -> Self {
        Self::new(500, format!("Service internal error: {what}"))
    }

    /// 500 for an I/O failure (`Service internal error: File IO error: …`).
    pub fn io(what: impl fmt::Display) -> Self {
        Self::service(format!("File IO error: {what}"))
    }

    /// 400 `Format error in {place}: …` (a body that does not deserialize).
    pub fn format(place: &str, what: impl fmt::Display) -> Self {
        Self::new(400, format!("Format error in {place}: {what}"))
    }

    /// 400 `Deserialize error in {place}: …` (query and path parameters).
    pub fn deserialize(place: &str, what: impl fmt::Display) -> Self {
        Self::new(400, format!("Deserialize error in {place}: {what}"))
    }

    /// 422 `Validation error in {place}: [{what}]`.
    pub fn validation(place: &str, what: impl fmt::Display) -> Self {
        Self::new(422, format!("Validation error in {place}: [{what}]"))
    }

    /// The JSON envelope, as most routes answer.
    pub fn json(&self, time: f64) -> Response {
        Response::json(
            self.status,
            &json!({"status": {"error": self.message}, "time": time}),
        )
    }

    /// `text/plain; charset=utf-8`, as snapshot downloads and multipart errors answer.
    pub fn text(&self) -> Response {
        Response::text(self.status, &self.message)
    }
}

/// `{"result": …, "status": "ok", "time": …}`.
pub(crate) fn ok(result: Value, time: f64) -> Response {
    Response::json(
        200,
        &json!({"result": result, "status": "ok", "time": time}),
    )
}

/// 202 `{"status": "accepted", "time": …}`: what `wait=false` answers, whatever happens
/// next.
pub(crate) fn accepted(time: f64) -> Response {
    Response::json(202, &json!({"status": "accepted", "time": time}))
}
