//! Cross-database rules as a sorted merge of paged id streams.
//!
//! Each side yields its ids a page at a time, in one total order ([`Key`]: integers first,
//! by value, then strings by their UTF-8 bytes — UUIDs as lowercase text). PostgreSQL pages
//! with keyset queries (`WHERE id > $last ORDER BY id LIMIT n`, `COLLATE "C"` for text),
//! Neo4j the same in Cypher, Qdrant with its scroll (ordered by point id). [`merge`] walks
//! the sides together, one page of each in memory, and counts for each other side the ids
//! the first side has and it lacks, and the reverse, with the first few of each as a
//! sample: a million ids cost `1e6 / page` round trips per side and one page of ids each.
//!
//! A side that hands out an id lower than one it gave before breaks the order the merge
//! relies on: that is an error, never a wrong count. Equal ids in a row (a column that is
//! not unique, two nodes with the same id) are counted as duplicates and merged.

use std::cmp::Ordering;
use std::collections::VecDeque;
use std::fmt;

use crate::error::Error;

/// An id as the databases have it, in the merge's order.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum Key {
    /// An integer (PostgreSQL `smallint`/`integer`/`bigint`, a Qdrant point number, a
    /// Neo4j integer).
    Int(i128),
    /// A string (PostgreSQL text or uuid, a Qdrant UUID, a Neo4j string).
    Str(String),
}

impl Ord for Key {
    fn cmp(&self, other: &Self) -> Ordering {
        match (self, other) {
            (Key::Int(a), Key::Int(b)) => a.cmp(b),
            (Key::Int(_), Key::Str(_)) => Ordering::Less,
            (Key::Str(_), Key::Int(_)) => Ordering::Greater,
            // Bytes, as PostgreSQL's "C" collation and Qdrant's UUID order have them.
            (Key::Str(a), Key::Str(b)) => a.as_bytes().cmp(b.as_bytes()),
        }
    }
}

impl PartialOrd for Key {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

impl fmt::Display for Key {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Key::Int(n) => write!(f, "{n}"),
            Key::Str(s) => write!(f, "{s:?}"),
        }
    }
}

impl Key {
    /// As JSON: a number or a string.
    pub fn to_json(&self) -> serde_json::Value {
        match self {
            // Ids beyond i64 (Qdrant's u64) stay exact as text.
            Key::Int(n) => i64::try_from(*n)
                .map(serde_json::Value::from)
                .or_else(|_| u64::try_from(*n).map(serde_json::Value::from))
                .unwrap_or_else(|_| n.to_string().into()),
            Key::Str(s) => s.clone().into(),
        }
    }
}

/// One side of a cross-database rule: its ids, a page at a time, ascending.
pub trait IdSource {
    /// What it is, for the report: `postgres public.documents.id`.
    fn describe(&self) -> String;
    /// The next page (empty: no more).
    fn next_page(&mut self) -> Result<Vec<Key>, Error>;
    /// Requests made so far.
    fn round_trips(&self) -> u64;
}

/// A side being merged: its current page and what it has handed out.
struct Cursor<'a> {
    source: &'a mut dyn IdSource,
    page: VecDeque<Key>,
    last: Option<Key>,
    done: bool,
    ids: u64,
    duplicates: u64,
    largest_page: usize,
}

impl Cursor<'_> {
    /// The next distinct id, without taking it.
    fn peek(&mut self) -> Result<Option<&Key>, Error> {
        loop {
            if self.page.is_empty() && !self.done {
                Error::check_interrupted()?;
                let page = self.source.next_page()?;
                self.largest_page = self.largest_page.max(page.len());
                self.done = page.is_empty();
                self.page = page.into();
            }
            let Some(next) = self.page.front() else {
                return Ok(None);
            };
            match self.last.as_ref().map(|l| next.cmp(l)) {
                Some(Ordering::Less) => {
                    return Err(Error::Failed(format!(
                        "{} handed out {next} after {}: not in the order the comparison needs \
                         (integers ascending, then strings by bytes)",
                        self.source.describe(),
                        self.last.as_ref().expect("compared")
                    )))
                }
                Some(Ordering::Equal) => {
                    self.duplicates += 1;
                    self.page.pop_front();
                }
                _ => return Ok(self.page.front()),
            }
        }
    }

    fn take(&mut self) {
        let key = self.page.pop_front().expect("peeked");
        self.ids += 1;
        self.last = Some(key);
    }
}

/// What the merge found between the first side and one other.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Pair {
    /// Ids of the first side the other lacks.
    pub missing: u64,
    /// The first of them.
    pub missing_sample: Vec<Key>,
    /// Ids of the other side the first lacks.
    pub extra: u64,
    /// The first of them.
    pub extra_sample: Vec<Key>,
}

/// Figures of one side.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct SideFigures {
    /// What it is.
    pub describe: String,
    /// Distinct ids.
    pub ids: u64,
    /// Ids seen again right after themselves.
    pub duplicates: u64,
    /// Requests made.
    pub round_trips: u64,
    /// The largest page held.
    pub largest_page: usize,
}

/// The outcome of [`merge`].
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Merged {
    /// Per side, in the order given.
    pub sides: Vec<SideFigures>,
    /// Per other side (`sides[1..]`), against the first.
    pub pairs: Vec<Pair>,
}

/// Merges `sources` (at least two), comparing each with the first; `sample` ids of each
/// difference are kept; `tick` is called with the number of ids taken (for progress).
pub fn merge(
    sources: &mut [&mut dyn IdSource],
    sample: usize,
    tick: &mut dyn FnMut(u64),
) -> Result<Merged, Error> {
    let mut cursors: Vec<Cursor> = sources
        .iter_mut()
        .map(|s| Cursor {
            source: &mut **s,
            page: VecDeque::new(),
            last: None,
            done: false,
            ids: 0,
            duplicates: 0,
            largest_page: 0,
        })
        .collect();
    let mut pairs = vec![Pair::default(); cursors.len().saturating_sub(1)];
    loop {
        let mut smallest: Option<Key> = None;
        for c in cursors.iter_mut() {
            if let Some(k) = c.peek()? {
                if smallest.as_ref().is_none_or(|s| k < s) {
                    smallest = Some(k.clone());
                }
            }
        }
        let Some(key) = smallest else { break };
        let mut present = Vec::with_capacity(cursors.len());
        for c in cursors.iter_mut() {
            let here = c.peek()? == Some(&key);
            if here {
                c.take();
            }
            present.push(here);
        }
        for (i, pair) in pairs.iter_mut().enumerate() {
            match (present[0], present[i + 1]) {
                (true, false) => {
                    pair.missing += 1;
                    if pair.missing_sample.len() < sample {
                        pair.missing_sample.push(key.clone());
                    }
                }
                (false, true) => {
                    pair.extra += 1;
                    if pair.extra_sample.len() < sample {
                        pair.extra_sample.push(key.clone());
                    }
                }
                _ => {}
            }
        }
        tick(1);
    }
    Ok(Merged {
        sides: cursors
            .iter()
            .map(|c| SideFigures {
                describe: c.source.describe(),
                ids: c.ids,
                duplicates: c.duplicates,
                round_trips: c.source.round_trips(),
                largest_page: c.largest_page,
            })
            .collect(),
        pairs,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A side serving `ids` in pages of `page`.
    struct Fixed {
        ids: Vec<Key>,
        page: usize,
        at: usize,
        trips: u64,
    }

    impl IdSource for Fixed {
        fn describe(&self) -> String {
            "fixed".into()
        }
        fn next_page(&mut self) -> Result<Vec<Key>, Error> {
            self.trips += 1;
            let end = (self.at + self.page).min(self.ids.len());
            let page = self.ids[self.at..end].to_vec();
            self.at = end;
            Ok(page)
        }
        fn round_trips(&self) -> u64 {
            self.trips
        }
    }

    fn side(ids: &[i64], page: usize) -> Fixed {
        Fixed {
            ids: ids.iter().map(|&i| Key::Int(i.into())).collect(),
            page,
            at: 0,
            trips: 0,
        }
    }

    fn ints(keys: &[Key]) -> Vec<i128> {
        keys.iter()
            .map(|k| match k {
                Key::Int(n) => *n,
                Key::Str(_) => -1,
            })
            .collect()
    }

    #[test]
    fn table_of_merges() {
        // (first, other, page, missing, extra)
        type Case<'a> = (&'a [i64], &'a [i64], usize, &'a [i128], &'a [i128]);
        #[rustfmt::skip]
        let cases: [Case; 6] = [
            (&[1, 2, 3], &[1, 2, 3], 2, &[], &[]),
            (&[1, 2, 3, 4], &[1, 3], 1, &[2, 4], &[]),
            (&[2], &[1, 2, 3], 5, &[], &[1, 3]),
            (&[], &[7, 8], 3, &[], &[7, 8]),
            (&[1, 1, 2], &[1, 2, 2], 2, &[], &[]),
            (&[1, 5, 9, 10, 11], &[5, 6, 11], 2, &[1, 9, 10], &[6]),
        ];
        for (a, b, page, missing, extra) in cases {
            let (mut x, mut y) = (side(a, page), side(b, page));
            let m = merge(&mut [&mut x, &mut y], 10, &mut |_| {}).unwrap();
            assert_eq!(ints(&m.pairs[0].missing_sample), missing, "{a:?} {b:?}");
            assert_eq!(ints(&m.pairs[0].extra_sample), extra, "{a:?} {b:?}");
            assert_eq!(m.pairs[0].missing as usize, missing.len());
            assert!(m.sides.iter().all(|s| s.largest_page <= page));
        }
    }

    #[test]
    fn three_sides_are_each_compared_with_the_first_and_samples_are_capped() {
        let (mut a, mut b, mut c) = (
            side(&(0..100).collect::<Vec<_>>(), 7),
            side(&(0..100).filter(|i| i % 10 != 0).collect::<Vec<_>>(), 7),
            side(&(0..105).collect::<Vec<_>>(), 7),
        );
        let m = merge(&mut [&mut a, &mut b, &mut c], 3, &mut |_| {}).unwrap();
        assert_eq!(
            (m.pairs[0].missing, ints(&m.pairs[0].missing_sample)),
            (10, vec![0, 10, 20])
        );
        assert_eq!((m.pairs[1].missing, m.pairs[1].extra), (0, 5));
        // 100 ids in pages of 7: 15 pages, and the empty one that ends it.
        assert_eq!(m.sides[0].round_trips, 16);
        assert_eq!(m.sides[0].ids, 100);
    }

    #[test]
    fn integers_come_before_strings_and_strings_sort_by_bytes() {
        let mut keys = [
            Key::Str("b".into()),
            Key::Int(10),
            Key::Str("B".into()),
            Key::Int(-3),
            Key::Str("é".into()),
            Key::Str("z".into()),
        ];
        keys.sort();
        assert_eq!(
            keys.iter().map(ToString::to_string).collect::<Vec<_>>(),
            ["-3", "10", "\"B\"", "\"b\"", "\"z\"", "\"é\""]
        );
        assert_eq!(
            Key::Int(u64::MAX.into()).to_json(),
            serde_json::json!(u64::MAX)
        );
    }

    #[test]
    fn a_side_out_of_order_is_an_error_not_a_count() {
        let (mut a, mut b) = (side(&[1, 3, 2], 10), side(&[1, 2, 3], 10));
        let err = merge(&mut [&mut a, &mut b], 10, &mut |_| {}).unwrap_err();
        assert!(err.to_string().contains("handed out 2 after 3"), "{err}");
    }
}
