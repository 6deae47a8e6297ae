//! The request body `{"statements": [...]}` read the way Neo4j reads it: as a token stream,
//! statement by statement, so that statements completed before a JSON syntax error run
//! (SURPRISE 10), with Jackson's wording for the structural errors.

use super::value::Value;

/// A JSON token.
#[derive(Clone, Debug, PartialEq)]
pub enum JTok {
    /// `{`
    StartObject,
    /// `}`
    EndObject,
    /// `[`
    StartArray,
    /// `]`
    EndArray,
    /// A key.
    Field(String),
    /// A string value.
    Str(String),
    /// A number as written.
    Num(String),
    /// `true`
    True,
    /// `false`
    False,
    /// `null`
    Null,
}

impl JTok {
    /// Jackson's name for the token kind.
    pub fn jackson_name(&self) -> &'static str {
        match self {
            JTok::StartObject => "START_OBJECT",
            JTok::EndObject => "END_OBJECT",
            JTok::StartArray => "START_ARRAY",
            JTok::EndArray => "END_ARRAY",
            JTok::Field(_) => "FIELD_NAME",
            JTok::Str(_) => "VALUE_STRING",
            JTok::Num(n) if n.contains(['.', 'e', 'E']) => "VALUE_NUMBER_FLOAT",
            JTok::Num(_) => "VALUE_NUMBER_INT",
            JTok::True => "VALUE_TRUE",
            JTok::False => "VALUE_FALSE",
            JTok::Null => "VALUE_NULL",
        }
    }
}

#[derive(Clone, Copy, PartialEq)]
enum Ctx {
    /// In an object, before a key (first: no comma yet).
    ObjKey { first: bool },
    /// In an object, after a key.
    ObjValue,
    /// In an array (first: no comma yet).
    Arr { first: bool },
}

/// A pull tokenizer over a JSON text.
pub struct Tokens<'a> {
    s: &'a [u8],
    i: usize,
    stack: Vec<Ctx>,
    done: bool,
}

/// A JSON syntax error.
#[derive(Debug)]
pub struct SyntaxError;

impl<'a> Tokens<'a> {
    /// Tokens of `s`.
    pub fn new(s: &'a [u8]) -> Self {
        Tokens {
            s,
            i: 0,
            stack: Vec::new(),
            done: false,
        }
    }

    fn ws(&mut self) {
        while self.i < self.s.len() && matches!(self.s[self.i], b' ' | b'\t' | b'\n' | b'\r') {
            self.i += 1;
        }
    }

    fn string(&mut self) -> Result<String, SyntaxError> {
        // at the opening quote
        self.i += 1;
        let mut out: Vec<u16> = Vec::new();
        let mut bytes: Vec<u8> = Vec::new();
        let flush = |bytes: &mut Vec<u8>, out: &mut Vec<u16>| -> Result<(), SyntaxError> {
            if !bytes.is_empty() {
                let s = std::str::from_utf8(bytes).map_err(|_| SyntaxError)?;
                out.extend(s.encode_utf16());
                bytes.clear();
            }
            Ok(())
        };
        loop {
            let &b = self.s.get(self.i).ok_or(SyntaxError)?;
            self.i += 1;
            match b {
                b'"' => break,
                b'\\' => {
                    flush(&mut bytes, &mut out)?;
                    let &e = self.s.get(self.i).ok_or(SyntaxError)?;
                    self.i += 1;
                    match e {
                        b'"' => out.push(b'"' as u16),
                        b'\\' => out.push(b'\\' as u16),
                        b'/' => out.push(b'/' as u16),
                        b'b' => out.push(8),
                        b'f' => out.push(12),
                        b'n' => out.push(10),
                        b'r' => out.push(13),
                        b't' => out.push(9),
                        b'u' => {
                            let hex = self.s.get(self.i..self.i + 4).ok_or(SyntaxError)?;
                            let hex = std::str::from_utf8(hex).map_err(|_| SyntaxError)?;
                            out.push(u16::from_str_radix(hex, 16).map_err(|_| SyntaxError)?);
                            self.i += 4;
                        }
                        _ => return Err(SyntaxError),
                    }
                }
                b if b < 0x20 => return Err(SyntaxError),
                b => bytes.push(b),
            }
        }
        flush(&mut bytes, &mut out)?;
        Ok(String::from_utf16_lossy(&out))
    }

    fn scalar(&mut self) -> Result<JTok, SyntaxError> {
        self.ws();
        let &b = self.s.get(self.i).ok_or(SyntaxError)?;
        match b {
            b'{' => {
                self.i += 1;
                self.stack.push(Ctx::ObjKey { first: true });
                Ok(JTok::StartObject)
            }
            b'[' => {
                self.i += 1;
                self.stack.push(Ctx::Arr { first: true });
                Ok(JTok::StartArray)
            }
            b'"' => Ok(JTok::Str(self.string()?)),
            b't' if self.s[self.i..].starts_with(b"true") => {
                self.i += 4;
                Ok(JTok::True)
            }
            b'f' if self.s[self.i..].starts_with(b"false") => {
                self.i += 5;
                Ok(JTok::False)
            }
            b'n' if self.s[self.i..].starts_with(b"null") => {
                self.i += 4;
                Ok(JTok::Null)
            }
            b'-' | b'0'..=b'9' => {
                let start = self.i;
                self.i += 1;
                while self.i < self.s.len()
                    && matches!(
                        self.s[self.i],
                        b'0'..=b'9' | b'.' | b'e' | b'E' | b'+' | b'-'
                    )
                {
                    self.i += 1;
                }
                let t = std::str::from_utf8(&self.s[start..self.i]).map_err(|_| SyntaxError)?;
                if t.parse::<f64>().is_err() {
                    return Err(SyntaxError);
                }
                Ok(JTok::Num(t.to_owned()))
            }
            _ => Err(SyntaxError),
        }
    }

    /// The next token; `Ok(None)` at the clean end of the document.
    pub fn next_token(&mut self) -> Result<Option<JTok>, SyntaxError> {
        self.ws();
        let Some(ctx) = self.stack.last().copied() else {
            if self.done {
                return if self.i < self.s.len() {
                    Err(SyntaxError)
                } else {
                    Ok(None)
                };
            }
            if self.i >= self.s.len() {
                return Ok(None);
            }
            self.done = true;
            return self.scalar().map(Some);
        };
        let &b = self.s.get(self.i).ok_or(SyntaxError)?;
        match ctx {
            Ctx::ObjKey { first } => {
                if b == b'}' {
                    self.i += 1;
                    self.stack.pop();
                    self.after_value();
                    return Ok(Some(JTok::EndObject));
                }
                if !first {
                    if b != b',' {
                        return Err(SyntaxError);
                    }
                    self.i += 1;
                    self.ws();
                }
                if self.s.get(self.i) != Some(&b'"') {
                    return Err(SyntaxError);
                }
                let key = self.string()?;
                self.ws();
                if self.s.get(self.i) != Some(&b':') {
                    return Err(SyntaxError);
                }
                self.i += 1;
                *self.stack.last_mut().unwrap() = Ctx::ObjValue;
                Ok(Some(JTok::Field(key)))
            }
            Ctx::ObjValue => {
                *self.stack.last_mut().unwrap() = Ctx::ObjKey { first: false };
                let t = self.scalar()?;
                Ok(Some(t))
            }
            Ctx::Arr { first } => {
                if b == b']' {
                    self.i += 1;
                    self.stack.pop();
                    self.after_value();
                    return Ok(Some(JTok::EndArray));
                }
                if !first {
                    if b != b',' {
                        return Err(SyntaxError);
                    }
                    self.i += 1;
                }
                *self.stack.last_mut().unwrap() = Ctx::Arr { first: false };
                let t = self.scalar()?;
                Ok(Some(t))
            }
        }
    }

    fn after_value(&mut self) {}

    /// Reads one whole value whose first token is `first`.
    pub fn value(&mut self, first: JTok) -> Result<Result<Value, String>, SyntaxError> {
        Ok(match first {
            JTok::Null => Ok(Value::Null),
            JTok::True => Ok(Value::Bool(true)),
            JTok::False => Ok(Value::Bool(false)),
            JTok::Str(s) => Ok(Value::Str(s)),
            JTok::Num(n) => Ok(number(&n)),
            JTok::StartArray => {
                let mut items = Vec::new();
                let mut bad = None;
                loop {
                    let t = self.next_token()?.ok_or(SyntaxError)?;
                    if t == JTok::EndArray {
                        break;
                    }
                    match self.value(t)? {
                        Ok(v) => items.push(v),
                        Err(e) => bad = bad.or(Some(e)),
                    }
                }
                match bad {
                    Some(e) => Err(e),
                    None => Ok(Value::List(items)),
                }
            }
            JTok::StartObject => {
                let mut pairs: Vec<(String, Value)> = Vec::new();
                let mut bad = None;
                loop {
                    let t = self.next_token()?.ok_or(SyntaxError)?;
                    match t {
                        JTok::EndObject => break,
                        JTok::Field(k) => {
                            let t = self.next_token()?.ok_or(SyntaxError)?;
                            match self.value(t)? {
                                Ok(v) => {
                                    pairs.retain(|(k2, _)| *k2 != k);
                                    pairs.push((k, v));
                                }
                                Err(e) => bad = bad.or(Some(e)),
                            }
                        }
                        _ => return Err(SyntaxError),
                    }
                }
                match bad {
                    Some(e) => Err(e),
                    None => Ok(Value::Map(pairs)),
                }
            }
            JTok::EndArray | JTok::EndObject | JTok::Field(_) => return Err(SyntaxError),
        })
    }

    /// Skips one whole value whose first token is `first`.
    pub fn skip(&mut self, first: JTok) -> Result<(), SyntaxError> {
        let _ = self.value(first)?;
        Ok(())
    }
}

/// A JSON number as a Cypher value: integers must fit 64 bits (Neo4j: "Unsupported type
/// of Number …"), others are floats.
fn number(n: &str) -> Value {
    if n.contains(['.', 'e', 'E']) {
        return Value::Float(n.parse().unwrap_or(f64::NAN));
    }
    match n.parse::<i64>() {
        Ok(i) => Value::Int(i),
        // Marked as a too-large number; rejected when the statement runs.
        Err(_) => Value::Str(format!("\u{0}bignum:{n}")),
    }
}

/// If a parameter value holds a number too large for Neo4j, its text.
pub fn too_large_number(v: &Value) -> Option<String> {
    match v {
        Value::Str(s) => s.strip_prefix("\u{0}bignum:").map(str::to_owned),
        Value::List(l) => l.iter().find_map(too_large_number),
        Value::Map(m) => m.iter().find_map(|(_, v)| too_large_number(v)),
        _ => None,
    }
}

/// One statement of a request.
#[derive(Clone, Debug)]
pub struct StatementRequest {
    /// The Cypher text.
    pub statement: String,
    /// Parameters, or the `InvalidFormat` message for parameters that are not a map.
    pub parameters: Result<Vec<(String, Value)>, String>,
    /// `resultDataContents` (default `["row"]`).
    pub contents: Vec<String>,
    /// `includeStats`.
    pub include_stats: bool,
}

/// What reading the next statement gave.
pub enum Next {
    /// A statement.
    Statement(StatementRequest),
    /// No more statements.
    End,
    /// `Neo.ClientError.Request.InvalidFormat` with this message.
    Invalid(String),
}

/// Reads statements one at a time.
pub struct StatementReader<'a> {
    t: Tokens<'a>,
    started: bool,
    finished: bool,
}

const PARSE: &str = "Could not parse the incoming JSON";

impl<'a> StatementReader<'a> {
    /// A reader over a request body.
    pub fn new(body: &'a [u8]) -> Self {
        StatementReader {
            t: Tokens::new(body),
            started: false,
            finished: false,
        }
    }

    fn tok(&mut self) -> Result<Option<JTok>, Next> {
        self.t.next_token().map_err(|_| Next::Invalid(PARSE.into()))
    }

    /// The next statement.
    pub fn next_statement(&mut self) -> Next {
        match self.next_inner() {
            Ok(n) => n,
            Err(n) => {
                self.finished = true;
                n
            }
        }
    }

    fn next_inner(&mut self) -> Result<Next, Next> {
        if self.finished {
            return Ok(Next::End);
        }
        if !self.started {
            self.started = true;
            let mut first = match self.tok()? {
                None => {
                    self.finished = true;
                    return Ok(Next::End);
                }
                Some(t) => t,
            };
            // A top-level array is looked through (Neo4j then names the first field).
            if first == JTok::StartArray {
                first = self.tok()?.unwrap_or(JTok::Null);
            }
            let second = self.tok()?;
            let third = match &second {
                Some(JTok::Field(_)) => self.tok()?,
                _ => None,
            };
            let ok = first == JTok::StartObject
                && matches!(second, Some(JTok::Field(_)))
                && third == Some(JTok::StartArray);
            if let (JTok::StartObject, Some(JTok::Field(name)), Some(_)) = (&first, &second, &third)
            {
                if name != "statements" {
                    return Err(Next::Invalid(format!(
                        "Unable to deserialize request. Expected first field to be 'statements', but was '{name}'."
                    )));
                }
            }
            if !ok {
                let name =
                    |t: &Option<JTok>| t.as_ref().map(|t| t.jackson_name()).unwrap_or("null");
                return Err(Next::Invalid(format!(
                    "Unable to deserialize request. Expected [START_OBJECT, FIELD_NAME, START_ARRAY], found [{}, {}, {}].",
                    first.jackson_name(),
                    name(&second),
                    name(&third)
                )));
            }
        }
        let t = self.tok()?.ok_or_else(|| Next::Invalid(PARSE.into()))?;
        match t {
            JTok::EndArray => {
                // The rest of the document (other fields) is read and ignored.
                loop {
                    match self.tok()? {
                        None => break,
                        Some(JTok::Field(_)) => {
                            let v = self.tok()?.ok_or_else(|| Next::Invalid(PARSE.into()))?;
                            self.t.skip(v).map_err(|_| Next::Invalid(PARSE.into()))?;
                        }
                        Some(_) => {}
                    }
                }
                self.finished = true;
                Ok(Next::End)
            }
            JTok::StartObject => {
                let mut st = StatementRequest {
                    statement: String::new(),
                    parameters: Ok(Vec::new()),
                    contents: vec!["row".into()],
                    include_stats: false,
                };
                let mut have_statement = false;
                loop {
                    match self.tok()?.ok_or_else(|| Next::Invalid(PARSE.into()))? {
                        JTok::EndObject => break,
                        JTok::Field(k) => {
                            let v = self.tok()?.ok_or_else(|| Next::Invalid(PARSE.into()))?;
                            match (k.as_str(), v) {
                                ("statement", JTok::Str(s)) => {
                                    st.statement = s;
                                    have_statement = true;
                                }
                                ("parameters", JTok::StartObject) => {
                                    match self
                                        .t
                                        .value(JTok::StartObject)
                                        .map_err(|_| Next::Invalid(PARSE.into()))?
                                    {
                                        Ok(Value::Map(m)) => st.parameters = Ok(m),
                                        _ => {
                                            st.parameters =
                                                Err("Could not map the incoming JSON".into())
                                        }
                                    }
                                }
                                ("parameters", JTok::Null) => {}
                                ("parameters", other) => {
                                    self.t
                                        .skip(other)
                                        .map_err(|_| Next::Invalid(PARSE.into()))?;
                                    return Err(Next::Invalid(
                                        "Could not map the incoming JSON".into(),
                                    ));
                                }
                                ("resultDataContents", JTok::StartArray) => {
                                    match self
                                        .t
                                        .value(JTok::StartArray)
                                        .map_err(|_| Next::Invalid(PARSE.into()))?
                                    {
                                        Ok(Value::List(l)) => {
                                            st.contents = l
                                                .into_iter()
                                                .map(|v| match v {
                                                    Value::Str(s) => s,
                                                    other => format!("{other:?}"),
                                                })
                                                .collect();
                                        }
                                        _ => {
                                            return Err(Next::Invalid(
                                                "Could not map the incoming JSON".into(),
                                            ))
                                        }
                                    }
                                }
                                ("resultDataContents", JTok::Null) => {}
                                ("includeStats", JTok::True) => st.include_stats = true,
                                ("includeStats", JTok::False | JTok::Null) => {}
                                (_, other) => {
                                    let statement_key = k == "statement";
                                    self.t
                                        .skip(other)
                                        .map_err(|_| Next::Invalid(PARSE.into()))?;
                                    if statement_key {
                                        return Err(Next::Invalid(
                                            "Could not map the incoming JSON".into(),
                                        ));
                                    }
                                }
                            }
                        }
                        _ => return Err(Next::Invalid(PARSE.into())),
                    }
                }
                if !have_statement {
                    return Err(Next::Invalid("No statement provided.".into()));
                }
                Ok(Next::Statement(st))
            }
            _ => Err(Next::Invalid(PARSE.into())),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn all(body: &str) -> Vec<String> {
        let mut r = StatementReader::new(body.as_bytes());
        let mut out = Vec::new();
        loop {
            match r.next_statement() {
                Next::Statement(s) => out.push(format!("stmt:{}", s.statement)),
                Next::End => break,
                Next::Invalid(m) => {
                    out.push(format!("invalid:{m}"));
                    break;
                }
            }
        }
        out
    }

    #[test]
    fn reads_like_neo4j() {
        assert_eq!(all(""), Vec::<String>::new());
        assert_eq!(all(r#"{"statements":[]}"#), Vec::<String>::new());
        assert_eq!(
            all(r#"{"statements":[{"statement":"RETURN 1"}]}"#),
            vec!["stmt:RETURN 1"]
        );
        assert_eq!(
            all(r#"{}"#),
            vec!["invalid:Unable to deserialize request. Expected [START_OBJECT, FIELD_NAME, START_ARRAY], found [START_OBJECT, END_OBJECT, null]."]
        );
        assert_eq!(
            all(r#"{"statements": "RETURN 1"}"#),
            vec!["invalid:Unable to deserialize request. Expected [START_OBJECT, FIELD_NAME, START_ARRAY], found [START_OBJECT, FIELD_NAME, VALUE_STRING]."]
        );
        assert_eq!(
            all(r#"[{"statement": "RETURN 1"}]"#),
            vec!["invalid:Unable to deserialize request. Expected first field to be 'statements', but was 'statement'."]
        );
        assert_eq!(
            all(r#"{"statements":[{"parameters":{}}]}"#),
            vec!["invalid:No statement provided."]
        );
        assert_eq!(
            all(r#"{"statements":[{"statement":"RETURN 1"}"#),
            vec!["stmt:RETURN 1", "invalid:Could not parse the incoming JSON"]
        );
        assert_eq!(
            all("this is not json"),
            vec!["invalid:Could not parse the incoming JSON"]
        );
        let mut r = StatementReader::new(br#"{"statements":[{"statement":"RETURN $x","parameters":{"x":9223372036854775808,"s":"\ud83c\udf0d"}}]}"#);
        let Next::Statement(s) = r.next_statement() else {
            panic!()
        };
        let p = s.parameters.unwrap();
        assert_eq!(
            too_large_number(&p[0].1).as_deref(),
            Some("9223372036854775808")
        );
        assert_eq!(p[1].1, Value::str("\u{1F30D}"));
    }
}
