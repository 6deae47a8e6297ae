//! Tokens of the Cypher subset.

use super::CypherError;

/// A token kind.
#[derive(Clone, Debug, PartialEq)]
pub enum Tok {
    /// A name or keyword (keywords are matched case-insensitively by the parser).
    Ident(String),
    /// A back-quoted name.
    Quoted(String),
    /// `$name`.
    Param(String),
    /// An integer literal, as written.
    Int(String),
    /// A float literal.
    Float(f64),
    /// A string literal, escapes resolved.
    Str(String),
    /// Punctuation and operators: `( ) [ ] { } , . : ; | + - * / % ^ = <> < > <= >= =~ ..`.
    Sym(&'static str),
    /// End of input.
    End,
}

/// A token and where it starts (character offset).
#[derive(Clone, Debug)]
pub struct Token {
    /// Kind.
    pub tok: Tok,
    /// Character offset of its first character.
    pub pos: usize,
    /// Character offset just after it.
    pub end: usize,
}

const SYMS: [&str; 25] = [
    "<>", "<=", ">=", "=~", "..", "+=", "(", ")", "[", "]", "{", "}", ",", ".", ":", ";", "|", "+",
    "-", "*", "/", "%", "^", "=", "<",
];

/// Splits `text` into tokens.
pub fn lex(text: &str) -> Result<Vec<Token>, CypherError> {
    let chars: Vec<char> = text.chars().collect();
    let mut out = Vec::new();
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        if c.is_whitespace() {
            i += 1;
            continue;
        }
        if c == '/' && chars.get(i + 1) == Some(&'/') {
            while i < chars.len() && chars[i] != '\n' {
                i += 1;
            }
            continue;
        }
        if c == '/' && chars.get(i + 1) == Some(&'*') {
            i += 2;
            while i + 1 < chars.len() && !(chars[i] == '*' && chars[i + 1] == '/') {
                i += 1;
            }
            i += 2;
            continue;
        }
        let start = i;
        if c.is_alphabetic() || c == '_' {
            while i < chars.len() && (chars[i].is_alphanumeric() || chars[i] == '_') {
                i += 1;
            }
            out.push(Token {
                tok: Tok::Ident(chars[start..i].iter().collect()),
                pos: start,
                end: i,
            });
            continue;
        }
        if c == '`' {
            i += 1;
            let mut s = String::new();
            loop {
                match chars.get(i) {
                    None => {
                        return Err(CypherError::syntax_at(
                            text,
                            start,
                            "Unexpected end of input: expected '`'",
                        ))
                    }
                    Some('`') if chars.get(i + 1) == Some(&'`') => {
                        s.push('`');
                        i += 2;
                    }
                    Some('`') => {
                        i += 1;
                        break;
                    }
                    Some(ch) => {
                        s.push(*ch);
                        i += 1;
                    }
                }
            }
            out.push(Token {
                tok: Tok::Quoted(s),
                pos: start,
                end: i,
            });
            continue;
        }
        if c == '$' {
            i += 1;
            let s0 = i;
            if chars.get(i) == Some(&'`') {
                i += 1;
                let s1 = i;
                while i < chars.len() && chars[i] != '`' {
                    i += 1;
                }
                let name: String = chars[s1..i].iter().collect();
                i += 1;
                out.push(Token {
                    tok: Tok::Param(name),
                    pos: start,
                    end: i,
                });
                continue;
            }
            while i < chars.len() && (chars[i].is_alphanumeric() || chars[i] == '_') {
                i += 1;
            }
            if i == s0 {
                return Err(CypherError::syntax_at(
                    text,
                    start,
                    "Invalid input '$': expected a parameter name",
                ));
            }
            out.push(Token {
                tok: Tok::Param(chars[s0..i].iter().collect()),
                pos: start,
                end: i,
            });
            continue;
        }
        if c.is_ascii_digit() || (c == '.' && chars.get(i + 1).is_some_and(|d| d.is_ascii_digit()))
        {
            let mut is_float = false;
            if c == '0' && matches!(chars.get(i + 1), Some('x') | Some('X')) {
                i += 2;
                while i < chars.len() && chars[i].is_ascii_hexdigit() {
                    i += 1;
                }
                out.push(Token {
                    tok: Tok::Int(chars[start..i].iter().collect()),
                    pos: start,
                    end: i,
                });
                continue;
            }
            while i < chars.len() && chars[i].is_ascii_digit() {
                i += 1;
            }
            if chars.get(i) == Some(&'.') && chars.get(i + 1).is_some_and(|d| d.is_ascii_digit()) {
                is_float = true;
                i += 1;
                while i < chars.len() && chars[i].is_ascii_digit() {
                    i += 1;
                }
            }
            if matches!(chars.get(i), Some('e') | Some('E')) {
                let mut j = i + 1;
                if matches!(chars.get(j), Some('+') | Some('-')) {
                    j += 1;
                }
                if chars.get(j).is_some_and(|d| d.is_ascii_digit()) {
                    is_float = true;
                    i = j;
                    while i < chars.len() && chars[i].is_ascii_digit() {
                        i += 1;
                    }
                }
            }
            let s: String = chars[start..i].iter().collect();
            if is_float {
                let f: f64 = s
                    .parse()
                    .map_err(|_| CypherError::syntax_at(text, start, "invalid float"))?;
                out.push(Token {
                    tok: Tok::Float(f),
                    pos: start,
                    end: i,
                });
            } else {
                out.push(Token {
                    tok: Tok::Int(s),
                    pos: start,
                    end: i,
                });
            }
            continue;
        }
        if c == '\'' || c == '"' {
            let quote = c;
            i += 1;
            let mut s = String::new();
            loop {
                let Some(&ch) = chars.get(i) else {
                    return Err(CypherError::syntax_at(
                        text,
                        text.chars().count(),
                        "Failed to parse string literal. The query must contain an even number of non-escaped quotes.",
                    ));
                };
                i += 1;
                if ch == quote {
                    break;
                }
                if ch == '\\' {
                    let Some(&e) = chars.get(i) else { continue };
                    i += 1;
                    match e {
                        'n' => s.push('\n'),
                        't' => s.push('\t'),
                        'r' => s.push('\r'),
                        'b' => s.push('\u{8}'),
                        'f' => s.push('\u{c}'),
                        '\\' => s.push('\\'),
                        '\'' => s.push('\''),
                        '"' => s.push('"'),
                        'u' | 'U' => {
                            let n = if e == 'u' { 4 } else { 8 };
                            let hex: String = chars.iter().skip(i).take(n).collect();
                            i += n;
                            let code = u32::from_str_radix(&hex, 16).map_err(|_| {
                                CypherError::syntax_at(
                                    text,
                                    i - n - 2,
                                    "Invalid input: invalid unicode escape",
                                )
                            })?;
                            s.push(char::from_u32(code).unwrap_or('\u{fffd}'));
                        }
                        other => {
                            s.push('\\');
                            s.push(other);
                        }
                    }
                } else {
                    s.push(ch);
                }
            }
            out.push(Token {
                tok: Tok::Str(s),
                pos: start,
                end: i,
            });
            continue;
        }
        let rest: String = chars[i..chars.len().min(i + 2)].iter().collect();
        let mut matched = None;
        for sym in SYMS {
            if rest.starts_with(sym) {
                matched = Some(sym);
                break;
            }
        }
        if matched.is_none() && c == '>' {
            matched = Some(">");
        }
        match matched {
            Some(sym) => {
                i += sym.chars().count();
                out.push(Token {
                    tok: Tok::Sym(sym),
                    pos: start,
                    end: i,
                });
            }
            None => {
                return Err(CypherError::syntax_at(
                    text,
                    start,
                    &format!("Invalid input '{c}'"),
                ))
            }
        }
    }
    out.push(Token {
        tok: Tok::End,
        pos: chars.len(),
        end: chars.len(),
    });
    Ok(out)
}
