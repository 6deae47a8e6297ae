//! The graph inside the recorded dump `tests/fixtures/reference/neo4j-5.3/fixtures/neo4j.dump`.
//!
//! The fake cannot read Neo4j's record store files. When `neo4j-admin database load`
//! is given a real dump whose store files are the recorded fixture's (recognised by the
//! SHA-256 of the dump, or of its store file contents), the fake loads the graph described
//! here instead. The description was derived once, offline, by decoding that dump's node,
//! relationship and property stores (every value checked against the formulas below); the
//! relationship id order, which the recorder's generator shuffled, is kept as two tables.
//!
//! 600 `:Person {pid, name, age, score, joined: date, tags: [..]}` (ids 0–599), 400
//! `:Company {cid, name, revenue, active, founded: datetime}` (ids 600–999), one
//! `:RefBytes {key: 'bytes', data: byte[]{0,1,2,127,-128,-1}, empty: byte[0]}` (id 1000);
//! 600 `WORKS_AT {role, since}` (ids 0–599), 1000 `KNOWS {note, weight}` (600–1599), 400
//! `PARTNER_OF {since: datetime, level}` (1600–1999); unique constraint `person_pid`
//! (`:Person(pid)`), range index `company_cid` (`:Company(cid)`).

use chrono::{NaiveDate, NaiveTime};

use super::cypher::exec::DbInfo;
use super::graph::Graph;
use super::server::Database;
use super::temporal::ZonedDateTime;
use super::value::Value;

/// SHA-256 of the recorded dump file.
pub const DUMP_SHA256: &str = "a781c0abf49af4c7bd2448a3a3b12cd9225f1260d05a7f034036062eafb4140c";

/// SHA-256 over its regular files (path, NUL, content; sorted by path): the same for every
/// dump of that store, whatever the tar headers' times.
pub const STORE_SHA256: &str = "f1988453610ce1ee6bb074310cce1f87953a2cacbfd80da02b99bbec1b66a97c";

const WORKS_AT_PERSON: [u16; 600] = [
    0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16, 17, 18, 19, 20, 21, 22, 23, 24, 25,
    26, 27, 28, 29, 30, 31, 397, 40, 38, 119, 236, 216, 156, 538, 217, 55, 116, 167, 592, 365, 233,
    44, 320, 228, 387, 468, 323, 107, 210, 239, 281, 334, 398, 133, 185, 279, 451, 393, 431, 306,
    341, 106, 371, 466, 390, 456, 477, 416, 356, 441, 227, 593, 70, 181, 211, 261, 440, 103, 374,
    574, 598, 280, 562, 326, 134, 547, 266, 369, 370, 127, 244, 508, 475, 559, 174, 198, 122, 335,
    85, 442, 349, 339, 348, 443, 310, 124, 164, 237, 343, 512, 589, 225, 437, 221, 42, 402, 515,
    332, 141, 422, 494, 517, 215, 154, 434, 560, 482, 427, 533, 465, 191, 293, 506, 168, 108, 316,
    495, 577, 161, 157, 567, 527, 346, 189, 464, 146, 385, 473, 367, 412, 338, 329, 121, 303, 307,
    565, 429, 448, 169, 396, 73, 411, 511, 518, 314, 291, 536, 187, 84, 170, 530, 218, 205, 219,
    426, 498, 136, 248, 155, 249, 48, 250, 41, 63, 117, 39, 474, 587, 389, 179, 358, 366, 138, 446,
    490, 36, 32, 470, 564, 80, 231, 403, 461, 540, 509, 519, 282, 392, 520, 188, 459, 270, 305,
    558, 407, 130, 481, 226, 537, 413, 430, 93, 147, 480, 400, 308, 264, 471, 183, 351, 222, 94,
    180, 388, 203, 299, 368, 51, 590, 50, 497, 295, 591, 467, 209, 83, 105, 143, 91, 153, 79, 251,
    586, 182, 460, 56, 478, 543, 76, 87, 554, 267, 190, 572, 526, 92, 585, 436, 525, 59, 409, 112,
    212, 258, 159, 378, 292, 487, 62, 286, 229, 240, 68, 376, 246, 158, 289, 433, 35, 501, 582,
    491, 283, 90, 287, 260, 317, 173, 561, 101, 328, 207, 524, 200, 69, 321, 78, 296, 394, 404,
    230, 395, 142, 113, 43, 463, 340, 336, 151, 438, 363, 566, 333, 256, 81, 372, 486, 556, 545,
    405, 269, 595, 220, 444, 500, 75, 163, 325, 449, 120, 126, 324, 148, 132, 109, 175, 254, 401,
    423, 304, 353, 575, 184, 507, 408, 424, 425, 445, 241, 257, 171, 362, 34, 354, 232, 177, 206,
    65, 60, 224, 421, 447, 178, 123, 259, 521, 268, 417, 114, 579, 584, 288, 86, 357, 379, 252,
    493, 71, 245, 49, 532, 380, 484, 47, 319, 581, 386, 489, 415, 594, 563, 580, 510, 111, 529,
    194, 33, 97, 583, 359, 300, 263, 214, 74, 238, 322, 469, 503, 360, 452, 57, 330, 352, 514, 531,
    457, 550, 104, 110, 557, 549, 544, 311, 479, 100, 315, 384, 52, 596, 453, 488, 275, 162, 202,
    115, 337, 573, 197, 327, 96, 223, 82, 505, 418, 391, 555, 149, 568, 253, 128, 344, 152, 476,
    145, 420, 88, 534, 597, 99, 383, 309, 553, 472, 375, 131, 139, 458, 523, 160, 77, 72, 499, 571,
    89, 165, 599, 539, 301, 64, 125, 522, 243, 454, 410, 516, 242, 193, 318, 297, 382, 290, 255,
    235, 265, 406, 435, 150, 504, 262, 278, 37, 208, 570, 528, 273, 176, 483, 373, 45, 272, 199,
    551, 298, 428, 118, 204, 455, 284, 345, 364, 313, 172, 46, 502, 95, 552, 347, 135, 548, 492,
    462, 277, 274, 432, 541, 513, 578, 419, 399, 377, 66, 61, 144, 67, 350, 213, 53, 285, 355, 542,
    129, 247, 102, 569, 140, 276, 496, 186, 137, 331, 201, 166, 546, 54, 196, 302, 271, 414, 485,
    342, 192, 361, 588, 576, 450, 195, 58, 312, 98, 439, 234, 294, 381, 535,
];

const PARTNER_OF_COMPANY: [u16; 400] = [
    121, 194, 62, 285, 263, 153, 326, 335, 111, 17, 396, 235, 245, 185, 307, 358, 184, 217, 228,
    278, 390, 369, 320, 98, 126, 352, 391, 240, 66, 183, 279, 149, 345, 339, 39, 327, 179, 67, 156,
    198, 226, 176, 323, 144, 40, 95, 120, 1, 177, 86, 44, 336, 46, 368, 397, 344, 178, 106, 27,
    312, 304, 389, 116, 252, 292, 11, 35, 101, 196, 298, 48, 223, 316, 163, 7, 206, 301, 306, 117,
    186, 249, 357, 399, 41, 303, 305, 250, 12, 296, 82, 26, 142, 221, 132, 180, 384, 232, 165, 141,
    209, 15, 218, 242, 340, 143, 33, 333, 237, 282, 318, 328, 288, 205, 189, 55, 241, 297, 220,
    248, 343, 346, 254, 337, 21, 214, 286, 219, 315, 243, 395, 362, 375, 3, 28, 96, 376, 290, 387,
    360, 75, 236, 59, 114, 212, 261, 231, 342, 94, 385, 393, 107, 262, 102, 216, 148, 329, 164,
    108, 88, 239, 255, 73, 367, 347, 136, 103, 129, 78, 287, 70, 89, 69, 251, 371, 234, 24, 224,
    259, 351, 25, 332, 77, 65, 330, 317, 269, 348, 127, 112, 363, 324, 85, 109, 334, 256, 187, 364,
    146, 272, 377, 63, 80, 81, 374, 159, 31, 283, 284, 171, 260, 310, 60, 366, 9, 90, 291, 128,
    373, 215, 57, 20, 200, 233, 379, 34, 271, 167, 394, 155, 8, 16, 139, 386, 23, 140, 13, 0, 253,
    274, 71, 138, 147, 380, 133, 145, 201, 359, 125, 10, 264, 341, 382, 204, 160, 36, 207, 157, 64,
    105, 38, 338, 72, 51, 295, 119, 227, 383, 388, 289, 378, 230, 361, 321, 238, 175, 273, 154, 52,
    203, 314, 211, 398, 229, 135, 191, 190, 61, 18, 45, 56, 100, 93, 110, 174, 267, 137, 277, 43,
    83, 192, 118, 29, 115, 313, 195, 161, 181, 68, 392, 76, 275, 381, 276, 309, 91, 302, 199, 32,
    79, 42, 210, 152, 53, 37, 349, 172, 130, 268, 322, 169, 354, 54, 2, 270, 266, 113, 372, 308,
    365, 49, 19, 92, 97, 182, 225, 166, 170, 246, 4, 134, 244, 151, 257, 280, 370, 355, 173, 104,
    84, 99, 6, 281, 14, 300, 22, 294, 350, 258, 202, 150, 265, 30, 311, 50, 131, 168, 299, 208,
    222, 247, 197, 123, 356, 293, 158, 193, 47, 325, 353, 124, 188, 58, 5, 213, 87, 122, 331, 162,
    319, 74,
];

fn datetime_utc(date: NaiveDate) -> Value {
    Value::DateTime(ZonedDateTime {
        local: date.and_time(NaiveTime::MIN),
        offset: 0,
        zone: None,
    })
}

fn p(k: &str, v: Value) -> (String, Value) {
    (k.to_owned(), v)
}

/// The recorded test graph (`with_ref_bytes`: plus the `:RefBytes` node of the dump).
pub fn graph(with_ref_bytes: bool) -> Graph {
    let mut g = Graph::new();
    // Token order of the recorded store.
    for l in [
        "Person",
        "Company",
        "RolledBack",
        "RefBytes",
        "RefA",
        "RefB",
        "RefTemp",
        "RollbackProbe",
        "RefUnique",
        "RefTmpIdx",
        "RefTrunc",
        "RefTx",
        "RefValues",
        "RefBad",
        "Batch",
    ] {
        g.labels.push(l.into());
    }
    for t in ["WORKS_AT", "KNOWS", "PARTNER_OF", "REF_REL"] {
        g.rel_types.push(t.into());
    }
    for k in [
        "pid",
        "cid",
        "score",
        "joined",
        "name",
        "age",
        "tags",
        "revenue",
        "founded",
        "active",
        "role",
        "since",
        "note",
        "weight",
        "level",
        "x",
        "key",
        "data",
        "empty",
        "n",
        "w",
        "k",
        "dur",
        "negZero",
        "lt",
        "minLong",
        "big53",
        "pw2",
        "maxLong",
        "pw3",
        "points",
        "bools",
        "emptyList",
        "strs",
        "ints",
        "nan",
        "pc2",
        "inf",
        "pc3",
        "b",
        "floats",
        "d",
        "f",
        "dtOffset",
        "emptyS",
        "i",
        "dates",
        "dtZone",
        "longS",
        "s",
        "t",
        "ldt",
        "m",
        "l",
    ] {
        g.prop_keys.push(k.into());
    }
    let day0 = NaiveDate::from_ymd_opt(2020, 1, 1).unwrap();
    for i in 0..600u64 {
        g.insert_node(
            i,
            vec!["Person".into()],
            vec![
                p("score", Value::Float(i as f64 / 7.0)),
                p(
                    "joined",
                    Value::Date(day0 + chrono::Duration::days(i as i64)),
                ),
                p("name", Value::str(format!("person-{i}"))),
                p("pid", Value::Int(i as i64)),
                p("age", Value::Int(20 + (i % 50) as i64)),
                p(
                    "tags",
                    Value::List(vec![Value::str(format!("t{}", i % 7)), Value::str("x")]),
                ),
            ],
        );
    }
    let founded0 = NaiveDate::from_ymd_opt(2000, 1, 1).unwrap();
    for c in 0..400u64 {
        g.insert_node(
            600 + c,
            vec!["Company".into()],
            vec![
                p("revenue", Value::Float(c as f64 * 1000.5)),
                p(
                    "founded",
                    datetime_utc(founded0 + chrono::Duration::days(3 * c as i64)),
                ),
                p("name", Value::str(format!("company-{c}"))),
                p("active", Value::Bool(c % 2 == 0)),
                p("cid", Value::Int(c as i64)),
            ],
        );
    }
    if with_ref_bytes {
        g.insert_node(
            1000,
            vec!["RefBytes".into()],
            vec![
                p("data", Value::Bytes(vec![0, 1, 2, 127, -128, -1])),
                p("key", Value::str("bytes")),
                p("empty", Value::Bytes(vec![])),
            ],
        );
    }
    for (i, &person) in WORKS_AT_PERSON.iter().enumerate() {
        let person = person as u64;
        g.insert_rel(
            i as u64,
            "WORKS_AT",
            person,
            600 + person % 400,
            vec![
                p("role", Value::str(format!("r{}", person % 5))),
                p("since", Value::Int(2000 + (person % 20) as i64)),
            ],
        );
    }
    for person in 0..500u64 {
        for k in 0..2u64 {
            g.insert_rel(
                600 + 2 * person + k,
                "KNOWS",
                person,
                (person + 7 * (k + 1)) % 600,
                vec![
                    p("note", Value::str(format!("k{}", k + 1))),
                    p("weight", Value::Float((k + 1) as f64 / 3.0)),
                ],
            );
        }
    }
    let since = datetime_utc(NaiveDate::from_ymd_opt(2021, 1, 1).unwrap());
    for (j, &c) in PARTNER_OF_COMPANY.iter().enumerate() {
        let c = c as u64;
        g.insert_rel(
            1600 + j as u64,
            "PARTNER_OF",
            600 + c,
            600 + (c + 1) % 400,
            vec![
                p("since", since.clone()),
                p("level", Value::Int((c % 3) as i64)),
            ],
        );
    }
    // Schema rule ids of the recording: lookups 1 and 2, person_pid's index 3, company_cid
    // 4, the constraint 5.
    let index = g.schema_ids.take();
    assert_eq!(index, 3);
    let cid = g.schema_ids.take();
    g.indexes.push(super::graph::IndexRule {
        id: index,
        name: "person_pid".into(),
        kind: "RANGE".into(),
        entity: super::graph::EntityType::Node,
        labels_or_types: Some(vec!["Person".into()]),
        properties: Some(vec!["pid".into()]),
        provider: "range-1.0".into(),
        owning_constraint: Some("person_pid".into()),
    });
    g.indexes.push(super::graph::IndexRule {
        id: cid,
        name: "company_cid".into(),
        kind: "RANGE".into(),
        entity: super::graph::EntityType::Node,
        labels_or_types: Some(vec!["Company".into()]),
        properties: Some(vec!["cid".into()]),
        provider: "range-1.0".into(),
        owning_constraint: None,
    });
    let constraint = g.schema_ids.take();
    g.constraints.push(super::graph::ConstraintRule {
        id: constraint,
        name: "person_pid".into(),
        label: "Person".into(),
        properties: vec!["pid".into()],
        owned_index: "person_pid".into(),
        owned_index_id: index,
    });
    g
}

/// The recorded `neo4j` database (its element-id uuid, `db.info()` id, creation date and
/// last transaction id), holding [`graph`].
pub fn database(with_ref_bytes: bool) -> Database {
    Database {
        info: DbInfo {
            name: "neo4j".into(),
            uuid: "1947d1db-1aea-4cae-a591-de3bf414c250".into(),
            id: "29A3923D651247A401B098E5AA931C8ECC229C82A62820374848857CC92C8C9D".into(),
            creation_date: "2026-11-26T09:52:12.956Z".into(),
        },
        graph: graph(with_ref_bytes),
        last_tx_id: 96,
        checkpoint_tx_id: 96,
        available: true,
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn the_fixture_graph_has_the_recorded_counts() {
        let c = super::graph(true).counts();
        assert_eq!((c.nodes, c.relationships), (1001, 2000));
        assert_eq!(c.labels["Person"], 600);
        assert_eq!(c.labels["Company"], 400);
        assert_eq!(c.types["KNOWS"], 1000);
        assert_eq!(c.types["WORKS_AT"], 600);
        assert_eq!(c.types["PARTNER_OF"], 400);
    }
}
