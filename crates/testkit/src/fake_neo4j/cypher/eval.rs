//! Expression evaluation and the function library.
//!
//! Functions: `id`, `elementId`, `labels`, `type`, `keys`, `properties`, `startNode`,
//! `endNode`, `nodes`, `relationships`, `length`, `size`, `head`, `last`, `tail`,
//! `reverse`, `range`, `coalesce`, `isEmpty`, `toString`, `toInteger`, `toFloat`,
//! `toBoolean`, `abs`, `ceil`, `floor`, `round`, `sqrt`, `sign`, `exp`, `log`, `log10`,
//! `substring`, `left`, `right`, `toUpper`, `toLower`, `trim`, `ltrim`, `rtrim`,
//! `replace`, `split`, `timestamp`, `date`, `localtime`, `time`, `localdatetime`,
//! `datetime`, `duration`, `duration.between`, `point`, and the aggregates `count`,
//! `collect`, `sum`, `avg`, `min`, `max`.

use chrono::{Datelike, NaiveDate, NaiveTime, Timelike};

use super::super::temporal::{self, Crs, Duration, ZonedDateTime};
use super::super::value::{compare, cypher_eq, Point, Value};
use super::ast::{BinOp, Expr, Quant};
use super::exec::{Exec, Row};
use super::{codes, CypherError};

/// The functions the fake knows (lower-cased).
pub const FUNCTIONS: &[&str] = &[
    "id",
    "elementid",
    "labels",
    "type",
    "keys",
    "properties",
    "startnode",
    "endnode",
    "nodes",
    "relationships",
    "length",
    "size",
    "head",
    "last",
    "tail",
    "reverse",
    "range",
    "coalesce",
    "isempty",
    "tostring",
    "tointeger",
    "tofloat",
    "toboolean",
    "tostringornull",
    "tointegerornull",
    "tofloatornull",
    "abs",
    "ceil",
    "floor",
    "round",
    "sqrt",
    "sign",
    "exp",
    "log",
    "log10",
    "substring",
    "left",
    "right",
    "toupper",
    "tolower",
    "trim",
    "ltrim",
    "rtrim",
    "replace",
    "split",
    "timestamp",
    "date",
    "localtime",
    "time",
    "localdatetime",
    "datetime",
    "duration",
    "duration.between",
    "point",
    "count",
    "collect",
    "sum",
    "avg",
    "min",
    "max",
];

/// Whether a function name is an aggregate.
pub fn is_aggregate(name: &str) -> bool {
    matches!(name, "count" | "collect" | "sum" | "avg" | "min" | "max")
}

fn type_error(msg: impl Into<String>) -> CypherError {
    CypherError::runtime(codes::TYPE, msg)
}

fn arg_error(msg: impl Into<String>) -> CypherError {
    CypherError::runtime(codes::ARGUMENT, msg)
}

fn overflow(a: i64, op: &str, b: i64) -> CypherError {
    CypherError::runtime(
        codes::ARITHMETIC,
        format!("result of {a} {op} {b} cannot be represented as an integer"),
    )
}

/// `a op b` for numbers, strings, lists.
pub fn arithmetic(op: BinOp, a: &Value, b: &Value) -> Result<Value, CypherError> {
    use Value::*;
    if a.is_null() || b.is_null() {
        return Ok(Null);
    }
    let sym = match op {
        BinOp::Add => "+",
        BinOp::Sub => "-",
        BinOp::Mul => "*",
        BinOp::Div => "/",
        BinOp::Mod => "%",
        _ => "^",
    };
    match (op, a, b) {
        (BinOp::Add, Str(x), Str(y)) => return Ok(Str(format!("{x}{y}"))),
        (BinOp::Add, Str(x), Int(_) | Float(_) | Bool(_)) => {
            return Ok(Str(format!("{x}{}", to_string(b).unwrap_or_default())))
        }
        (BinOp::Add, Int(_) | Float(_) | Bool(_), Str(y)) => {
            return Ok(Str(format!("{}{y}", to_string(a).unwrap_or_default())))
        }
        (BinOp::Add, List(x), List(y)) => {
            let mut l = x.clone();
            l.extend(y.iter().cloned());
            return Ok(List(l));
        }
        (BinOp::Add, List(x), y) => {
            let mut l = x.clone();
            l.push(y.clone());
            return Ok(List(l));
        }
        (BinOp::Add, x, List(y)) => {
            let mut l = vec![x.clone()];
            l.extend(y.iter().cloned());
            return Ok(List(l));
        }
        _ => {}
    }
    match (a, b) {
        (Int(x), Int(y)) => {
            let (x, y) = (*x, *y);
            let r = match op {
                BinOp::Add => x.checked_add(y),
                BinOp::Sub => x.checked_sub(y),
                BinOp::Mul => x.checked_mul(y),
                BinOp::Div => {
                    if y == 0 {
                        return Err(CypherError::runtime(codes::ARITHMETIC, "/ by zero"));
                    }
                    x.checked_div(y)
                }
                BinOp::Mod => {
                    if y == 0 {
                        return Err(CypherError::runtime(codes::ARITHMETIC, "/ by zero"));
                    }
                    x.checked_rem(y)
                }
                _ => return Ok(Float((x as f64).powf(y as f64))),
            };
            r.map(Int).ok_or_else(|| overflow(x, sym, y))
        }
        (Int(_) | Float(_), Int(_) | Float(_)) => {
            let (x, y) = (a.as_f64().unwrap(), b.as_f64().unwrap());
            Ok(Float(match op {
                BinOp::Add => x + y,
                BinOp::Sub => x - y,
                BinOp::Mul => x * y,
                BinOp::Div => x / y,
                BinOp::Mod => x % y,
                _ => x.powf(y),
            }))
        }
        (Duration(x), Duration(y)) if matches!(op, BinOp::Add | BinOp::Sub) => {
            let s = if op == BinOp::Add { 1 } else { -1 };
            Ok(Duration(temporal::Duration::new(
                x.months + s * y.months,
                x.days + s * y.days,
                x.seconds + s * y.seconds,
                x.nanos as i64 + s * y.nanos as i64,
            )))
        }
        _ => Err(type_error(format!(
            "Cannot {} `{}` {} `{}`",
            match op {
                BinOp::Add => "add",
                BinOp::Sub => "subtract",
                BinOp::Mul => "multiply",
                BinOp::Div => "divide",
                BinOp::Mod => "modulo",
                _ => "raise",
            },
            a.type_name(),
            if op == BinOp::Add { "and" } else { "by" },
            b.type_name()
        ))),
    }
}

/// `toString(v)`.
pub fn to_string(v: &Value) -> Option<String> {
    Some(match v {
        Value::Str(s) => s.clone(),
        Value::Int(i) => i.to_string(),
        Value::Float(f) => super::super::value::java_double(*f),
        Value::Bool(b) => b.to_string(),
        Value::Point(p) => point_string(p),
        other => other.temporal_string()?,
    })
}

/// `point({x: 1.5, y: -2.0, crs: 'cartesian'})` as `toString` prints it.
pub fn point_string(p: &Point) -> String {
    let names: &[&str] = if p.crs.geographic {
        &["longitude", "latitude", "height"]
    } else {
        &["x", "y", "z"]
    };
    let parts: Vec<String> = p
        .coords
        .iter()
        .zip(names)
        .map(|(c, n)| format!("{n}: {}", super::super::value::java_double(*c)))
        .collect();
    format!("point({{{}, crs: '{}'}})", parts.join(", "), p.crs.name)
}

fn as_int(v: &Value, what: &str) -> Result<i64, CypherError> {
    match v {
        Value::Int(i) => Ok(*i),
        Value::Float(f) => Ok(*f as i64),
        other => Err(type_error(format!(
            "Expected {what} to be an Integer but it was a {}",
            other.type_name()
        ))),
    }
}

fn as_str<'v>(v: &'v Value, func: &str) -> Result<&'v str, CypherError> {
    match v {
        Value::Str(s) => Ok(s),
        other => Err(type_error(format!(
            "Invalid input for function '{func}()': Expected a String, got: {}",
            other.type_name()
        ))),
    }
}

fn temporal_err(e: temporal::TemporalError) -> CypherError {
    // Neo4j reports unparsable temporal strings under SyntaxError, at run time.
    CypherError::runtime(codes::SYNTAX, e.0)
}

fn map_int(m: &Value, key: &str) -> Option<i64> {
    match m.get(key) {
        Some(Value::Int(i)) => Some(*i),
        Some(Value::Float(f)) => Some(*f as i64),
        _ => None,
    }
}

fn map_f64(m: &Value, key: &str) -> Option<f64> {
    m.get(key).and_then(Value::as_f64)
}

fn time_from_map(m: &Value) -> Result<NaiveTime, CypherError> {
    let h = map_int(m, "hour").unwrap_or(0) as u32;
    let mi = map_int(m, "minute").unwrap_or(0) as u32;
    let s = map_int(m, "second").unwrap_or(0) as u32;
    let nanos = map_int(m, "nanosecond").unwrap_or(0)
        + map_int(m, "microsecond").unwrap_or(0) * 1000
        + map_int(m, "millisecond").unwrap_or(0) * 1_000_000;
    NaiveTime::from_hms_nano_opt(h, mi, s, nanos as u32)
        .ok_or_else(|| arg_error("Invalid value for time components"))
}

fn date_from_map(m: &Value) -> Result<NaiveDate, CypherError> {
    let y = map_int(m, "year").ok_or_else(|| arg_error("year must be specified"))? as i32;
    temporal::make_date(
        y,
        map_int(m, "month").unwrap_or(1) as u32,
        map_int(m, "day").unwrap_or(1) as u32,
    )
    .map_err(temporal_err)
}

fn zone_of(m: &Value) -> Result<Option<chrono_tz::Tz>, CypherError> {
    match m.get("timezone") {
        Some(Value::Str(z)) => {
            if let Some(o) = temporal::parse_offset(z) {
                let _ = o;
                return Ok(None);
            }
            temporal::parse_zone(z).map(Some).map_err(temporal_err)
        }
        _ => Ok(None),
    }
}

fn offset_of(m: &Value) -> Option<i32> {
    match m.get("timezone") {
        Some(Value::Str(z)) => temporal::parse_offset(z),
        _ => None,
    }
}

/// `point(map)`.
pub fn make_point(m: &Value) -> Result<Value, CypherError> {
    if m.is_null() {
        return Ok(Value::Null);
    }
    if !matches!(m, Value::Map(_)) {
        return Err(type_error(format!(
            "Type mismatch: expected Map but was {}",
            m.type_name()
        )));
    }
    let geographic_keys = m.get("longitude").is_some() || m.get("latitude").is_some();
    let (x, y, z) = if geographic_keys {
        (
            map_f64(m, "longitude"),
            map_f64(m, "latitude"),
            map_f64(m, "height"),
        )
    } else {
        (map_f64(m, "x"), map_f64(m, "y"), map_f64(m, "z"))
    };
    let (Some(x), Some(y)) = (x, y) else {
        return Err(arg_error(
            "A point must contain either 'x' and 'y', or 'longitude' and 'latitude'",
        ));
    };
    let dims = if z.is_some() { 3 } else { 2 };
    let crs = if let Some(srid) = map_int(m, "srid") {
        Crs::by_srid(srid)
            .ok_or_else(|| arg_error(format!("Unknown coordinate reference system code: {srid}")))?
    } else if let Some(Value::Str(name)) = m.get("crs") {
        Crs::by_name(name)
            .ok_or_else(|| arg_error(format!("Unknown coordinate reference system: {name}")))?
    } else {
        *temporal::CRSS
            .iter()
            .find(|c| c.geographic == geographic_keys && c.dims == dims)
            .unwrap()
    };
    if crs.dims != dims {
        return Err(arg_error(format!(
            "Cannot create point with {}D coordinate reference system and {dims} coordinates. Please consider using equivalent {dims}D coordinate reference system",
            crs.dims
        )));
    }
    if crs.geographic && !(-90.0..=90.0).contains(&y) {
        return Err(arg_error(
            "Cannot create WGS84 point with invalid coordinate: [latitude out of range]",
        ));
    }
    let mut coords = vec![x, y];
    if let Some(z) = z {
        coords.push(z);
    }
    Ok(Value::Point(Point { crs, coords }))
}

fn temporal_fn(
    name: &str,
    args: &[Value],
    now: chrono::DateTime<chrono::Utc>,
) -> Result<Value, CypherError> {
    let arg = args.first();
    if matches!(arg, Some(Value::Null)) {
        return Ok(Value::Null);
    }
    let now_local = now.naive_utc();
    Ok(match (name, arg) {
        ("date", None) => Value::Date(now_local.date()),
        ("date", Some(Value::Str(s))) => {
            Value::Date(temporal::parse_date(s).map_err(temporal_err)?)
        }
        ("date", Some(m @ Value::Map(_))) => Value::Date(date_from_map(m)?),
        ("date", Some(Value::Date(d))) => Value::Date(*d),
        ("date", Some(Value::LocalDateTime(dt))) => Value::Date(dt.date()),
        ("date", Some(Value::DateTime(z))) => Value::Date(z.local.date()),
        ("localtime", None) => Value::LocalTime(now_local.time()),
        ("localtime", Some(Value::Str(s))) => {
            Value::LocalTime(temporal::parse_local_time(s).map_err(temporal_err)?)
        }
        ("localtime", Some(m @ Value::Map(_))) => Value::LocalTime(time_from_map(m)?),
        ("localtime", Some(Value::LocalTime(t))) => Value::LocalTime(*t),
        ("time", None) => Value::Time(now_local.time(), 0),
        ("time", Some(Value::Str(s))) => {
            let (t, o) = temporal::parse_time(s).map_err(temporal_err)?;
            Value::Time(t, o)
        }
        ("time", Some(m @ Value::Map(_))) => {
            Value::Time(time_from_map(m)?, offset_of(m).unwrap_or(0))
        }
        ("time", Some(Value::Time(t, o))) => Value::Time(*t, *o),
        ("localdatetime", None) => Value::LocalDateTime(now_local),
        ("localdatetime", Some(Value::Str(s))) => {
            Value::LocalDateTime(temporal::parse_local_datetime(s).map_err(temporal_err)?)
        }
        ("localdatetime", Some(m @ Value::Map(_))) => {
            Value::LocalDateTime(date_from_map(m)?.and_time(time_from_map(m)?))
        }
        ("localdatetime", Some(Value::LocalDateTime(dt))) => Value::LocalDateTime(*dt),
        ("datetime", None) => Value::DateTime(ZonedDateTime {
            local: now_local,
            offset: 0,
            zone: None,
        }),
        ("datetime", Some(Value::Str(s))) => {
            Value::DateTime(temporal::parse_datetime(s).map_err(temporal_err)?)
        }
        ("datetime", Some(m @ Value::Map(_))) => {
            if let Some(ms) = map_int(m, "epochMillis") {
                let z = ZonedDateTime::utc(
                    ms.div_euclid(1000),
                    (ms.rem_euclid(1000) * 1_000_000) as u32,
                )
                .ok_or_else(|| arg_error("epochMillis out of range"))?;
                Value::DateTime(z)
            } else if let Some(s) = map_int(m, "epochSeconds") {
                let n = map_int(m, "nanosecond").unwrap_or(0);
                Value::DateTime(
                    ZonedDateTime::utc(s, n as u32)
                        .ok_or_else(|| arg_error("epochSeconds out of range"))?,
                )
            } else {
                let local = date_from_map(m)?.and_time(time_from_map(m)?);
                match (offset_of(m), zone_of(m)?) {
                    (_, Some(z)) => Value::DateTime(temporal::in_zone(local, z)),
                    (Some(o), None) => Value::DateTime(ZonedDateTime {
                        local,
                        offset: o,
                        zone: None,
                    }),
                    (None, None) => Value::DateTime(ZonedDateTime {
                        local,
                        offset: 0,
                        zone: None,
                    }),
                }
            }
        }
        ("datetime", Some(Value::DateTime(z))) => Value::DateTime(z.clone()),
        (_, Some(other)) => {
            return Err(type_error(format!(
                "Invalid input for function '{name}()': Expected a String or Map, got: {}",
                other.type_name()
            )))
        }
        _ => return Err(arg_error(format!("Unsupported call of {name}()"))),
    })
}

fn duration_fn(arg: &Value) -> Result<Value, CypherError> {
    match arg {
        Value::Null => Ok(Value::Null),
        Value::Str(s) => Duration::parse(s).map(Value::Duration).ok_or_else(|| {
            CypherError::runtime(codes::SYNTAX, "Text cannot be parsed to a Duration")
        }),
        m @ Value::Map(_) => {
            let f = |k: &str| map_f64(m, k).unwrap_or(0.0);
            let months = f("years") * 12.0 + f("quarters") * 3.0 + f("months");
            let days = f("weeks") * 7.0 + f("days");
            let seconds = f("hours") * 3600.0 + f("minutes") * 60.0 + f("seconds");
            let nanos = (f("milliseconds") * 1e6 + f("microseconds") * 1e3 + f("nanoseconds"))
                .round() as i64;
            Ok(Value::Duration(temporal::from_fractional(
                months, days, seconds, nanos,
            )))
        }
        Value::Duration(d) => Ok(Value::Duration(*d)),
        other => Err(type_error(format!(
            "Invalid input for function 'duration()': Expected a String or Map, got: {}",
            other.type_name()
        ))),
    }
}

fn between(a: &Value, b: &Value) -> Result<Value, CypherError> {
    let local = |v: &Value| -> Option<(chrono::NaiveDateTime, bool)> {
        Some(match v {
            Value::Date(d) => (d.and_time(NaiveTime::MIN), false),
            Value::LocalDateTime(dt) => (*dt, true),
            Value::DateTime(z) => (z.local - chrono::Duration::seconds(z.offset as i64), true),
            Value::LocalTime(t) => (NaiveDate::from_ymd_opt(1970, 1, 1)?.and_time(*t), true),
            _ => return None,
        })
    };
    if a.is_null() || b.is_null() {
        return Ok(Value::Null);
    }
    match (local(a), local(b)) {
        (Some((x, tx)), Some((y, ty))) => Ok(Value::Duration(temporal::between(x, y, tx || ty))),
        _ => Err(type_error("Expected temporal values for duration.between")),
    }
}

impl Exec<'_> {
    /// Evaluates `e` in `row`.
    pub fn eval(&mut self, e: &Expr, row: &Row) -> Result<Value, CypherError> {
        Ok(match e {
            Expr::Lit(v) => v.clone(),
            Expr::Param(name, _) => self.params.get(name).cloned().unwrap_or(Value::Null),
            Expr::Var(name, pos) => match row.iter().rev().find(|(k, _)| k == name) {
                Some((_, v)) => v.clone(),
                None => {
                    return Err(CypherError::compile(
                        codes::SYNTAX,
                        super::positioned(
                            self.text,
                            *pos,
                            &format!("Variable `{name}` not defined"),
                        ),
                    ))
                }
            },
            Expr::Prop(base, key) => {
                let b = self.eval(base, row)?;
                self.property(&b, key)?
            }
            Expr::Index(base, idx) => {
                let b = self.eval(base, row)?.unarray();
                let i = self.eval(idx, row)?;
                match (&b, &i) {
                    (Value::Null, _) | (_, Value::Null) => Value::Null,
                    (Value::List(l), Value::Int(i)) => {
                        let n = l.len() as i64;
                        let k = if *i < 0 { n + i } else { *i };
                        if k < 0 || k >= n {
                            Value::Null
                        } else {
                            l[k as usize].clone()
                        }
                    }
                    (Value::Bytes(l), Value::Int(i)) => {
                        let n = l.len() as i64;
                        let k = if *i < 0 { n + i } else { *i };
                        if k < 0 || k >= n {
                            Value::Null
                        } else {
                            Value::Int(l[k as usize] as i64)
                        }
                    }
                    (_, Value::Str(k)) => self.property(&b, k)?,
                    _ => {
                        return Err(type_error(format!(
                            "`{}` is not a collection or a map. Element access is only possible by performing a collection lookup using an integer index, or by performing a map lookup using a string key (found: {}[{}])",
                            b.type_name(), b.type_name(), i.type_name()
                        )))
                    }
                }
            }
            Expr::Slice(base, from, to) => {
                let b = self.eval(base, row)?.unarray();
                let l = match b {
                    Value::Null => return Ok(Value::Null),
                    Value::List(l) => l,
                    other => {
                        return Err(type_error(format!(
                            "Expected a list, got {}",
                            other.type_name()
                        )))
                    }
                };
                let n = l.len() as i64;
                let norm = |v: i64| if v < 0 { (n + v).max(0) } else { v.min(n) };
                let a = match from {
                    Some(f) => match self.eval(f, row)? {
                        Value::Null => return Ok(Value::Null),
                        v => norm(as_int(&v, "from")?),
                    },
                    None => 0,
                };
                let z = match to {
                    Some(t) => match self.eval(t, row)? {
                        Value::Null => return Ok(Value::Null),
                        v => norm(as_int(&v, "to")?),
                    },
                    None => n,
                };
                if a >= z {
                    Value::List(vec![])
                } else {
                    Value::List(l[a as usize..z as usize].to_vec())
                }
            }
            Expr::List(items) => {
                let mut out = Vec::with_capacity(items.len());
                for i in items {
                    out.push(self.eval(i, row)?);
                }
                Value::List(out)
            }
            Expr::Map(pairs) => {
                let mut out = Vec::with_capacity(pairs.len());
                for (k, v) in pairs {
                    let v = self.eval(v, row)?;
                    out.retain(|(k2, _): &(String, Value)| k2 != k);
                    out.push((k.clone(), v));
                }
                Value::Map(out)
            }
            Expr::Not(x) => match self.eval(x, row)? {
                Value::Bool(b) => Value::Bool(!b),
                Value::Null => Value::Null,
                other => {
                    return Err(type_error(format!(
                        "Expected Boolean but was {}",
                        other.type_name()
                    )))
                }
            },
            Expr::Neg(x) => match self.eval(x, row)? {
                Value::Int(i) => Value::Int(i.checked_neg().ok_or_else(|| overflow(0, "-", i))?),
                Value::Float(f) => Value::Float(-f),
                Value::Null => Value::Null,
                Value::Duration(d) => Value::Duration(d.negate()),
                other => return Err(type_error(format!("Cannot negate `{}`", other.type_name()))),
            },
            Expr::Bin(op, a, b, _) => return self.binary(*op, a, b, row),
            Expr::IsNull(x, negated) => {
                let v = self.eval(x, row)?;
                Value::Bool(v.is_null() != *negated)
            }
            Expr::HasLabels(x, labels) => match self.eval(x, row)? {
                Value::Node(id) => match self.tx.graph.nodes.get(&id) {
                    Some(n) => Value::Bool(labels.iter().all(|l| n.labels.contains(l))),
                    None => Value::Bool(false),
                },
                Value::Null => Value::Null,
                other => {
                    return Err(type_error(format!(
                        "Expected Node but was {}",
                        other.type_name()
                    )))
                }
            },
            Expr::CountStar => self
                .agg
                .get(&(e as *const Expr as usize))
                .cloned()
                .ok_or_else(|| {
                    CypherError::compile(
                        codes::SYNTAX,
                        "Invalid use of aggregating function count(*) in this context",
                    )
                })?,
            Expr::Func {
                name,
                args,
                pos,
                written,
                ..
            } => {
                if is_aggregate(name) {
                    return self.agg.get(&(e as *const Expr as usize)).cloned().ok_or_else(|| {
                        CypherError::compile(
                            codes::SYNTAX,
                            super::positioned(self.text, *pos, &format!("Invalid use of aggregating function {written}(...) in this context")),
                        )
                    });
                }
                let mut vals = Vec::with_capacity(args.len());
                for a in args {
                    vals.push(self.eval(a, row)?);
                }
                self.call_function(name, &vals)?
            }
            Expr::ListComp {
                var,
                list,
                pred,
                map,
            } => {
                let l = match self.eval(list, row)?.unarray() {
                    Value::Null => return Ok(Value::Null),
                    Value::List(l) => l,
                    Value::Bytes(b) => b.iter().map(|x| Value::Int(*x as i64)).collect(),
                    other => vec![other],
                };
                let mut out = Vec::new();
                let mut inner = row.clone();
                inner.push((var.clone(), Value::Null));
                for item in l {
                    inner.last_mut().unwrap().1 = item.clone();
                    if let Some(p) = pred {
                        if self.eval(p, &inner)? != Value::Bool(true) {
                            continue;
                        }
                    }
                    out.push(match map {
                        Some(m) => self.eval(m, &inner)?,
                        None => item,
                    });
                }
                Value::List(out)
            }
            Expr::Quantified {
                kind,
                var,
                list,
                pred,
            } => {
                let l = match self.eval(list, row)?.unarray() {
                    Value::Null => return Ok(Value::Null),
                    Value::List(l) => l,
                    other => vec![other],
                };
                let mut inner = row.clone();
                inner.push((var.clone(), Value::Null));
                let (mut yes, mut no, mut unknown) = (0usize, 0usize, false);
                for item in &l {
                    inner.last_mut().unwrap().1 = item.clone();
                    match self.eval(pred, &inner)? {
                        Value::Bool(true) => yes += 1,
                        Value::Bool(false) => no += 1,
                        _ => unknown = true,
                    }
                }
                match kind {
                    Quant::All if no > 0 => Value::Bool(false),
                    Quant::Any | Quant::None if yes > 0 => Value::Bool(*kind == Quant::Any),
                    Quant::Single if yes > 1 => Value::Bool(false),
                    _ if unknown => Value::Null,
                    Quant::All => Value::Bool(true),
                    Quant::Any => Value::Bool(false),
                    Quant::None => Value::Bool(true),
                    Quant::Single => Value::Bool(yes == 1),
                }
            }
            Expr::Case {
                subject,
                whens,
                otherwise,
            } => {
                let subj = match subject {
                    Some(s) => Some(self.eval(s, row)?),
                    None => None,
                };
                for (w, t) in whens {
                    let wv = self.eval(w, row)?;
                    let hit = match &subj {
                        Some(s) => cypher_eq(s, &wv) == Some(true),
                        None => wv == Value::Bool(true),
                    };
                    if hit {
                        return self.eval(t, row);
                    }
                }
                match otherwise {
                    Some(o) => self.eval(o, row)?,
                    None => Value::Null,
                }
            }
        })
    }

    fn binary(&mut self, op: BinOp, a: &Expr, b: &Expr, row: &Row) -> Result<Value, CypherError> {
        use Value::*;
        match op {
            BinOp::And | BinOp::Or | BinOp::Xor => {
                let x = self.eval(a, row)?;
                if op == BinOp::And && x == Bool(false) {
                    return Ok(Bool(false));
                }
                if op == BinOp::Or && x == Bool(true) {
                    return Ok(Bool(true));
                }
                let y = self.eval(b, row)?;
                let tb = |v: &Value| -> Result<Option<bool>, CypherError> {
                    match v {
                        Bool(b) => Ok(Some(*b)),
                        Null => Ok(None),
                        other => Err(type_error(format!(
                            "Expected Boolean but was {}",
                            other.type_name()
                        ))),
                    }
                };
                let (x, y) = (tb(&x)?, tb(&y)?);
                return Ok(match (op, x, y) {
                    (BinOp::And, Some(false), _) | (BinOp::And, _, Some(false)) => Bool(false),
                    (BinOp::And, Some(true), Some(true)) => Bool(true),
                    (BinOp::Or, Some(true), _) | (BinOp::Or, _, Some(true)) => Bool(true),
                    (BinOp::Or, Some(false), Some(false)) => Bool(false),
                    (BinOp::Xor, Some(p), Some(q)) => Bool(p != q),
                    _ => Null,
                });
            }
            _ => {}
        }
        let x = self.eval(a, row)?;
        let y = self.eval(b, row)?;
        let (x, y) = if matches!(op, BinOp::In | BinOp::Add) {
            (x.unarray(), y.unarray())
        } else {
            (x, y)
        };
        Ok(match op {
            BinOp::Eq => cypher_eq(&x, &y).map(Bool).unwrap_or(Null),
            BinOp::Ne => cypher_eq(&x, &y).map(|b| Bool(!b)).unwrap_or(Null),
            BinOp::Lt | BinOp::Gt | BinOp::Le | BinOp::Ge => match compare(&x, &y) {
                None => Null,
                Some(o) => Bool(match op {
                    BinOp::Lt => o.is_lt(),
                    BinOp::Gt => o.is_gt(),
                    BinOp::Le => o.is_le(),
                    _ => o.is_ge(),
                }),
            },
            BinOp::StartsWith | BinOp::EndsWith | BinOp::Contains => match (&x, &y) {
                (Str(s), Str(t)) => Bool(match op {
                    BinOp::StartsWith => s.starts_with(t.as_str()),
                    BinOp::EndsWith => s.ends_with(t.as_str()),
                    _ => s.contains(t.as_str()),
                }),
                _ => Null,
            },
            BinOp::In => match &y {
                Null => Null,
                List(l) => {
                    let mut unknown = false;
                    for item in l {
                        match cypher_eq(&x, item) {
                            Some(true) => return Ok(Bool(true)),
                            None => unknown = true,
                            _ => {}
                        }
                    }
                    if unknown {
                        Null
                    } else {
                        Bool(false)
                    }
                }
                other => {
                    return Err(type_error(format!(
                        "Expected a list but was {}",
                        other.type_name()
                    )))
                }
            },
            BinOp::Regex => {
                return Err(CypherError::runtime(
                    codes::ARGUMENT,
                    "regular expressions (=~) are not supported by the fake Neo4j",
                ))
            }
            _ => arithmetic(op, &x, &y)?,
        })
    }

    /// `v.key`.
    pub fn property(&mut self, v: &Value, key: &str) -> Result<Value, CypherError> {
        let get = |props: &[(String, Value)]| {
            props
                .iter()
                .find(|(k, _)| k == key)
                .map(|(_, v)| v.clone())
                .unwrap_or(Value::Null)
        };
        Ok(match v {
            Value::Null => Value::Null,
            Value::Map(m) => get(m),
            Value::Node(id) => match self.tx.graph.nodes.get(id) {
                Some(n) => get(&n.props),
                None => return Err(self.deleted_error("Node", *id)),
            },
            Value::Rel(id) => match self.tx.graph.rels.get(id) {
                Some(r) => get(&r.props),
                None => return Err(self.deleted_error("Relationship", *id)),
            },
            Value::Virtual(vn) => get(&vn.props),
            Value::Point(p) => {
                let i = match key {
                    "x" | "longitude" => Some(0),
                    "y" | "latitude" => Some(1),
                    "z" | "height" => Some(2),
                    _ => None,
                };
                match (i, key) {
                    (Some(i), _) => p
                        .coords
                        .get(i)
                        .map(|c| Value::Float(*c))
                        .unwrap_or(Value::Null),
                    (None, "srid") => Value::Int(p.crs.srid as i64),
                    (None, "crs") => Value::str(p.crs.name),
                    _ => {
                        return Err(CypherError::runtime(
                            codes::SYNTAX,
                            format!("No such field: {key}"),
                        ))
                    }
                }
            }
            Value::Date(_)
            | Value::LocalDateTime(_)
            | Value::DateTime(_)
            | Value::LocalTime(_)
            | Value::Time(..) => temporal_field(v, key)?,
            Value::Duration(d) => match key {
                "months" => Value::Int(d.months),
                "days" => Value::Int(d.days),
                "seconds" => Value::Int(d.seconds),
                "nanoseconds" => Value::Int(d.nanos as i64),
                "years" => Value::Int(d.months / 12),
                _ => {
                    return Err(CypherError::runtime(
                        codes::SYNTAX,
                        format!("No such field: {key}"),
                    ))
                }
            },
            other => {
                return Err(type_error(format!(
                    "Type mismatch: expected a map but was {}",
                    other.type_name()
                )))
            }
        })
    }

    fn deleted_error(&self, kind: &str, id: u64) -> CypherError {
        CypherError::runtime(
            codes::ENTITY_NOT_FOUND,
            format!("{kind} with id {id} has been deleted in this transaction"),
        )
    }

    fn entity_props(&mut self, v: &Value) -> Result<Option<Vec<(String, Value)>>, CypherError> {
        Ok(match v {
            Value::Node(id) => Some(
                self.tx
                    .graph
                    .nodes
                    .get(id)
                    .ok_or_else(|| self.deleted_error("Node", *id))?
                    .props
                    .clone(),
            ),
            Value::Rel(id) => Some(
                self.tx
                    .graph
                    .rels
                    .get(id)
                    .ok_or_else(|| self.deleted_error("Relationship", *id))?
                    .props
                    .clone(),
            ),
            Value::Virtual(v) => Some(v.props.clone()),
            Value::Map(m) => Some(m.clone()),
            _ => None,
        })
    }

    /// Calls a non-aggregate function.
    pub fn call_function(&mut self, name: &str, args: &[Value]) -> Result<Value, CypherError> {
        use Value::*;
        let a0 = args.first().cloned().unwrap_or(Null);
        let a0 = if matches!(
            name,
            "size" | "head" | "last" | "tail" | "reverse" | "isempty"
        ) {
            a0.unarray()
        } else {
            a0
        };
        let uuid = self.db.uuid.clone();
        let arity = |n: usize| -> Result<(), CypherError> {
            if args.len() < n {
                Err(CypherError::compile(
                    codes::SYNTAX,
                    format!("Insufficient parameters for function '{name}'"),
                ))
            } else {
                Ok(())
            }
        };
        Ok(match name {
            "id" => match a0 {
                Node(i) | Rel(i) => Int(i as i64),
                Virtual(v) => Int(v.id),
                Null => Null,
                other => return Err(type_error(format!("Type mismatch: expected Node or Relationship but was {}", other.type_name()))),
            },
            "elementid" => match a0 {
                Node(i) => Str(format!("4:{uuid}:{i}")),
                Rel(i) => Str(format!("5:{uuid}:{i}")),
                Virtual(v) => Str(v.id.to_string()),
                Null => Null,
                other => return Err(type_error(format!("Type mismatch: expected Node or Relationship but was {}", other.type_name()))),
            },
            "labels" => match a0 {
                Node(i) => List(
                    self.tx
                        .graph
                        .nodes
                        .get(&i)
                        .ok_or_else(|| self.deleted_error("Node", i))?
                        .labels
                        .iter()
                        .map(|l| Str(l.clone()))
                        .collect(),
                ),
                Virtual(v) if v.node => List(v.labels.iter().map(|l| Str(l.clone())).collect()),
                Null => Null,
                other => return Err(type_error(format!("Type mismatch: expected Node but was {}", other.type_name()))),
            },
            "type" => match a0 {
                Rel(i) => Str(
                    self.tx
                        .graph
                        .rels
                        .get(&i)
                        .ok_or_else(|| self.deleted_error("Relationship", i))?
                        .rel_type
                        .clone(),
                ),
                Virtual(v) if !v.node => Str(v.labels.first().cloned().unwrap_or_default()),
                Null => Null,
                other => return Err(type_error(format!("Type mismatch: expected Relationship but was {}", other.type_name()))),
            },
            "keys" => match self.entity_props(&a0)? {
                Some(p) => List(p.into_iter().map(|(k, _)| Str(k)).collect()),
                None if a0.is_null() => Null,
                None => return Err(type_error(format!("Type mismatch: expected Map, Node or Relationship but was {}", a0.type_name()))),
            },
            "properties" => match self.entity_props(&a0)? {
                Some(p) => Map(p),
                None if a0.is_null() => Null,
                None => return Err(type_error(format!("Type mismatch: expected Map, Node or Relationship but was {}", a0.type_name()))),
            },
            "startnode" | "endnode" => match a0 {
                Rel(i) => {
                    let r = self
                        .tx
                        .graph
                        .rels
                        .get(&i)
                        .ok_or_else(|| self.deleted_error("Relationship", i))?;
                    Node(if name == "startnode" { r.start } else { r.end })
                }
                Null => Null,
                other => return Err(type_error(format!("Type mismatch: expected Relationship but was {}", other.type_name()))),
            },
            "nodes" | "relationships" => match a0 {
                Path(p) => List(
                    p.into_iter()
                        .filter(|v| matches!(v, Node(_)) == (name == "nodes"))
                        .collect(),
                ),
                Null => Null,
                other => return Err(type_error(format!("Type mismatch: expected Path but was {}", other.type_name()))),
            },
            "length" => match a0 {
                Path(p) => Int((p.len() / 2) as i64),
                Null => Null,
                other => return Err(type_error(format!("Type mismatch: expected Path but was {}", other.type_name()))),
            },
            "size" => match a0 {
                List(l) => Int(l.len() as i64),
                Bytes(b) => Int(b.len() as i64),
                // Code points, not UTF-16 units (`size('🌍')` is 1).
                Str(s) => Int(s.chars().count() as i64),
                Null => Null,
                other => return Err(type_error(format!("Type mismatch: expected String or List<T> but was {}", other.type_name()))),
            },
            "head" | "last" => match a0 {
                List(l) => (if name == "head" { l.first() } else { l.last() }).cloned().unwrap_or(Null),
                Null => Null,
                other => return Err(type_error(format!("Type mismatch: expected List<T> but was {}", other.type_name()))),
            },
            "tail" => match a0 {
                List(l) => List(l.into_iter().skip(1).collect()),
                Null => Null,
                other => return Err(type_error(format!("Type mismatch: expected List<T> but was {}", other.type_name()))),
            },
            "reverse" => match a0 {
                List(mut l) => {
                    l.reverse();
                    List(l)
                }
                Str(s) => Str(s.chars().rev().collect()),
                Null => Null,
                other => return Err(type_error(format!("Type mismatch: expected String or List<T> but was {}", other.type_name()))),
            },
            "range" => {
                arity(2)?;
                let a = as_int(&args[0], "start")?;
                let b = as_int(&args[1], "end")?;
                let step = match args.get(2) {
                    Some(s) => as_int(s, "step")?,
                    None => 1,
                };
                if step == 0 {
                    return Err(arg_error("step argument to range() can't be 0"));
                }
                let mut out = Vec::new();
                let mut i = a;
                while (step > 0 && i <= b) || (step < 0 && i >= b) {
                    out.push(Int(i));
                    if out.len() > 10_000_000 {
                        return Err(arg_error("range too large for the fake"));
                    }
                    i += step;
                }
                List(out)
            }
            "coalesce" => args.iter().find(|v| !v.is_null()).cloned().unwrap_or(Null),
            "isempty" => match a0 {
                List(l) => Bool(l.is_empty()),
                Str(s) => Bool(s.is_empty()),
                Map(m) => Bool(m.is_empty()),
                Null => Null,
                other => return Err(type_error(format!("Type mismatch: expected String, List<T> or Map but was {}", other.type_name()))),
            },
            "tostring" | "tostringornull" => match &a0 {
                Null => Null,
                v => match to_string(v) {
                    Some(s) => Str(s),
                    None if name == "tostringornull" => Null,
                    None => return Err(type_error(format!("Invalid input for function 'toString()': Expected a String, Number, Boolean, Temporal or Duration, got: {}", v.type_name()))),
                },
            },
            "tointeger" | "tointegerornull" => match &a0 {
                Null => Null,
                Int(i) => Int(*i),
                Float(f) => {
                    if f.is_nan() {
                        Null
                    } else {
                        Int(*f as i64)
                    }
                }
                Bool(b) => Int(*b as i64),
                Str(s) => {
                    let t = s.trim();
                    match t.parse::<i64>() {
                        Ok(i) => Int(i),
                        Err(_) => match t.parse::<f64>() {
                            Ok(f) if f.is_finite() => Int(f as i64),
                            _ => Null,
                        },
                    }
                }
                _ if name == "tointegerornull" => Null,
                other => return Err(type_error(format!("Invalid input for function 'toInteger()': Expected a String, Float, Integer or Boolean, got: {}", other.type_name()))),
            },
            "tofloat" | "tofloatornull" => match &a0 {
                Null => Null,
                Int(i) => Float(*i as f64),
                Float(f) => Float(*f),
                Str(s) => match s.trim() {
                    "NaN" => Float(f64::NAN),
                    "Infinity" | "+Infinity" => Float(f64::INFINITY),
                    "-Infinity" => Float(f64::NEG_INFINITY),
                    t => t.parse::<f64>().map(Float).unwrap_or(Null),
                },
                _ if name == "tofloatornull" => Null,
                other => return Err(type_error(format!("Invalid input for function 'toFloat()': Expected a String, Float or Integer, got: {}", other.type_name()))),
            },
            "toboolean" => match &a0 {
                Null => Null,
                Bool(b) => Bool(*b),
                Str(s) => match s.trim().to_ascii_lowercase().as_str() {
                    "true" => Bool(true),
                    "false" => Bool(false),
                    _ => Null,
                },
                Int(i) => Bool(*i != 0),
                other => return Err(type_error(format!("Invalid input for function 'toBoolean()': Expected a String, Integer or Boolean, got: {}", other.type_name()))),
            },
            "abs" => match a0 {
                Int(i) => Int(i.checked_abs().ok_or_else(|| overflow(0, "-", i))?),
                Float(f) => Float(f.abs()),
                Null => Null,
                other => return Err(type_error(format!("Type mismatch: expected Float or Integer but was {}", other.type_name()))),
            },
            "ceil" | "floor" | "round" | "sqrt" | "exp" | "log" | "log10" | "sign" => {
                let f = match &a0 {
                    Null => return Ok(Null),
                    v => v.as_f64().ok_or_else(|| type_error(format!("Type mismatch: expected Float or Integer but was {}", v.type_name())))?,
                };
                match name {
                    "ceil" => Float(f.ceil()),
                    "floor" => Float(f.floor()),
                    "round" => Float(f.round()),
                    "sqrt" => Float(f.sqrt()),
                    "exp" => Float(f.exp()),
                    "log" => Float(f.ln()),
                    "log10" => Float(f.log10()),
                    _ => Int(if f > 0.0 { 1 } else if f < 0.0 { -1 } else { 0 }),
                }
            }
            "substring" => {
                arity(2)?;
                if a0.is_null() {
                    return Ok(Null);
                }
                let s: Vec<char> = as_str(&a0, "substring")?.chars().collect();
                let start = as_int(&args[1], "start")?;
                if start < 0 {
                    return Err(arg_error(format!("Invalid input for function 'substring()': Expected the start position to be a positive integer but got {start}")));
                }
                let start = (start as usize).min(s.len());
                let len = match args.get(2) {
                    Some(l) => as_int(l, "length")?.max(0) as usize,
                    None => s.len(),
                };
                Str(s[start..(start + len).min(s.len())].iter().collect())
            }
            "left" | "right" => {
                arity(2)?;
                if a0.is_null() {
                    return Ok(Null);
                }
                let s: Vec<char> = as_str(&a0, name)?.chars().collect();
                let n = (as_int(&args[1], "length")?.max(0) as usize).min(s.len());
                Str(if name == "left" { s[..n].iter().collect() } else { s[s.len() - n..].iter().collect() })
            }
            "toupper" | "tolower" | "trim" | "ltrim" | "rtrim" => {
                if a0.is_null() {
                    return Ok(Null);
                }
                let s = as_str(&a0, name)?;
                Str(match name {
                    "toupper" => s.to_uppercase(),
                    "tolower" => s.to_lowercase(),
                    "trim" => s.trim().to_owned(),
                    "ltrim" => s.trim_start().to_owned(),
                    _ => s.trim_end().to_owned(),
                })
            }
            "replace" => {
                arity(3)?;
                if args.iter().any(Value::is_null) {
                    return Ok(Null);
                }
                Str(as_str(&a0, name)?.replace(as_str(&args[1], name)?, as_str(&args[2], name)?))
            }
            "split" => {
                arity(2)?;
                if args.iter().any(Value::is_null) {
                    return Ok(Null);
                }
                let s = as_str(&a0, name)?;
                let d = as_str(&args[1], name)?;
                List(s.split(d).map(|p| Str(p.to_owned())).collect())
            }
            "timestamp" => Int(self.now.timestamp_millis()),
            "date" | "localtime" | "time" | "localdatetime" | "datetime" => temporal_fn(name, args, self.now)?,
            "duration" => {
                arity(1)?;
                duration_fn(&a0)?
            }
            "duration.between" => {
                arity(2)?;
                between(&args[0], &args[1])?
            }
            "point" => {
                arity(1)?;
                make_point(&a0)?
            }
            other => {
                return Err(CypherError::compile(
                    codes::SYNTAX,
                    format!("Unknown function '{other}'"),
                ))
            }
        })
    }
}

fn temporal_field(v: &Value, key: &str) -> Result<Value, CypherError> {
    let (date, time, offset) = match v {
        Value::Date(d) => (Some(*d), None, None),
        Value::LocalDateTime(dt) => (Some(dt.date()), Some(dt.time()), None),
        Value::DateTime(z) => (Some(z.local.date()), Some(z.local.time()), Some(z.offset)),
        Value::LocalTime(t) => (None, Some(*t), None),
        Value::Time(t, o) => (None, Some(*t), Some(*o)),
        _ => (None, None, None),
    };
    let r = match key {
        "year" => date.map(|d| d.year() as i64),
        "month" => date.map(|d| d.month() as i64),
        "day" => date.map(|d| d.day() as i64),
        "hour" => time.map(|t| t.hour() as i64),
        "minute" => time.map(|t| t.minute() as i64),
        "second" => time.map(|t| t.second() as i64),
        "millisecond" => time.map(|t| (t.nanosecond() / 1_000_000) as i64),
        "nanosecond" => time.map(|t| t.nanosecond() as i64),
        "offsetSeconds" => offset.map(|o| o as i64),
        "epochSeconds" => match v {
            Value::DateTime(z) => Some(z.epoch().0),
            _ => None,
        },
        "epochMillis" => match v {
            Value::DateTime(z) => {
                let (s, n) = z.epoch();
                Some(s * 1000 + n as i64 / 1_000_000)
            }
            _ => None,
        },
        _ => None,
    };
    match (r, key) {
        (Some(i), _) => Ok(Value::Int(i)),
        (None, "timezone") => Ok(match v {
            Value::DateTime(z) => Value::Str(
                z.zone
                    .map(|z| z.name().to_owned())
                    .unwrap_or_else(|| temporal::format_offset(z.offset)),
            ),
            _ => Value::Null,
        }),
        _ => Err(CypherError::runtime(
            codes::SYNTAX,
            format!("No such field: {key}"),
        )),
    }
}
