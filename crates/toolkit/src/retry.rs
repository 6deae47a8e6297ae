//! One retry policy for every network call: S3 requests, Qdrant and Neo4j HTTP calls.
//!
//! An operation is retried while its failure is *transient* (a connection error, a
//! timeout, HTTP 408/429/5xx — the caller classifies), at most `retries` times, with
//! exponential backoff, and never past `give_up_after` counted from the first attempt: a
//! server that accepts connections and never answers costs at most that long, not
//! `retries` × the request timeout. A termination signal ends the waiting at once.

use std::fmt;
use std::time::{Duration, Instant};

/// How often and how long to retry.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RetryPolicy {
    /// Retries after the first attempt.
    pub retries: u32,
    /// The first backoff; each next one doubles.
    pub first_delay: Duration,
    /// The longest backoff.
    pub max_delay: Duration,
    /// No attempt starts after this much time since the first one.
    pub give_up_after: Duration,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        RetryPolicy {
            retries: 5,
            first_delay: Duration::from_millis(250),
            max_delay: Duration::from_secs(8),
            give_up_after: Duration::from_secs(15 * 60),
        }
    }
}

/// How one attempt failed.
#[derive(Debug)]
pub enum Failure<E> {
    /// Worth another attempt.
    Transient(E),
    /// Not: bad credentials, a missing object, a refusal.
    Permanent(E),
}

/// The last failure of an operation, and how many attempts were made.
#[derive(Debug)]
pub struct GaveUp<E> {
    /// The last error.
    pub error: E,
    /// Attempts made (1 when the first failed permanently).
    pub attempts: u32,
    /// Whether the last error was transient (so retries were used up or the time was).
    pub transient: bool,
    /// Time from the first attempt to giving up.
    pub elapsed: Duration,
}

impl<E> GaveUp<E> {
    /// ` (gave up after 3 attempts in 12 s)` for transient failures that were retried;
    /// empty otherwise.
    pub fn suffix(&self) -> String {
        if self.transient && self.attempts > 1 {
            format!(
                " (gave up after {} attempts in {} s)",
                self.attempts,
                self.elapsed.as_secs()
            )
        } else {
            String::new()
        }
    }
}

impl<E: fmt::Display> fmt::Display for GaveUp<E> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}{}", self.error, self.suffix())
    }
}

impl RetryPolicy {
    /// No retries at all.
    pub fn none() -> Self {
        RetryPolicy {
            retries: 0,
            ..Default::default()
        }
    }

    /// The backoff before retry number `retry` (0-based).
    pub fn delay(&self, retry: u32) -> Duration {
        self.first_delay
            .saturating_mul(1u32 << retry.min(16))
            .min(self.max_delay)
    }

    /// Runs `op` until it succeeds, fails permanently, the retries are used up, the time
    /// is, or a termination signal arrives.
    pub fn run<T, E>(&self, mut op: impl FnMut() -> Result<T, Failure<E>>) -> Result<T, GaveUp<E>> {
        let started = Instant::now();
        let mut attempts = 0;
        loop {
            attempts += 1;
            let (error, transient) = match op() {
                Ok(value) => return Ok(value),
                Err(Failure::Transient(e)) => (e, true),
                Err(Failure::Permanent(e)) => (e, false),
            };
            let delay = self.delay(attempts - 1);
            let out_of_time = started.elapsed() + delay >= self.give_up_after;
            if !transient
                || attempts > self.retries
                || out_of_time
                || crate::interrupt::sleep(delay).is_err()
            {
                return Err(GaveUp {
                    error,
                    attempts,
                    transient,
                    elapsed: started.elapsed(),
                });
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fast(retries: u32) -> RetryPolicy {
        RetryPolicy {
            retries,
            first_delay: Duration::from_millis(1),
            max_delay: Duration::from_millis(4),
            give_up_after: Duration::from_secs(60),
        }
    }

    #[test]
    fn table_of_runs() {
        // (retries, failures before success (None: never), permanent?, attempts, ok?)
        let cases = [
            (3, Some(0), false, 1, true),
            (3, Some(2), false, 3, true),
            (3, Some(3), false, 4, true),
            (3, Some(4), false, 4, false),
            (3, None, true, 1, false),
            (0, Some(1), false, 1, false),
        ];
        for (retries, fail_first, permanent, want_attempts, want_ok) in cases {
            let mut calls = 0;
            let result = fast(retries).run(|| {
                calls += 1;
                match fail_first {
                    Some(n) if calls > n => Ok(calls),
                    _ if permanent => Err(Failure::Permanent("denied")),
                    _ => Err(Failure::Transient("timeout")),
                }
            });
            assert_eq!(calls, want_attempts, "{retries} {fail_first:?} {permanent}");
            assert_eq!(result.is_ok(), want_ok);
            if let Err(gave_up) = result {
                assert_eq!(gave_up.attempts, want_attempts);
            }
        }
    }

    #[test]
    fn the_time_budget_stops_retries_before_they_are_used_up() {
        let policy = RetryPolicy {
            retries: 100,
            first_delay: Duration::from_millis(20),
            max_delay: Duration::from_millis(20),
            give_up_after: Duration::from_millis(100),
        };
        let started = Instant::now();
        let gave_up = policy
            .run(|| -> Result<(), _> { Err(Failure::Transient("mute")) })
            .unwrap_err();
        assert!(started.elapsed() < Duration::from_millis(500));
        assert!(gave_up.attempts < 10, "{}", gave_up.attempts);
        assert!(
            gave_up.to_string().starts_with("mute (gave up after"),
            "{gave_up}"
        );
    }

    #[test]
    fn backoff_doubles_up_to_the_cap() {
        let p = RetryPolicy::default();
        let delays: Vec<u128> = (0..7).map(|i| p.delay(i).as_millis()).collect();
        assert_eq!(delays, [250, 500, 1000, 2000, 4000, 8000, 8000]);
    }
}
