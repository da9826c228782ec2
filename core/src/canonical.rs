//! The receipt canonical JSON of wire 5 and the strict JSON reader used for untrusted documents.
//!
//! Canonical form (not RFC 8785): UTF-8, no whitespace, object keys sorted by UTF-16 code units,
//! strings escape only `"`, `\` and U+0000–U+001F (as lowercase `\u00XX`), integers only within
//! ±(2^53−1), depth ≤ 32 (root = 1) and ≤ 50,000 values.
//!
//! The reader is our own rather than serde_json's because the reference verifier decides on the
//! *tokens*: `1.0` is rejected while `-0` is the integer 0, and NaN/Infinity are floats rather than
//! syntax errors. serde_json cannot tell those apart once a number is parsed.

use serde_json::{Map, Number, Value};
use sha2::{Digest, Sha256};
use std::borrow::Cow;
use std::cmp::Ordering;

pub const MAX_SAFE_INTEGER: i64 = 9_007_199_254_740_991;
pub const MAX_DEPTH: usize = 32;
pub const MAX_NODES: usize = 50_000;

/// Nesting bound of lenient documents: roughly where the reference's recursive parser gives up
/// (Python's default recursion limit), and far below anything that could exhaust a thread stack.
const DOCUMENT_MAX_DEPTH: usize = 1000;

#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct CanonicalError(pub String);

fn err<T>(message: impl Into<String>) -> Result<T, CanonicalError> {
    Err(CanonicalError(message.into()))
}

/// Appends the canonical encoding of `value` to `out`.
///
/// On error `out` may hold a partial encoding; callers discard it.
pub fn write_canonical(value: &Value, out: &mut Vec<u8>) -> Result<(), CanonicalError> {
    let mut nodes = 0usize;
    write_value(value, 1, &mut nodes, out)
}

pub fn to_canonical_vec(value: &Value) -> Result<Vec<u8>, CanonicalError> {
    let mut out = Vec::with_capacity(256);
    write_canonical(value, &mut out)?;
    Ok(out)
}

/// Lowercase hex SHA-256 of the canonical encoding, without a prefix.
pub fn canonical_sha256_hex(value: &Value) -> Result<String, CanonicalError> {
    Ok(sha256_hex(&to_canonical_vec(value)?))
}

pub fn sha256_hex(bytes: &[u8]) -> String {
    hex(&Sha256::digest(bytes))
}

/// Lowercase hex of arbitrary bytes.
pub(crate) fn hex(bytes: &[u8]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut text = String::with_capacity(bytes.len() * 2);
    for &b in bytes {
        text.push(char::from(DIGITS[usize::from(b >> 4)]));
        text.push(char::from(DIGITS[usize::from(b & 0x0f)]));
    }
    text
}

// Recursion is bounded by MAX_DEPTH: deeper values fail before descending.
fn write_value(value: &Value, depth: usize, nodes: &mut usize, out: &mut Vec<u8>) -> Result<(), CanonicalError> {
    *nodes += 1;
    if depth > MAX_DEPTH {
        return err(format!("payload nesting exceeds max depth {MAX_DEPTH}"));
    }
    if *nodes > MAX_NODES {
        return err(format!("payload exceeds max node count {MAX_NODES}"));
    }
    match value {
        Value::Null => out.extend_from_slice(b"null"),
        Value::Bool(true) => out.extend_from_slice(b"true"),
        Value::Bool(false) => out.extend_from_slice(b"false"),
        Value::Number(number) => write_integer(safe_integer(number)?, out),
        Value::String(text) => write_string(text, out),
        Value::Array(items) => {
            out.push(b'[');
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push(b',');
                }
                write_value(item, depth + 1, nodes, out)?;
            }
            out.push(b']');
        }
        Value::Object(map) => {
            // serde_json's map iterates bytewise, which is UTF-16 order unless keys mix
            // supplementary characters with U+E000–U+FFFF; only then are the entries sorted.
            let in_order = map.keys().zip(map.keys().skip(1)).all(|(a, b)| utf16_cmp(a, b) == Ordering::Less);
            if in_order {
                write_entries(map.iter(), depth, nodes, out)?;
            } else {
                let mut entries: Vec<(&String, &Value)> = map.iter().collect();
                entries.sort_unstable_by(|a, b| utf16_cmp(a.0, b.0));
                write_entries(entries.into_iter(), depth, nodes, out)?;
            }
        }
    }
    Ok(())
}

fn write_entries<'v>(
    entries: impl Iterator<Item = (&'v String, &'v Value)>,
    depth: usize,
    nodes: &mut usize,
    out: &mut Vec<u8>,
) -> Result<(), CanonicalError> {
    out.push(b'{');
    for (i, (key, item)) in entries.enumerate() {
        if i > 0 {
            out.push(b',');
        }
        write_string(key, out);
        out.push(b':');
        write_value(item, depth + 1, nodes, out)?;
    }
    out.push(b'}');
    Ok(())
}

fn safe_integer(number: &Number) -> Result<i64, CanonicalError> {
    if let Some(value) = number.as_i64() {
        if value.unsigned_abs() <= MAX_SAFE_INTEGER.unsigned_abs() {
            return Ok(value);
        }
    } else if number.is_f64() {
        return err("receipts must not contain non-integer numbers");
    }
    err(format!("integer `{number}` exceeds the safe range ±(2^53-1)"))
}

fn write_integer(value: i64, out: &mut Vec<u8>) {
    let mut digits = [0u8; 20];
    let mut at = digits.len();
    let mut rest = value.unsigned_abs();
    loop {
        at -= 1;
        digits[at] = b'0' + (rest % 10) as u8;
        rest /= 10;
        if rest == 0 {
            break;
        }
    }
    if value < 0 {
        out.push(b'-');
    }
    out.extend_from_slice(&digits[at..]);
}

/// Writes `text` as a canonical JSON string (escaping only `"`, `\` and control characters).
pub(crate) fn write_string(text: &str, out: &mut Vec<u8>) {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let bytes = text.as_bytes();
    out.reserve(bytes.len() + 2);
    out.push(b'"');
    let mut start = 0;
    while let Some(offset) = find_special(&bytes[start..]) {
        let i = start + offset;
        out.extend_from_slice(&bytes[start..i]);
        match bytes[i] {
            b'"' => out.extend_from_slice(b"\\\""),
            b'\\' => out.extend_from_slice(b"\\\\"),
            b => out.extend_from_slice(&[
                b'\\',
                b'u',
                b'0',
                b'0',
                DIGITS[usize::from(b >> 4)],
                DIGITS[usize::from(b & 0x0f)],
            ]),
        }
        start = i + 1;
    }
    out.extend_from_slice(&bytes[start..]);
    out.push(b'"');
}

/// Position of the first `"`, `\` or control character: the bytes a JSON string cannot hold raw.
///
/// Blocks of 16 bytes are tested branch-free into a bit mask, which the compiler vectorizes;
/// receipts are mostly long base64url strings with nothing to find.
fn find_special(bytes: &[u8]) -> Option<usize> {
    let special = |b: u8| (b == b'"') | (b == b'\\') | (b < 0x20);
    let mut blocks = bytes.chunks_exact(16);
    let mut base = 0;
    for block in blocks.by_ref() {
        let mask = block.iter().enumerate().fold(0u32, |mask, (i, &b)| mask | (u32::from(special(b)) << i));
        if mask != 0 {
            return Some(base + mask.trailing_zeros() as usize);
        }
        base += 16;
    }
    blocks.remainder().iter().position(|&b| special(b)).map(|i| base + i)
}

/// Orders strings by their UTF-16 code units, working on the UTF-8 bytes.
///
/// UTF-8 byte order equals code point order, which differs from UTF-16 order only between a
/// supplementary character (lead byte 0xF0–0xF4, a surrogate pair in UTF-16) and U+E000–U+FFFF
/// (lead byte 0xEE or 0xEF). The first differing byte of two valid strings is either inside
/// characters of the same length (no inversion) or two lead bytes, so lifting 0xEE/0xEF above
/// 0xF4 at that byte gives exactly the UTF-16 order.
pub fn utf16_cmp(a: &str, b: &str) -> Ordering {
    let (a, b) = (a.as_bytes(), b.as_bytes());
    match a.iter().zip(b).position(|(x, y)| x != y) {
        None => a.len().cmp(&b.len()),
        Some(i) => {
            let rank = |byte: u8| if byte == 0xEE || byte == 0xEF { u16::from(byte) + 0x100 } else { u16::from(byte) };
            rank(a[i]).cmp(&rank(b[i]))
        }
    }
}

/// Strict parse used for every untrusted receipt/JSON document: rejects duplicate object names,
/// any fractional/exponent number token, integers outside the safe range, depth > 32, > 50,000
/// values, invalid UTF-8, lone surrogate escapes, trailing data.
pub fn parse_strict(bytes: &[u8]) -> Result<Value, CanonicalError> {
    Ok(parse_strict_node(bytes)?.to_value())
}

/// Lenient parse of a plain JSON document (a keys document, checkpoint evidence, an export line),
/// as the reference reads them: duplicate object names are rejected, but fractional numbers,
/// NaN/Infinity, big integers and lone surrogate escapes are accepted.
///
/// None of those documents has a numeric field, so an integer beyond `i64` becomes an `f64`, a
/// non-finite number the largest `f64` of its sign (it only needs to stay "some number"), and a
/// lone surrogate U+FFFD.
pub fn parse_document(bytes: &[u8]) -> Result<Value, CanonicalError> {
    Ok(Parser::new(bytes, Mode::Document)?.parse()?.to_value())
}

/// [`parse_strict`] into a borrowed tree, for the verifier's hot path.
pub(crate) fn parse_strict_node(bytes: &[u8]) -> Result<Node<'_>, CanonicalError> {
    Parser::new(bytes, Mode::Strict)?.parse()
}

/// [`parse_document`] into a borrowed tree, from text already known to be UTF-8.
pub(crate) fn parse_document_node(text: &str) -> Result<Node<'_>, CanonicalError> {
    Parser::of_str(text, Mode::Document).parse()
}

/// A parsed JSON value borrowing its strings from the input where no escape forced a copy.
///
/// Verifying a receipt reads a handful of fields; building a `serde_json::Value` (one allocation
/// per string and map node) would cost more than the Ed25519 check itself. Public read-only, for
/// bindings that convert verified payloads to their own objects
/// ([`Verifier::verify_many_with`](crate::receipt::Verifier::verify_many_with)).
#[derive(Clone, Debug, PartialEq)]
pub enum Node<'a> {
    Null,
    Bool(bool),
    Int(i64),
    /// Only in lenient documents; receipts reject every non-integer.
    Float(f64),
    Str(Cow<'a, str>),
    Array(Vec<Node<'a>>),
    Object(Object<'a>),
}

/// Object members in document order (names are unique: the parser rejects duplicates).
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Object<'a>(Vec<(Cow<'a, str>, Node<'a>)>);

static NULL: Node<'static> = Node::Null;

impl<'a> Node<'a> {
    pub(crate) fn as_str(&self) -> Option<&str> {
        match self {
            Node::Str(text) => Some(text),
            _ => None,
        }
    }

    pub(crate) fn as_i64(&self) -> Option<i64> {
        match self {
            Node::Int(value) => Some(*value),
            _ => None,
        }
    }

    pub(crate) fn as_object(&self) -> Option<&Object<'a>> {
        match self {
            Node::Object(object) => Some(object),
            _ => None,
        }
    }

    pub(crate) fn is_null(&self) -> bool {
        matches!(self, Node::Null)
    }

    pub(crate) fn is_string(&self) -> bool {
        matches!(self, Node::Str(_))
    }

    pub(crate) fn is_object(&self) -> bool {
        matches!(self, Node::Object(_))
    }

    /// Member `name` of an object (`None` for a missing member or a non-object).
    pub(crate) fn get(&self, name: &str) -> Option<&Node<'a>> {
        self.as_object().and_then(|object| object.get(name))
    }

    pub(crate) fn to_value(&self) -> Value {
        match self {
            Node::Null => Value::Null,
            Node::Bool(flag) => Value::Bool(*flag),
            Node::Int(value) => Value::from(*value),
            Node::Float(value) => Value::Number(lenient_float(*value)),
            Node::Str(text) => Value::String(text.to_string()),
            Node::Array(items) => Value::Array(items.iter().map(Node::to_value).collect()),
            Node::Object(object) => Value::Object(object.to_map()),
        }
    }
}

impl<'a> std::ops::Index<&str> for Node<'a> {
    type Output = Node<'a>;

    /// Like `serde_json::Value`: a missing member reads as null.
    fn index(&self, name: &str) -> &Node<'a> {
        self.get(name).unwrap_or(&NULL)
    }
}

impl<'a> Object<'a> {
    pub(crate) fn get(&self, name: &str) -> Option<&Node<'a>> {
        self.0.iter().find(|(key, _)| key == name).map(|(_, value)| value)
    }

    /// Takes member `name` out of the object.
    pub(crate) fn into_member(self, name: &str) -> Option<Node<'a>> {
        self.0.into_iter().find(|(key, _)| key == name).map(|(_, value)| value)
    }

    pub(crate) fn contains_key(&self, name: &str) -> bool {
        self.get(name).is_some()
    }

    /// The members, in document order.
    pub fn iter(&self) -> impl ExactSizeIterator<Item = (&str, &Node<'a>)> {
        self.0.iter().map(|(key, value)| (key.as_ref(), value))
    }

    pub fn len(&self) -> usize {
        self.0.len()
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    pub(crate) fn keys(&self) -> impl Iterator<Item = &str> {
        self.0.iter().map(|(key, _)| key.as_ref())
    }

    pub fn to_map(&self) -> Map<String, Value> {
        self.0.iter().map(|(key, value)| (key.to_string(), value.to_value())).collect()
    }

    /// The first name that occurs twice, if any.
    fn duplicate(&self) -> Option<&str> {
        let members = &self.0;
        // Receipt objects are small: pairwise is cheapest there, sorting beyond.
        if members.len() <= 16 {
            return (1..members.len())
                .find(|&i| members[..i].iter().any(|(earlier, _)| *earlier == members[i].0))
                .map(|i| members[i].0.as_ref());
        }
        let mut names: Vec<&str> = self.keys().collect();
        names.sort_unstable();
        names.windows(2).find(|pair| pair[0] == pair[1]).map(|pair| pair[0])
    }
}

impl<'a> std::ops::Index<&str> for Object<'a> {
    type Output = Node<'a>;

    fn index(&self, name: &str) -> &Node<'a> {
        self.get(name).unwrap_or(&NULL)
    }
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Mode {
    Strict,
    Document,
}

/// An open container while parsing; the parser keeps these on its own stack so that hostile
/// nesting fails with an error instead of overflowing the thread's stack.
enum Frame<'a> {
    Array(Vec<Node<'a>>),
    Object(Object<'a>, Cow<'a, str>),
}

struct Parser<'a> {
    /// The input, validated as UTF-8 once; strings are cut from it at ASCII delimiters.
    source: &'a str,
    text: &'a [u8],
    pos: usize,
    mode: Mode,
    nodes: usize,
}

impl<'a> Parser<'a> {
    fn new(bytes: &'a [u8], mode: Mode) -> Result<Parser<'a>, CanonicalError> {
        let source = std::str::from_utf8(bytes).map_err(|e| CanonicalError(format!("invalid utf-8 in json: {e}")))?;
        Ok(Parser::of_str(source, mode))
    }

    fn of_str(source: &'a str, mode: Mode) -> Parser<'a> {
        Parser { source, text: source.as_bytes(), pos: 0, mode, nodes: 0 }
    }

    fn max_depth(&self) -> usize {
        match self.mode {
            Mode::Strict => MAX_DEPTH,
            Mode::Document => DOCUMENT_MAX_DEPTH,
        }
    }

    fn parse(mut self) -> Result<Node<'a>, CanonicalError> {
        let mut stack: Vec<Frame<'a>> = Vec::with_capacity(8);
        'value: loop {
            self.count_value(stack.len() + 1)?;
            self.skip_whitespace();
            let mut value = match self.peek() {
                Some(b'{') => {
                    self.pos += 1;
                    self.skip_whitespace();
                    if self.eat(b'}') {
                        Node::Object(Object::default())
                    } else {
                        let key = self.parse_key()?;
                        stack.push(Frame::Object(Object(Vec::with_capacity(8)), key));
                        continue 'value;
                    }
                }
                Some(b'[') => {
                    self.pos += 1;
                    self.skip_whitespace();
                    if self.eat(b']') {
                        Node::Array(Vec::new())
                    } else {
                        stack.push(Frame::Array(Vec::new()));
                        continue 'value;
                    }
                }
                _ => self.parse_scalar()?,
            };
            // Attach the finished value to its parents, closing every container that ends here.
            loop {
                self.skip_whitespace();
                match stack.last_mut() {
                    None => {
                        if self.pos != self.text.len() {
                            return self.fail("trailing data after json value");
                        }
                        return Ok(value);
                    }
                    Some(Frame::Array(items)) => {
                        items.push(value);
                        match self.next_byte() {
                            Some(b',') => continue 'value,
                            Some(b']') => {}
                            _ => return self.fail("expected `,` or `]` in array"),
                        }
                    }
                    Some(Frame::Object(object, key)) => {
                        object.0.push((std::mem::take(key), value));
                        match self.next_byte() {
                            Some(b',') => {
                                self.skip_whitespace();
                                *key = self.parse_key()?;
                                continue 'value;
                            }
                            Some(b'}') => {}
                            _ => return self.fail("expected `,` or `}` in object"),
                        }
                    }
                }
                value = match stack.pop() {
                    Some(Frame::Array(items)) => Node::Array(items),
                    Some(Frame::Object(object, _)) => {
                        // Checked when the object closes, as the reference's object hook does.
                        if let Some(name) = object.duplicate() {
                            return err(format!("duplicate json object name: `{name}`"));
                        }
                        Node::Object(object)
                    }
                    None => return self.fail("unbalanced json"),
                };
            }
        }
    }

    fn count_value(&mut self, depth: usize) -> Result<(), CanonicalError> {
        self.nodes += 1;
        if depth > self.max_depth() {
            return err(format!("payload nesting exceeds max depth {}", self.max_depth()));
        }
        if self.mode == Mode::Strict && self.nodes > MAX_NODES {
            return err(format!("payload exceeds max node count {MAX_NODES}"));
        }
        Ok(())
    }

    fn fail<T>(&self, message: &str) -> Result<T, CanonicalError> {
        err(format!("invalid json at byte {}: {message}", self.pos))
    }

    fn peek(&self) -> Option<u8> {
        self.text.get(self.pos).copied()
    }

    fn next_byte(&mut self) -> Option<u8> {
        let b = self.peek()?;
        self.pos += 1;
        Some(b)
    }

    fn eat(&mut self, b: u8) -> bool {
        if self.peek() == Some(b) {
            self.pos += 1;
            true
        } else {
            false
        }
    }

    fn eat_literal(&mut self, literal: &[u8]) -> bool {
        if self.text[self.pos..].starts_with(literal) {
            self.pos += literal.len();
            true
        } else {
            false
        }
    }

    fn skip_whitespace(&mut self) {
        while let Some(b' ' | b'\t' | b'\n' | b'\r') = self.peek() {
            self.pos += 1;
        }
    }

    fn parse_key(&mut self) -> Result<Cow<'a, str>, CanonicalError> {
        if !self.eat(b'"') {
            return self.fail("expected a string object name");
        }
        let key = self.parse_string_body()?;
        self.skip_whitespace();
        if !self.eat(b':') {
            return self.fail("expected `:` after object name");
        }
        Ok(key)
    }

    fn parse_scalar(&mut self) -> Result<Node<'a>, CanonicalError> {
        match self.peek() {
            Some(b'"') => {
                self.pos += 1;
                Ok(Node::Str(self.parse_string_body()?))
            }
            Some(b'-' | b'0'..=b'9') => {
                if self.eat_literal(b"-Infinity") {
                    return self.non_integer(f64::NEG_INFINITY);
                }
                self.parse_number()
            }
            _ if self.eat_literal(b"true") => Ok(Node::Bool(true)),
            _ if self.eat_literal(b"false") => Ok(Node::Bool(false)),
            _ if self.eat_literal(b"null") => Ok(Node::Null),
            // The reference's reader accepts these as floats; receipts then reject them as floats.
            _ if self.eat_literal(b"NaN") => self.non_integer(f64::NAN),
            _ if self.eat_literal(b"Infinity") => self.non_integer(f64::INFINITY),
            _ => self.fail("expected a json value"),
        }
    }

    fn non_integer(&self, value: f64) -> Result<Node<'a>, CanonicalError> {
        match self.mode {
            Mode::Strict => err("receipts must not contain non-integer numbers"),
            Mode::Document => Ok(Node::Float(value)),
        }
    }

    fn parse_number(&mut self) -> Result<Node<'a>, CanonicalError> {
        let start = self.pos;
        self.eat(b'-');
        match self.next_byte() {
            Some(b'0') => {}
            Some(b'1'..=b'9') => self.skip_digits(),
            _ => return self.fail("invalid number"),
        }
        let mut integral = true;
        if self.eat(b'.') {
            integral = false;
            if !matches!(self.peek(), Some(b'0'..=b'9')) {
                return self.fail("invalid number");
            }
            self.skip_digits();
        }
        if let Some(b'e' | b'E') = self.peek() {
            integral = false;
            self.pos += 1;
            if let Some(b'+' | b'-') = self.peek() {
                self.pos += 1;
            }
            if !matches!(self.peek(), Some(b'0'..=b'9')) {
                return self.fail("invalid number");
            }
            self.skip_digits();
        }
        let token = self.source.get(start..self.pos).unwrap_or_default();
        if !integral {
            return self.non_integer(token.parse::<f64>().unwrap_or(f64::NAN));
        }
        // `-0` is the integer 0, as in the reference.
        match (token.parse::<i64>(), self.mode) {
            (Ok(value), _) if value.unsigned_abs() <= MAX_SAFE_INTEGER.unsigned_abs() => Ok(Node::Int(value)),
            (_, Mode::Strict) => err(format!("integer `{token}` exceeds the safe range ±(2^53-1)")),
            (Ok(value), Mode::Document) => Ok(Node::Int(value)),
            (Err(_), Mode::Document) => Ok(Node::Float(token.parse::<f64>().unwrap_or(f64::NAN))),
        }
    }

    fn skip_digits(&mut self) {
        while let Some(b'0'..=b'9') = self.peek() {
            self.pos += 1;
        }
    }

    /// Parses the rest of a string whose opening quote was consumed; borrows unless it has escapes.
    fn parse_string_body(&mut self) -> Result<Cow<'a, str>, CanonicalError> {
        let mut owned: Option<String> = None;
        loop {
            let start = self.pos;
            let Some(offset) = find_special(&self.text[start..]) else {
                self.pos = self.text.len();
                return self.fail("unterminated string");
            };
            let end = start + offset;
            // Cut at an ASCII byte of valid UTF-8, so the slice is whole characters.
            let run = self.source.get(start..end).unwrap_or_default();
            self.pos = end + 1;
            match self.text[end] {
                b'"' => {
                    return Ok(match owned {
                        Some(mut text) => {
                            text.push_str(run);
                            Cow::Owned(text)
                        }
                        None => Cow::Borrowed(run),
                    })
                }
                b'\\' => {
                    let text = owned.get_or_insert_with(|| String::with_capacity(offset + 16));
                    text.push_str(run);
                    let ch = self.parse_escape()?;
                    text.push(ch);
                }
                _ => return self.fail("invalid control character in string"),
            }
        }
    }

    fn parse_escape(&mut self) -> Result<char, CanonicalError> {
        Ok(match self.next_byte() {
            Some(b'"') => '"',
            Some(b'\\') => '\\',
            Some(b'/') => '/',
            Some(b'b') => '\u{8}',
            Some(b'f') => '\u{c}',
            Some(b'n') => '\n',
            Some(b'r') => '\r',
            Some(b't') => '\t',
            Some(b'u') => return self.parse_unicode_escape(),
            _ => return self.fail("invalid escape in string"),
        })
    }

    fn parse_unicode_escape(&mut self) -> Result<char, CanonicalError> {
        let unit = self.hex4()?;
        let code = match unit {
            0xD800..=0xDBFF if self.text[self.pos..].starts_with(b"\\u") => {
                let save = self.pos;
                self.pos += 2;
                let low = self.hex4()?;
                if (0xDC00..=0xDFFF).contains(&low) {
                    Some(0x10000 + ((u32::from(unit) - 0xD800) << 10) + (u32::from(low) - 0xDC00))
                } else {
                    // Not a pair: the high surrogate stands alone and the next escape is read anew.
                    self.pos = save;
                    None
                }
            }
            0xD800..=0xDFFF => None,
            _ => Some(u32::from(unit)),
        };
        match (code.and_then(char::from_u32), self.mode) {
            (Some(ch), _) => Ok(ch),
            (None, Mode::Strict) => err("string contains an unpaired unicode surrogate"),
            (None, Mode::Document) => Ok(char::REPLACEMENT_CHARACTER),
        }
    }

    fn hex4(&mut self) -> Result<u16, CanonicalError> {
        let digits = self.source.get(self.pos..self.pos + 4).unwrap_or_default();
        if digits.len() != 4 || !digits.bytes().all(|b| b.is_ascii_hexdigit()) {
            return self.fail("invalid \\uXXXX escape");
        }
        self.pos += 4;
        u16::from_str_radix(digits, 16).or_else(|_| self.fail("invalid \\uXXXX escape"))
    }
}

/// A stand-in number for lenient documents (see [`parse_document`]).
fn lenient_float(value: f64) -> Number {
    let finite = if value.is_nan() || value == f64::INFINITY {
        f64::MAX
    } else if value == f64::NEG_INFINITY {
        f64::MIN
    } else {
        value
    };
    Number::from_f64(finite).unwrap_or_else(|| Number::from(0))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn canonical(value: &Value) -> String {
        String::from_utf8(to_canonical_vec(value).unwrap_or_default()).unwrap_or_default()
    }

    #[test]
    fn sorts_keys_by_utf16_code_units() {
        let value = json!({"｡_key": 1, "😀_key": 2, "b": 3, "a": 4, "é": 5, "": 6});
        assert_eq!(canonical(&value), "{\"\":6,\"a\":4,\"b\":3,\"é\":5,\"😀_key\":2,\"｡_key\":1}");
    }

    #[test]
    fn utf16_cmp_agrees_with_encode_utf16_on_mixed_text() {
        let samples = [
            "",
            "a",
            "ab",
            "\u{7f}",
            "é",
            "\u{d7ff}",
            "\u{e000}",
            "\u{ff61}",
            "\u{ffff}",
            "😀",
            "𝄞x",
            "a😀",
            "a\u{ff61}",
            "\u{10ffff}",
        ];
        for a in samples {
            for b in samples {
                assert_eq!(utf16_cmp(a, b), a.encode_utf16().cmp(b.encode_utf16()), "{a:?} vs {b:?}");
            }
        }
    }

    #[test]
    fn escapes_only_quote_backslash_and_controls() {
        let value = json!("q\" b\\ n\n t\t nul\u{0} del\u{7f} ls\u{2028} slash/");
        assert_eq!(canonical(&value), "\"q\\\" b\\\\ n\\u000a t\\u0009 nul\\u0000 del\u{7f} ls\u{2028} slash/\"");
    }

    #[test]
    fn rejects_floats_and_unsafe_integers_when_writing() {
        assert!(to_canonical_vec(&json!({"a": 1.0})).is_err());
        assert!(to_canonical_vec(&json!([0.5])).is_err());
        assert!(to_canonical_vec(&json!(MAX_SAFE_INTEGER + 1)).is_err());
        assert!(to_canonical_vec(&json!(-MAX_SAFE_INTEGER - 1)).is_err());
        assert!(to_canonical_vec(&json!(u64::MAX)).is_err());
        assert_eq!(
            canonical(&json!([MAX_SAFE_INTEGER, -MAX_SAFE_INTEGER, 0, -7])),
            "[9007199254740991,-9007199254740991,0,-7]"
        );
    }

    fn nested(depth: usize) -> String {
        format!("{}1{}", "[".repeat(depth - 1), "]".repeat(depth - 1))
    }

    #[test]
    fn depth_limit_is_32_with_root_at_one() {
        assert!(parse_strict(nested(32).as_bytes()).is_ok());
        let too_deep = parse_strict(nested(33).as_bytes());
        assert!(too_deep.is_err_and(|e| e.0.contains("max depth")));
        let mut value = json!(1);
        for _ in 0..31 {
            value = json!([value]);
        }
        assert!(to_canonical_vec(&value).is_ok());
        assert!(to_canonical_vec(&json!([value])).is_err());
    }

    #[test]
    fn hostile_nesting_fails_without_overflowing_the_stack() {
        let deep = "[".repeat(1_000_000);
        assert!(parse_strict(deep.as_bytes()).is_err());
        assert!(parse_document(deep.as_bytes()).is_err());
    }

    #[test]
    fn node_limit_counts_every_value() {
        let ok = format!("[{}]", vec!["0"; MAX_NODES - 1].join(","));
        assert!(parse_strict(ok.as_bytes()).is_ok());
        let over = format!("[{}]", vec!["0"; MAX_NODES].join(","));
        assert!(parse_strict(over.as_bytes()).is_err_and(|e| e.0.contains("node count")));
        assert!(parse_document(over.as_bytes()).is_ok());
    }

    #[test]
    fn strict_parse_rejects_what_the_reference_rejects() {
        let cases: &[&[u8]] = &[
            b"{\"a\":1,\"a\":2}",
            b"{\"a\":1.0}",
            b"[1e3]",
            b"[1E+3]",
            b"[9007199254740992]",
            b"[-9007199254740992]",
            b"[123456789012345678901234567890]",
            b"\"\\ud800\"",
            b"\"\\udc00\\ud800\"",
            b"[NaN]",
            b"[-Infinity]",
            b"{} x",
            b"{}{}",
            b"\xef\xbb\xbf{}",
            b"\"\xff\"",
            b"[01]",
            b"[1.]",
            b"[-]",
            b"\"tab\there\"",
            b"\"\\x\"",
            b"{\"a\" 1}",
            b"[1,]",
            b"",
        ];
        for case in cases {
            assert!(parse_strict(case).is_err(), "{}", String::from_utf8_lossy(case));
        }
    }

    #[test]
    fn strict_parse_accepts_plain_json() {
        let value = parse_strict(b" {\"a\": [1, -0, true, null, \"x\\u00e9\\ud83d\\ude00\\n\\/\"], \"b\": {}} ").ok();
        assert_eq!(value, Some(json!({"a": [1, 0, true, null, "xé😀\n/"], "b": {}})));
        assert_eq!(parse_strict(b"9007199254740991").ok(), Some(json!(MAX_SAFE_INTEGER)));
    }

    #[test]
    fn document_parse_keeps_non_receipt_numbers_and_still_rejects_duplicates() {
        let value =
            parse_document(b"{\"f\": 1.5, \"n\": NaN, \"big\": 123456789012345678901234567890, \"s\": \"\\ud800\"}");
        let value = value.ok().unwrap_or_default();
        assert!(value["f"].is_f64() && value["n"].is_number() && value["big"].is_number());
        assert_eq!(value["s"], json!("\u{fffd}"));
        assert!(parse_document(b"{\"a\":1,\"a\":1}").is_err());
    }

    #[test]
    fn hashes_are_lowercase_hex() {
        assert_eq!(sha256_hex(b""), "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
        assert_eq!(canonical_sha256_hex(&json!({"b": 1, "a": 2})).ok(), Some(sha256_hex(b"{\"a\":2,\"b\":1}")));
    }
}
