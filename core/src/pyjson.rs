//! JSON text exactly as Python's `json.dumps` writes it with default options.
//!
//! Sorted-set members are identities: `{"a": 1}` and `{"a":1}` are two different members to
//! Redis. A dashboard that shares a Redis with the original (or replaces it on the same data)
//! must therefore spell every JSON member and payload byte for byte as the original did:
//! `", "` and `": "` separators, every non-ASCII character as a lower-case `\uXXXX` escape
//! (astral characters as surrogate pairs), floats in Python's `repr`, and keys in insertion
//! order. Everything that ends up in Redis as JSON is written by this module.

use serde_json::{Map, Number, Value};
use std::fmt::Write as _;

/// Serialises `value` the way Python's `json.dumps(value)` would after `json.loads` of the same
/// document.
pub fn to_string(value: &Value) -> String {
    let mut out = String::with_capacity(128);
    write_value(&mut out, value);
    out
}

/// Appends the Python spelling of `value` to `out`; the building block of [`to_string`], exposed
/// so callers can splice a document into a larger one without an intermediate `Value`.
pub fn write_value(out: &mut String, value: &Value) {
    write_value_in::<false>(out, value);
}

/// Writers are generic over `NESTED`: whether the text being written is itself the content of
/// a JSON string literal (the live log publishes a document as a string inside another). Only
/// quotes and escape sequences differ between the two spellings, so writing the nested form
/// directly costs the same as the plain one, where escaping the plain text afterwards cost a
/// second pass over every byte.
fn write_value_in<const NESTED: bool>(out: &mut String, value: &Value) {
    match value {
        Value::Null => out.push_str("null"),
        Value::Bool(true) => out.push_str("true"),
        Value::Bool(false) => out.push_str("false"),
        Value::Number(n) => write_number(out, n),
        Value::String(s) => write_str_in::<NESTED>(out, s),
        Value::Array(items) => {
            out.push('[');
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push_str(", ");
                }
                write_value_in::<NESTED>(out, item);
            }
            out.push(']');
        }
        Value::Object(map) => write_object_overlay_in::<NESTED>(out, map, &[]),
    }
}

/// Numbers keep Python's distinction between `int` (printed exactly, whatever its size) and
/// `float` (printed with `repr`). The `arbitrary_precision` feature gives us the source text, so
/// an integer larger than 64 bits survives as Python's would.
fn write_number(out: &mut String, n: &Number) {
    let text = n.as_str();
    let is_int = !text.contains(['.', 'e', 'E']);
    if is_int {
        // JSON forbids leading zeros; only "-0" differs from Python's int repr.
        if text == "-0" {
            out.push('0');
        } else {
            out.push_str(text);
        }
    } else {
        match text.parse::<f64>() {
            Ok(f) => out.push_str(&float_repr(f)),
            Err(_) => out.push_str(text),
        }
    }
}

/// Writes `base` with `over` applied as Python dict assignments would (an overridden key keeps
/// its position with the new value, new keys follow in order), spelled as the content of a
/// JSON string literal: what `json.dumps(json.dumps(doc))` has between its outer quotes. Lets
/// a handler publish "the message with this attribute in it" without copying the message.
pub fn write_object_overlay_nested(
    out: &mut String,
    base: &Map<String, Value>,
    over: &[(&str, &Value)],
) {
    write_object_overlay_in::<true>(out, base, over);
}

/// [`write_value`] spelled as the content of a JSON string literal.
pub fn write_value_nested(out: &mut String, value: &Value) {
    write_value_in::<true>(out, value);
}

fn write_object_overlay_in<const NESTED: bool>(
    out: &mut String,
    base: &Map<String, Value>,
    over: &[(&str, &Value)],
) {
    out.push('{');
    let mut first = true;
    let mut sep = |out: &mut String| {
        if !first {
            out.push_str(", ");
        }
        first = false;
    };
    for (k, v) in base {
        sep(out);
        write_str_in::<NESTED>(out, k);
        out.push_str(": ");
        let v = over
            .iter()
            .find(|(ok, _)| *ok == k)
            .map_or(v, |(_, ov)| *ov);
        write_value_in::<NESTED>(out, v);
    }
    for (k, v) in over {
        if !base.contains_key(*k) {
            sep(out);
            write_str_in::<NESTED>(out, k);
            out.push_str(": ");
            write_value_in::<NESTED>(out, v);
        }
    }
    out.push('}');
}

/// Python's `repr(float)`: the shortest digits that round-trip, in positional notation when the
/// decimal exponent is in [-4, 16), otherwise `d.ddde±XX`; always with a `.0` or an exponent so it
/// reads back as a float. `json.dumps` writes non-finite values as `NaN`/`Infinity`.
pub fn float_repr(f: f64) -> String {
    if f.is_nan() {
        return "NaN".into();
    }
    if f.is_infinite() {
        return if f > 0.0 { "Infinity" } else { "-Infinity" }.into();
    }
    if f == 0.0 {
        return if f.is_sign_negative() { "-0.0" } else { "0.0" }.into();
    }
    // `{:e}` gives the shortest round-trip digits in scientific form, e.g. "1.2345e-5".
    let sci = format!("{:e}", f.abs());
    let (mantissa, exp) = match sci.split_once('e') {
        Some((m, e)) => (m, e.parse::<i32>().unwrap_or(0)),
        None => (sci.as_str(), 0),
    };
    let digits: String = mantissa.chars().filter(|c| *c != '.').collect();
    let sign = if f < 0.0 { "-" } else { "" };
    let mut out = String::from(sign);
    if (-4..16).contains(&exp) {
        let point = exp + 1; // position of the decimal point within the digits
        if point <= 0 {
            out.push_str("0.");
            for _ in 0..(-point) {
                out.push('0');
            }
            out.push_str(&digits);
        } else if point as usize >= digits.len() {
            out.push_str(&digits);
            for _ in 0..(point as usize - digits.len()) {
                out.push('0');
            }
            out.push_str(".0");
        } else {
            let (a, b) = digits.split_at(point as usize);
            out.push_str(a);
            out.push('.');
            out.push_str(b);
        }
    } else {
        let (first, rest) = digits.split_at(1);
        out.push_str(first);
        if !rest.is_empty() {
            out.push('.');
            out.push_str(rest);
        }
        let _ = write!(out, "e{}{:02}", if exp < 0 { '-' } else { '+' }, exp.abs());
    }
    out
}

/// Bytes that `ensure_ascii` JSON cannot copy as they are: control characters, `"`, `\\`, DEL
/// and every byte of a multi-byte UTF-8 character.
const NEEDS_ESCAPE: [bool; 256] = {
    let mut t = [true; 256];
    let mut b = 0x20;
    while b < 0x7f {
        t[b] = false;
        b += 1;
    }
    t[b'"' as usize] = true;
    t[b'\\' as usize] = true;
    t
};

/// A JSON string literal with Python's `ensure_ascii=True` escaping: `"` and `\`, the short
/// escapes `\n \r \t \b \f`, and every other character outside printable ASCII (including DEL) as
/// `\uXXXX` with lower-case hex.
pub fn write_str(out: &mut String, s: &str) {
    write_str_in::<false>(out, s);
}

fn write_str_in<const NESTED: bool>(out: &mut String, s: &str) {
    // In the nested spelling every quote and backslash written is itself escaped.
    let (quote, backslash) = if NESTED {
        ("\\\"", "\\\\")
    } else {
        ("\"", "\\")
    };
    out.reserve(s.len() + 2 * quote.len());
    out.push_str(quote);
    let bytes = s.as_bytes();
    let mut start = 0;
    let mut i = 0;
    while i < bytes.len() {
        let b = bytes[i];
        // Printable ASCII other than the quote and the backslash is copied in runs.
        if !NEEDS_ESCAPE[b as usize] {
            i += 1;
            continue;
        }
        out.push_str(&s[start..i]);
        out.push_str(backslash);
        if b < 0x80 {
            match b {
                b'"' => out.push_str(quote),
                b'\\' => out.push_str(backslash),
                b'\n' => out.push('n'),
                b'\r' => out.push('r'),
                b'\t' => out.push('t'),
                0x08 => out.push('b'),
                0x0c => out.push('f'),
                _ => {
                    let _ = write!(out, "u{:04x}", b);
                }
            }
            i += 1;
        } else {
            // A multi-byte character: escape it as UTF-16 code units.
            let c = s[i..].chars().next().unwrap_or('\u{fffd}');
            let mut buf = [0u16; 2];
            for (n, unit) in c.encode_utf16(&mut buf).iter().enumerate() {
                if n > 0 {
                    out.push_str(backslash);
                }
                let _ = write!(out, "u{:04x}", unit);
            }
            i += c.len_utf8();
        }
        start = i;
    }
    out.push_str(&s[start..]);
    out.push_str(quote);
}

/// Convenience for building payloads in a fixed key order.
pub fn object<I, K>(pairs: I) -> Value
where
    I: IntoIterator<Item = (K, Value)>,
    K: Into<String>,
{
    let mut map = Map::new();
    for (k, v) in pairs {
        map.insert(k.into(), v);
    }
    Value::Object(map)
}

/// A float as a JSON number value, carried so that [`to_string`] prints it with Python's repr.
pub fn float(f: f64) -> Value {
    match Number::from_f64(f) {
        Some(n) => Value::Number(n),
        None => Value::Null,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn float_repr_matches_python() {
        let cases = [
            (0.5, "0.5"),
            (2.0, "2.0"),
            (37.751, "37.751"),
            (-97.822, "-97.822"),
            (1e16, "1e+16"),
            (1234567890123456.0, "1234567890123456.0"),
            (0.0001, "0.0001"),
            (0.00001, "1e-05"),
            (1.5e-7, "1.5e-07"),
            (1795176000.0, "1795176000.0"),
            (0.1 + 0.2, "0.30000000000000004"),
            (-0.0, "-0.0"),
            (1e300, "1e+300"),
        ];
        for (f, want) in cases {
            assert_eq!(float_repr(f), want, "repr of {f:e}");
        }
    }

    #[test]
    fn dumps_like_python() {
        let v: Value = serde_json::from_str(
            r#"{"b": 1, "a": [1.50, "é/😀", null, true, "\u007f\u0001"], "n": -0, "big": 123456789012345678901234567890}"#,
        )
        .expect("valid json");
        assert_eq!(
            to_string(&v),
            r#"{"b": 1, "a": [1.5, "\u00e9/\ud83d\ude00", null, true, "\u007f\u0001"], "n": 0, "big": 123456789012345678901234567890}"#
        );
    }

    #[test]
    fn nested_spelling_is_the_plain_text_as_a_string() {
        let v: Value = serde_json::from_str(
            r#"{"a": "q\"uote\\ \u00e9\n\t\u0001 \ud83d\ude00", "b": [1, 2.50, null, {"c": true}], "d": "\u007f"}"#,
        )
        .expect("json");
        let Value::Object(map) = &v else {
            panic!("an object")
        };
        let extra = Value::String("x\"y".into());
        for over in [&[][..], &[("b", &extra), ("new", &extra)][..]] {
            let mut plain = String::new();
            write_object_overlay_in::<false>(&mut plain, map, over);
            let mut as_string = String::new();
            write_str(&mut as_string, &plain);
            let mut nested = String::from("\"");
            write_object_overlay_nested(&mut nested, map, over);
            nested.push('"');
            assert_eq!(nested, as_string);
        }
        let mut nested = String::new();
        write_value_nested(&mut nested, &v);
        assert_eq!(format!("\"{nested}\""), {
            let mut s = String::new();
            write_str(&mut s, &to_string(&v));
            s
        });
    }

    #[test]
    fn duplicate_keys_keep_first_position_last_value() {
        let v: Value = serde_json::from_str(r#"{"a": 1, "b": 2, "a": 3}"#).expect("valid json");
        assert_eq!(to_string(&v), r#"{"a": 3, "b": 2}"#);
    }
}
