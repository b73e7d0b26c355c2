//! Answers written straight as JSON text, for the routes whose answers are large arrays of
//! small items: building a `serde_json::Value` tree first costs an allocation or more per
//! number, string and array (with `preserve_order`, a hash table per object), and then as
//! much again to free it, which is what most of those routes' time went to. The spelling is
//! serde_json's own (its serialiser writes each string and number), so an answer is the same
//! bytes as the tree's.

use bytes::Bytes;
use serde::Serialize;

/// A JSON answer being written.
pub struct JsonOut(Vec<u8>);

impl JsonOut {
    pub fn with_capacity(n: usize) -> JsonOut {
        JsonOut(Vec::with_capacity(n))
    }

    /// Punctuation or JSON text already spelled as serde_json spells it.
    pub fn raw(&mut self, s: &[u8]) -> &mut Self {
        self.0.extend_from_slice(s);
        self
    }

    /// A string, a number or any serialisable value, as serde_json writes it (a float that is
    /// not finite as `null`, as `json!` would make it).
    pub fn value(&mut self, v: &(impl Serialize + ?Sized)) -> &mut Self {
        // Writing to a Vec cannot fail, and these values (strings, numbers, `Value`s) always
        // serialise.
        let _ = serde_json::to_writer(&mut self.0, v);
        self
    }

    /// `,` unless this is the first item of its array (`first` is then cleared).
    pub fn comma(&mut self, first: &mut bool) -> &mut Self {
        if !std::mem::take(first) {
            self.0.push(b',');
        }
        self
    }

    /// The array of `items`, each already spelled as JSON (`capacity`: about their length).
    pub fn array_of<'a>(items: impl Iterator<Item = &'a [u8]>, capacity: usize) -> Bytes {
        let mut out = JsonOut::with_capacity(capacity + 2);
        out.raw(b"[");
        let mut first = true;
        for item in items {
            out.comma(&mut first).raw(item);
        }
        out.raw(b"]");
        out.done()
    }

    pub fn done(self) -> Bytes {
        Bytes::from(self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn spelled_as_the_value_tree_would_be() {
        let mut out = JsonOut::with_capacity(64);
        out.raw(b"[");
        let mut first = true;
        for (label, score) in [
            ("a \"quoted\"\nlabel", 115.0),
            ("é", 0.5),
            ("nan", f64::NAN),
        ] {
            out.comma(&mut first).raw(b"[").value(label).raw(b",");
            out.value(&score).raw(b"]");
        }
        out.comma(&mut first).value(&1795176000i64).raw(b"]");
        let tree = json!([
            ["a \"quoted\"\nlabel", 115.0],
            ["é", 0.5],
            ["nan", f64::NAN],
            1795176000i64
        ]);
        assert_eq!(out.done(), serde_json::to_vec(&tree).expect("json"));
    }

    #[test]
    fn an_array_of_items_already_spelled() {
        let parts: [&[u8]; 3] = [b"{\"a\":1}", b"2", b"\"x\""];
        assert_eq!(
            &JsonOut::array_of(parts.into_iter(), 16)[..],
            b"[{\"a\":1},2,\"x\"]"
        );
        assert_eq!(&JsonOut::array_of(std::iter::empty(), 0)[..], b"[]");
    }
}
