//! API keys as Qdrant's auth middleware checks them (`src/actix/auth.rs`,
//! `src/common/auth/mod.rs`): before routing, so an unknown route without a key is a 401.

use super::errors::QError;
use super::http::Response;
use super::Shared;

/// What a request may do.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Access {
    Full,
    ReadOnly,
}

impl Access {
    /// `Access::check_global_access(manage)`: the read-only key may not change anything.
    pub fn require_manage(self) -> Result<(), QError> {
        match self {
            Access::Full => Ok(()),
            Access::ReadOnly => Err(QError::forbidden("Global manage access is required")),
        }
    }
}

/// Paths the middleware never checks (exact matches).
const PUBLIC: [&str; 4] = ["/", "/healthz", "/livez", "/readyz"];

/// The key a request presents: the `api-key` header wins over `Authorization: Bearer …`
/// (case-sensitive scheme; a bare token is not a key).
fn presented_key(headers: &[(String, String)]) -> Option<&str> {
    let get = |name: &str| {
        headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    };
    get("api-key").or_else(|| get("authorization").and_then(|v| v.strip_prefix("Bearer ")))
}

/// The access of a request, or the middleware's 401 (plain text, no content type).
pub(crate) fn authenticate(
    shared: &Shared,
    path: &str,
    headers: &[(String, String)],
) -> Result<Access, Response> {
    if shared.api_key.is_none() && shared.read_only_key.is_none() {
        return Ok(Access::Full);
    }
    if PUBLIC.contains(&path) {
        return Ok(Access::Full);
    }
    let Some(key) = presented_key(headers) else {
        return Err(Response::bare(
            401,
            "Must provide an API key or an Authorization bearer token",
        ));
    };
    if shared.api_key.as_deref() == Some(key) {
        Ok(Access::Full)
    } else if shared.read_only_key.as_deref() == Some(key) {
        Ok(Access::ReadOnly)
    } else {
        Err(Response::bare(401, "Invalid API key or JWT"))
    }
}
