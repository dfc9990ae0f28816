//! Go's JSON quirks: decoding (first value only, case-insensitive keys, last duplicate
//! wins, `null` as zero value) against a nested schema, and Go's escaping, which must read
//! back as the same strings and never leave `<`, `>`, `&`, U+2028 or U+2029 raw.
#![no_main]

use libfuzzer_sys::fuzz_target;
use lk_jwt_service::go_json::{Schema, decode, string_array, string_object_line};
use serde::Deserialize;

static INNER: Schema = Schema {
    fields: &[("text", None), ("number", None)],
};
static OUTER: Schema = Schema {
    fields: &[("name", None), ("inner", Some(&INNER)), ("flag", None)],
};

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Inner {
    text: Option<String>,
    number: Option<i64>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Outer {
    name: Option<String>,
    inner: Option<Inner>,
    flag: Option<bool>,
}

fuzz_target!(|data: &[u8]| {
    if let Ok(outer) = decode::<Outer>(data, &OUTER) {
        let inner = outer.inner.map(|inner| (inner.text, inner.number));
        std::hint::black_box((outer.name, outer.flag, inner));
    }
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let mut middle = text.len() / 2;
    while !text.is_char_boundary(middle) {
        middle -= 1;
    }
    let (first, second) = text.split_at(middle);
    let array = string_array(&[first, second]);
    let object = string_object_line(&[(first, second)]);
    for written in [&array, &object] {
        assert!(
            !written.contains(['<', '>', '&', '\u{2028}', '\u{2029}']),
            "{written}"
        );
    }
    let read: Vec<String> = serde_json::from_str(&array).expect("string_array writes JSON");
    assert_eq!(read, [first, second]);
    let read: serde_json::Map<String, serde_json::Value> =
        serde_json::from_str(&object).expect("string_object_line writes JSON");
    assert_eq!(read.get(first).and_then(|v| v.as_str()), Some(second));
});
