//! A password that does not print.

use std::fmt;

/// A PostgreSQL password. `Debug` and `Display` show `***`, so a password inside settings
/// or errors that are logged never reaches a log; [`Password::expose`] is the one way to
/// read it, and its call sites are the places a secret leaves this crate (the driver, a
/// child's `PGPASSWORD`).
#[derive(Clone, PartialEq, Eq)]
pub struct Password(String);

impl Password {
    /// Wraps a password.
    pub fn new(password: impl Into<String>) -> Self {
        Password(password.into())
    }

    /// The password itself.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Password {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Password(***)")
    }
}

impl fmt::Display for Password {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("***")
    }
}

impl From<String> for Password {
    fn from(password: String) -> Self {
        Password(password)
    }
}

impl From<&str> for Password {
    fn from(password: &str) -> Self {
        Password(password.to_owned())
    }
}

#[cfg(test)]
mod tests {
    use super::Password;

    #[test]
    fn never_prints_itself() {
        let p = Password::new("hunter2");
        assert_eq!(
            format!("{p} {p:?} {p:#?}"),
            "*** Password(***) Password(***)"
        );
        assert_eq!(p.expose(), "hunter2");
    }
}
