//! Python `configparser` semantics over the `configparser` crate: option names are
//! case-insensitive, values may continue on indented lines (the original's `misp_instances`
//! does), `#`/`;` start comment lines only (Python has no inline comments by default, and a
//! colour such as `#ff0000` is a value).

use configparser::ini::{Ini as Inner, IniDefault};

pub struct Ini {
    inner: Inner,
}

impl Ini {
    pub fn empty() -> Ini {
        Ini {
            inner: Self::configured(),
        }
    }

    fn configured() -> Inner {
        let mut d: IniDefault = Inner::new().defaults();
        d.enable_inline_comments = false;
        d.multiline = true;
        d.case_sensitive = false;
        Inner::new_from_defaults(d)
    }

    pub fn parse(text: &str) -> Result<Ini, String> {
        let mut inner = Self::configured();
        inner.read(text.to_string())?;
        Ok(Ini { inner })
    }

    /// The value, trimmed; `None` when absent or empty.
    pub fn get(&self, section: &str, option: &str) -> Option<String> {
        self.inner
            .get(section, option)
            .map(|v| v.trim().to_string())
            .filter(|v| !v.is_empty())
    }

    /// Every section with its option names.
    pub fn sections(&self) -> Vec<(String, Vec<String>)> {
        let mut out: Vec<(String, Vec<String>)> = self
            .inner
            .get_map_ref()
            .iter()
            .filter(|(s, opts)| !(s.as_str() == "default" && opts.is_empty()))
            .map(|(s, opts)| {
                let mut o: Vec<String> = opts.keys().cloned().collect();
                o.sort();
                (s.clone(), o)
            })
            .collect();
        out.sort();
        out
    }
}
