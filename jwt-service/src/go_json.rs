//! JSON the way Go's `encoding/json` reads and writes it, where clients can tell.
//!
//! Reading (upstream decodes with `DisallowUnknownFields`): only the first JSON value
//! counts and trailing bytes are ignored; object keys match field names exactly or else
//! case-insensitively; the last duplicate wins; `null` leaves a field (or the whole
//! body) at its zero value; unknown fields at any depth and wrong types are errors.
//! [`decode`] applies these rules to a [`serde_json::Value`] against a [`Schema`], then
//! lets serde do the typed part.
//!
//! Writing: Go escapes `<`, `>`, `&`, U+2028 and U+2029 in strings. Hashes of ids
//! ([`crate::livekit::alias`]) and response bodies use [`push_string`] so they match
//! upstream byte for byte.

use serde::de::DeserializeOwned;
use serde_json::{Map, Value};

/// The field names of one JSON object; `Some` marks a nested object with its own schema.
#[derive(Debug)]
pub struct Schema {
    /// `(name, nested)` for each field.
    pub fields: &'static [(&'static str, Option<&'static Schema>)],
}

/// Why a body is not acceptable JSON (the detail is for logs, clients get M_NOT_JSON).
/// Like Go's messages it names the place and the kind of value, never the value: a body
/// carries an OpenID access token, and this message is logged.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct DecodeError(String);

/// Longest field name quoted in a [`DecodeError`].
const MAX_QUOTED_KEY: usize = 64;

/// Decodes the first JSON value of `body` into `T` with Go's rules (module docs). `T`
/// and the structs inside it must deny unknown fields, as the request bodies do.
pub fn decode<T: DeserializeOwned>(body: &[u8], schema: &Schema) -> Result<T, DecodeError> {
    // The bodies real clients send (one object, exact field names, no duplicates, nothing
    // after it) mean the same to strict serde as to Go, and strict serde reads them in a
    // third of the instructions. Anything serde refuses takes the Go path below. Without
    // a `[`, serde cannot fill a struct from an array, which Go would refuse.
    if body.trim_ascii_start().first() == Some(&b'{')
        && !body.contains(&b'[')
        && let Ok(value) = serde_json::from_slice(body)
    {
        return Ok(value);
    }
    // Syntax errors name a line and column, never the text there.
    let first = serde_json::Deserializer::from_slice(body)
        .into_iter::<Value>()
        .next()
        .ok_or_else(|| DecodeError("empty body".into()))?
        .map_err(|e| DecodeError(e.to_string()))?;
    let normalised = normalise(first, schema, "")?;
    serde_path_to_error::deserialize(&normalised).map_err(|e| {
        let path = e.path().to_string();
        let kind = value_at(&normalised, e.path()).map_or("value", kind);
        DecodeError(format!("cannot unmarshal {kind} into field {path}"))
    })
}

/// Renames keys to their field names, rejects unknown keys and non-objects. `path` is
/// where `value` sits (`""` for the body, else `field.` prefixes), for messages.
fn normalise(value: Value, schema: &Schema, path: &str) -> Result<Value, DecodeError> {
    let object = match value {
        Value::Null => return Ok(Value::Object(Map::new())),
        Value::Object(object) => object,
        other => {
            let place = match path.strip_suffix('.') {
                Some(field) => format!("field {field}"),
                None => "the body".to_owned(),
            };
            return Err(DecodeError(format!(
                "cannot unmarshal {} into {place}, an object",
                kind(&other)
            )));
        }
    };
    let mut out = Map::new();
    for (key, value) in object {
        let (name, nested) = schema
            .fields
            .iter()
            .find(|(name, _)| *name == key)
            .or_else(|| schema.fields.iter().find(|(name, _)| fold_eq(name, &key)))
            .ok_or_else(|| {
                let quoted: String = key.chars().take(MAX_QUOTED_KEY).collect();
                DecodeError(format!("unknown field {path}{quoted:?}"))
            })?;
        let value = match (nested, value) {
            (_, Value::Null) => Value::Null,
            (Some(nested), value) => normalise(value, nested, &format!("{path}{name}."))?,
            (None, value) => value,
        };
        out.insert((*name).to_owned(), value);
    }
    Ok(Value::Object(out))
}

/// The JSON kind of `value`, as Go's messages name it.
fn kind(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "bool",
        Value::Number(_) => "number",
        Value::String(_) => "string",
        Value::Array(_) => "array",
        Value::Object(_) => "object",
    }
}

/// The value at `path` inside `root`, if the path leads anywhere.
fn value_at<'a>(root: &'a Value, path: &serde_path_to_error::Path) -> Option<&'a Value> {
    path.iter().try_fold(root, |value, segment| match segment {
        serde_path_to_error::Segment::Map { key } => value.get(key),
        serde_path_to_error::Segment::Seq { index } => value.get(index),
        _ => None,
    })
}

/// Case-insensitive comparison as Go's field matching does it (simple Unicode folding,
/// including its Kelvin sign and long s special cases).
fn fold_eq(a: &str, b: &str) -> bool {
    let fold = |c: char| match c {
        '\u{212a}' => 'k',
        '\u{17f}' => 's',
        c => c.to_lowercase().next().unwrap_or(c),
    };
    a.chars().map(fold).eq(b.chars().map(fold))
}

/// A compact JSON array of strings, escaped exactly like Go's `json.Marshal`.
pub fn string_array(list: &[&str]) -> String {
    let mut out = String::from("[");
    for (i, item) in list.iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        push_string(&mut out, item);
    }
    out.push(']');
    out
}

/// A JSON object of string values (in the given order) with a trailing newline, as Go's
/// `json.NewEncoder(w).Encode` writes a response body.
pub fn string_object_line(fields: &[(&str, &str)]) -> String {
    let mut out = String::from("{");
    for (i, (key, value)) in fields.iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        push_string(&mut out, key);
        out.push(':');
        push_string(&mut out, value);
    }
    out.push_str("}\n");
    out
}

/// Bytes that may start a character [`push_string`] escapes: every such character is
/// ASCII or starts with 0xE2 (U+2028, U+2029), so a byte scan finds them, each on a char
/// boundary. A table, because the scan runs over every byte of every token we send.
static ESCAPE_CANDIDATE: [bool; 256] = {
    let mut table = [false; 256];
    let mut b = 0;
    while b < 0x20 {
        table[b] = true;
        b += 1;
    }
    table[b'"' as usize] = true;
    table[b'\\' as usize] = true;
    table[b'<' as usize] = true;
    table[b'>' as usize] = true;
    table[b'&' as usize] = true;
    table[0xe2] = true;
    table
};

/// Appends `s` as a JSON string, escaped like Go's `encodeState.string` with HTML
/// escaping on (the `json.Marshal` and `Encoder` default). Runs of characters that need
/// no escape (all of a JWT) are copied whole.
pub fn push_string(out: &mut String, s: &str) {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    out.reserve(s.len() + 2);
    out.push('"');
    let mut rest = s;
    while let Some(at) = rest.bytes().position(|b| ESCAPE_CANDIDATE[usize::from(b)]) {
        out.push_str(&rest[..at]);
        let Some(c) = rest[at..].chars().next() else {
            break;
        };
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\u{8}' => out.push_str("\\b"),
            '\u{c}' => out.push_str("\\f"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            '\u{2028}' => out.push_str("\\u2028"),
            '\u{2029}' => out.push_str("\\u2029"),
            '<' | '>' | '&' | '\u{0}'..='\u{1f}' => {
                let b = c as u8;
                out.push_str("\\u00");
                out.push(char::from(HEX[usize::from(b >> 4)]));
                out.push(char::from(HEX[usize::from(b & 0xf)]));
            }
            // Another character starting with 0xE2: copied as is.
            other => out.push(other),
        }
        rest = &rest[at + c.len_utf8()..];
    }
    out.push_str(rest);
    out.push('"');
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde::Deserialize;

    static INNER: Schema = Schema {
        fields: &[("token", None), ("n", None)],
    };
    static OUTER: Schema = Schema {
        fields: &[("room_id", None), ("inner", Some(&INNER))],
    };

    #[derive(Debug, Default, Deserialize, PartialEq)]
    #[serde(deny_unknown_fields)]
    struct Inner {
        token: Option<String>,
        n: Option<i64>,
    }

    #[derive(Debug, Default, Deserialize, PartialEq)]
    #[serde(deny_unknown_fields)]
    struct Outer {
        room_id: Option<String>,
        inner: Option<Inner>,
    }

    fn parse(body: &str) -> Result<Outer, DecodeError> {
        decode(body.as_bytes(), &OUTER)
    }

    #[test]
    fn go_decoding_quirks() {
        let full = parse(r#"{"room_id":"!r","inner":{"token":"t","n":5}}"#).unwrap();
        assert_eq!(full.room_id.as_deref(), Some("!r"));
        assert_eq!(full.inner.unwrap().n, Some(5));
        // Case-insensitive keys, including Go's folding specials.
        let folded = parse(r#"{"ROOM_ID":"a","Inner":{"TO\u212aEN":"t"}}"#).unwrap();
        assert_eq!(folded.room_id.as_deref(), Some("a"));
        assert_eq!(folded.inner.unwrap().token.as_deref(), Some("t"));
        // The last duplicate wins, across spellings too.
        assert_eq!(
            parse(r#"{"room_id":"a","ROOM_ID":"b"}"#)
                .unwrap()
                .room_id
                .as_deref(),
            Some("b")
        );
        // Only the first value counts.
        assert_eq!(
            parse(r#"{"room_id":"a"} trailing garbage"#)
                .unwrap()
                .room_id
                .as_deref(),
            Some("a")
        );
        // null is the zero value, for the body and for fields.
        assert_eq!(parse("null").unwrap(), Outer::default());
        assert_eq!(
            parse(r#"{"room_id":null,"inner":null}"#).unwrap(),
            Outer::default()
        );
    }

    #[test]
    fn go_decoding_errors() {
        for bad in [
            "",
            "   ",
            "{",
            "[]",
            r#""text""#,
            "42",
            r#"{"unknown":1}"#,
            r#"{"inner":{"unknown":1}}"#,
            r#"{"inner":["t",1]}"#,
            r#"["!r",{"token":"t","n":1}]"#,
            r#"{"room_id":"!r","inner":["t",1]}"#,
            r#"{"inner":"t"}"#,
            r#"{"room_id":5}"#,
            r#"{"inner":{"n":"5"}}"#,
            r#"{"inner":{"n":5.5}}"#,
            r#"{"inner":{"n":5.0}}"#,
            r#"{"inner":{"n":1e3}}"#,
            r#"{"inner":{"n":99999999999999999999}}"#,
        ] {
            assert!(parse(bad).is_err(), "{bad:?} should fail");
        }
    }

    #[test]
    fn errors_never_quote_values() {
        const SECRET: &str = "syt_c2VjcmV0_TOKENVALUE_0xBEEF";
        for body in [
            format!(r#"{{"inner":"{SECRET}"}}"#),
            format!(r#"{{"inner":["{SECRET}"]}}"#),
            format!(r#"{{"inner":{{"token":"x","n":"{SECRET}"}}}}"#),
            format!(r#"{{"inner":{{"token":["{SECRET}"]}}}}"#),
            format!(r#"{{"room_id":{{"{SECRET}":1}}}}"#),
            format!(r#"["{SECRET}"]"#),
            format!(r#""{SECRET}""#),
            format!(r#"{{"inner":{{"token":"{SECRET}","n":1e400}}}}"#),
            format!(r#"{{"inner":{{"token":"{SECRET}\x"}}}}"#),
            format!(r#"{{"inner":{{"token":"{SECRET}"#),
        ] {
            let error = parse(&body).expect_err(&body).to_string();
            assert!(!error.contains("c2VjcmV0"), "{body} -> {error}");
        }
        assert_eq!(
            parse(&format!(r#"{{"inner":"{SECRET}"}}"#)).unwrap_err().0,
            "cannot unmarshal string into field inner, an object"
        );
        assert_eq!(
            parse(&format!(r#"{{"inner":{{"n":"{SECRET}"}}}}"#))
                .unwrap_err()
                .0,
            "cannot unmarshal string into field inner.n"
        );
        assert_eq!(
            parse(r#"{"inner":{"nope":1}}"#).unwrap_err().0,
            r#"unknown field inner."nope""#
        );
        assert_eq!(
            parse("42").unwrap_err().0,
            "cannot unmarshal number into the body, an object"
        );
    }

    #[test]
    fn go_escaping() {
        assert_eq!(string_array(&[]), "[]");
        assert_eq!(string_array(&["a", "b"]), r#"["a","b"]"#);
        assert_eq!(
            string_array(&["<a&b>", "q\"\\"]),
            r#"["\u003ca\u0026b\u003e","q\"\\"]"#
        );
        assert_eq!(
            string_array(&["\n\r\t\u{8}\u{c}\u{1}\u{1f}\u{7f}"]),
            "[\"\\n\\r\\t\\b\\f\\u0001\\u001f\u{7f}\"]"
        );
        assert_eq!(
            string_array(&["\u{2028}\u{2029}é😀"]),
            "[\"\\u2028\\u2029é😀\"]"
        );
        // Other characters whose UTF-8 starts with 0xE2 stay as they are.
        assert_eq!(
            string_array(&["a\u{2027}\u{20ac}b"]),
            "[\"a\u{2027}\u{20ac}b\"]"
        );
        assert_eq!(
            string_object_line(&[("url", "wss://a/?x=1&y=2"), ("jwt", "e.f.g")]),
            "{\"url\":\"wss://a/?x=1\\u0026y=2\",\"jwt\":\"e.f.g\"}\n"
        );
    }
}
