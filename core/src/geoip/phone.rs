//! Country of a phone number, as the original's phone path determines it (spec §3.3).
//!
//! The original runs `phonenumbers.parse(value, None)`, gives up unless the number
//! `is_valid_number` or `is_possible_number`, then takes
//! `geocoder.country_name_for_number(number, "en")` and maps the name to an ISO code through
//! pycountry. That last step fails for about 40 countries whose geocoder name differs from
//! pycountry's (Russia, Iran, South Korea, ...). Here the region chosen by the geocoder is
//! returned directly as the ISO code, with the geocoder's English name beside it.
//!
//! The `phonenumber` crate parses and holds the same libphonenumber metadata as Python's
//! `phonenumbers`, but it has no `is_possible_number` and no geocoder, and its own region
//! guess (`country().id()`) differs from the geocoder (it drops Italian leading zeros, and it
//! picks a region where the geocoder refuses to choose). Both are therefore implemented here
//! from the crate's metadata, following the Python library's algorithms.
//!
//! Known difference, from the parser itself: when a national prefix follows the calling code
//! (`+20 0 72844`), the crate always strips it, while Python keeps it when stripping would
//! leave too short a number. On an 18,000-number corpus checked against phonenumbers 9.0.33,
//! this affected 0.7% of the numbers (mostly malformed ones). Every number that both libraries
//! parse to the same national number got the same outcome here as in Python.
//!
//! Memory: the crate compiles the metadata's patterns on demand into an LRU of 100 regexes,
//! with Unicode on, where `\d` is every Unicode digit: about 100 KB per pattern (compiled
//! program plus search cache), 15-20 MB resident once numbers of a few calling codes have been
//! seen, and 0.2-0.5 ms per compilation. The patterns only ever see ASCII digits (the parser
//! normalises the number first, and our national numbers are its output), so the same
//! patterns compiled without Unicode (about 12 KB each) match exactly the same. [`TWINS`]
//! holds those ASCII compilations; our own matching uses them directly, and right before each
//! call into the crate they are put into its cache under the same keys ([`prime`]), so the
//! crate finds them instead of compiling its own.

use std::collections::HashSet;
use std::sync::{LazyLock, Mutex};

use phonenumber::metadata::{Descriptor, Descriptors, Metadata, DATABASE};
use phonenumber::PhoneNumber;
use regex::{Regex, RegexBuilder};

use super::country_name;

/// Outcome of [`phone_country`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PhoneLookup {
    /// Not a phone number in international (`+…`) format: the original logs
    /// `Can't resolve phone number country`.
    Unparsable,
    /// Parsed, but neither a valid nor a possible number: the original logs
    /// `Phone number not valid`.
    NotValid,
    /// A possible number whose country cannot be told: a non-geographic calling code (`+800`,
    /// `+882`, ...) or a shared calling code (`+1`, `+39`, `+44`, ...) where the number is valid
    /// in no region or in more than one. The geocoder names no country for these (the original
    /// then aborts the message on its empty name).
    NoCountry,
    /// The number's country: upper-case ISO 3166-1 alpha-2 code and English short name.
    Country { iso: String, name: String },
}

/// Answers remembered per value. MISP feeds repeat the same numbers; a remembered answer skips
/// the parse and the pattern walks (and recompiling any pattern [`TWINS`] has dropped since).
static ANSWERS: std::sync::LazyLock<moka::sync::Cache<String, PhoneLookup>> =
    std::sync::LazyLock::new(|| moka::sync::Cache::new(4096));

/// Loads the phone-number metadata now rather than on the first phone attribute: loading it
/// takes a tenth of a second or more, which would otherwise stall the live feed mid-stream.
pub fn warm_up() {
    let _ = DATABASE.region(&1u16);
    LazyLock::force(&ANSWERS);
}

/// Resolves a phone attribute value to its country (see [`PhoneLookup`]).
pub fn phone_country(value: &str) -> PhoneLookup {
    if let Some(hit) = ANSWERS.get(value) {
        return hit;
    }
    let answer = phone_country_uncached(value);
    ANSWERS.insert(value.to_string(), answer.clone());
    answer
}

fn phone_country_uncached(value: &str) -> PhoneLookup {
    // The metadata crate indexes and slices internally; a panic on some odd input must not
    // take the dispatcher down, so it counts as an unparsable number.
    std::panic::catch_unwind(|| classify(value)).unwrap_or_else(|_| {
        tracing::warn!("phone number parser panicked on {value:?}");
        PhoneLookup::Unparsable
    })
}

fn classify(value: &str) -> PhoneLookup {
    if let Some((code, nsn)) = guess_number(value) {
        prime(|twins| parse_patterns(twins, code, &nsn));
    }
    // No default region, as in the original: only international numbers parse.
    let Ok(number) = phonenumber::parse(None, value) else {
        return PhoneLookup::Unparsable;
    };
    let code = number.code().value();
    // National significant number, with Italian leading zeros (Python's
    // `national_significant_number`).
    let nsn = number.national().to_string();
    prime(|twins| validation_patterns(twins, code, &nsn));
    outcome(&number, code, &nsn, || match TWINS.lock() {
        Ok(mut twins) => geocoder_region(code, &nsn, |meta, nsn| twins.valid_for_region(meta, nsn)),
        Err(_) => geocoder_region(code, &nsn, crate_valid_for_region),
    })
}

/// The outcome for a parsed number; `region` is [`geocoder_region`], asked only for a valid or
/// possible number.
fn outcome(
    number: &PhoneNumber,
    code: u16,
    nsn: &str,
    region: impl FnOnce() -> Option<&'static str>,
) -> PhoneLookup {
    if !(number.is_valid() || is_possible(code, nsn)) {
        return PhoneLookup::NotValid;
    }

    match region() {
        Some(region) => {
            let iso = region.to_ascii_uppercase();
            // Every region of the metadata has a name (unit test in `names`); the code itself
            // is a readable fallback should a newer metadata add one.
            let name = country_name(&iso).unwrap_or(&iso).to_string();
            PhoneLookup::Country { iso, name }
        }
        None => PhoneLookup::NoCountry,
    }
}

/// The number types a region's description lists, i.e. everything Python's
/// `_number_type_helper` tries (the short-number-only descriptions are absent from this
/// metadata).
fn type_descriptors(descriptors: &Descriptors) -> [Option<&Descriptor>; 10] {
    [
        descriptors.premium_rate(),
        descriptors.toll_free(),
        descriptors.shared_cost(),
        descriptors.voip(),
        descriptors.personal_number(),
        descriptors.pager(),
        descriptors.uan(),
        descriptors.voicemail(),
        descriptors.fixed_line(),
        descriptors.mobile(),
    ]
}

/// Python's `is_possible_number`: the length of the national number is one of the lengths
/// (national or local-only) of the calling code's main region.
///
/// libphonenumber's metadata compiler stores the union of the type descriptions' lengths in
/// the general description; the crate leaves that field empty, so the union is taken here.
fn is_possible(code: u16, nsn: &str) -> bool {
    let Some(main) = DATABASE
        .by_code(&code)
        .and_then(|metas| metas.first().copied())
    else {
        return false;
    };
    let Ok(length) = u16::try_from(nsn.len()) else {
        return false;
    };
    type_descriptors(main.descriptors())
        .into_iter()
        .flatten()
        .any(|d| {
            d.possible_length().contains(&length) || d.possible_local_length().contains(&length)
        })
}

/// Python's `is_valid_number_for_region` through the crate's own matching (its regex cache):
/// used only should [`TWINS`] be poisoned, and as the reference in tests.
fn crate_valid_for_region(meta: &Metadata, nsn: &str) -> bool {
    let descriptors = meta.descriptors();
    descriptors.general().is_match(nsn)
        && type_descriptors(descriptors)
            .into_iter()
            .flatten()
            .any(|d| d.is_match(nsn))
}

/// The region `geocoder.country_name_for_number` names: the only region of the calling code,
/// or, for a shared calling code, the single region where the number is valid. `None` for
/// non-geographic codes ("001") and for ambiguous or invalid numbers. `valid_for_region` is
/// Python's `is_valid_number_for_region`.
fn geocoder_region(
    code: u16,
    nsn: &str,
    mut valid_for_region: impl FnMut(&'static Metadata, &str) -> bool,
) -> Option<&'static str> {
    let regions = DATABASE.region(&code)?;
    let region = match regions.as_slice() {
        [only] => *only,
        _ => {
            let mut valid = regions.iter().copied().filter(|region| {
                DATABASE
                    .by_id(*region)
                    .is_some_and(|meta| valid_for_region(meta, nsn))
            });
            let first = valid.next()?;
            if valid.next().is_some() {
                return None;
            }
            first
        }
    };
    (region != "001").then_some(region)
}

/// ASCII compilations of the metadata's patterns (see the module documentation), keyed by
/// pattern source, compiled on first use, the least used dropped beyond [`TWIN_CAPACITY`].
static TWINS: LazyLock<Mutex<Twins>> = LazyLock::new(|| {
    Mutex::new(Twins(moka::sync::Cache::new(
        TWIN_ROOM.load(std::sync::atomic::Ordering::Relaxed) as u64,
    )))
});

/// How many compilations [`TWINS`] keeps: [`TWIN_CAPACITY`]; a test that needs every one kept
/// raises it before the first lookup.
static TWIN_ROOM: std::sync::atomic::AtomicUsize =
    std::sync::atomic::AtomicUsize::new(TWIN_CAPACITY);

/// Most ASCII compilations kept. One costs about 12 KB with its search cache (15 MB for all
/// 1,250 patterns, which numbers of every calling code end up needing); one lookup needs up to
/// about 90 (a `+1` number), and feeds mostly repeat a few calling codes. Measured on numbers
/// of every calling code, 256 keeps the growth near 4 MB at about 0.15 ms per new number.
const TWIN_CAPACITY: usize = 256;

struct Twins(moka::sync::Cache<&'static str, Option<Regex>>);

impl Twins {
    /// The ASCII compilation of a metadata pattern, compiled on first use. `None` when the
    /// pattern does not compile without Unicode (it could match invalid UTF-8, say): such a
    /// pattern goes through the crate as it always did.
    fn get(&mut self, source: &'static str) -> Option<Regex> {
        self.0.get_with(source, || {
            // What the crate's metadata loader asks for, Unicode apart, and with no room
            // for the lazy DFA, which regex then leaves out (it fails to build; the other
            // engines find the same matches). Its cache, up to 2 MB per pattern and growing
            // with the inputs seen, would double a twin's size for no gain on inputs of at
            // most 17 digits.
            RegexBuilder::new(source)
                .ignore_whitespace(true)
                .unicode(false)
                .dfa_size_limit(0)
                .build()
                .ok()
        })
    }

    /// Whether the pattern matches at the start of `text`, as the crate tests leading digits.
    /// `None` when the pattern has no ASCII compilation.
    fn matches_at_start(&mut self, source: &'static str, text: &str) -> Option<bool> {
        let regex = self.get(source)?;
        Some(regex.find(text).is_some_and(|m| m.start() == 0))
    }

    /// The crate's `Descriptor::is_match`: a listed possible length, then a match at the start
    /// (not anchored at the end).
    fn descriptor_matches(&mut self, descriptor: &'static Descriptor, nsn: &str) -> bool {
        length_fits(descriptor, nsn)
            && self
                .matches_at_start(descriptor.national_number().as_str(), nsn)
                .unwrap_or_else(|| descriptor.is_match(nsn))
    }

    /// [`Self::descriptor_matches`], noting the pattern in `touched` when the crate's
    /// `Descriptor::is_match` would compile it.
    fn touch(
        &mut self,
        descriptor: &'static Descriptor,
        nsn: &str,
        touched: &mut Vec<&'static str>,
    ) -> bool {
        if length_fits(descriptor, nsn) {
            touched.push(descriptor.national_number().as_str());
        }
        self.descriptor_matches(descriptor, nsn)
    }

    /// Python's `is_valid_number_for_region`: the number matches the region's general pattern
    /// and one of its number types. (The crate's `number_type(..) != Unknown` is the same test.)
    fn valid_for_region(&mut self, meta: &'static Metadata, nsn: &str) -> bool {
        let descriptors = meta.descriptors();
        self.descriptor_matches(descriptors.general(), nsn)
            && type_descriptors(descriptors)
                .into_iter()
                .flatten()
                .any(|d| self.descriptor_matches(d, nsn))
    }
}

/// The first test of the crate's `Descriptor::is_match`: no possible length listed, or the
/// number's among them. When it fails the pattern is not even compiled.
fn length_fits(descriptor: &Descriptor, nsn: &str) -> bool {
    let lengths = descriptor.possible_length();
    // The same cast as the crate's; a national number is at most 17 digits.
    lengths.is_empty() || lengths.contains(&(nsn.len() as u16))
}

/// Most patterns put into the crate's cache at once. It holds 100; what one call needs must not
/// push out what the same call needs next, and the rest leaves room for whatever the call
/// compiles itself (an unforeseen pattern).
const PRIME_LIMIT: usize = 90;

/// Puts [`TWINS`] into the crate's regex cache under their pattern sources, so the crate's next
/// call finds ASCII compilations instead of compiling its own with Unicode. `select` lists the
/// patterns that call will try, in the order it tries them; only the first [`PRIME_LIMIT`]
/// distinct ones are primed, inserted last-first so that the first are the most recently used.
///
/// Only memory and time depend on the selection: a pattern left out is compiled by the crate
/// as before, and a primed one matches exactly as the crate's own would.
fn prime(select: impl FnOnce(&mut Twins) -> Vec<&'static str>) {
    // Lock order, here and in our matching: TWINS, then the crate's cache; the crate never
    // takes ours.
    let Ok(mut twins) = TWINS.lock() else {
        return;
    };
    let mut patterns = select(&mut twins);
    let mut seen = HashSet::new();
    patterns.retain(|source| seen.insert(*source));
    patterns.truncate(PRIME_LIMIT);

    let cache = DATABASE.cache();
    let Ok(mut cache) = cache.lock() else {
        return;
    };
    for source in patterns.into_iter().rev() {
        let Some(twin) = twins.get(source) else {
            continue;
        };
        // `get_mut` also makes a held entry the most recently used. `insert`, unlike the
        // cache's `save`, replaces an entry the crate compiled itself.
        let held = cache
            .get_mut(source)
            .is_some_and(|regex| same_compilation(regex, &twin));
        if !held {
            cache.insert(source.to_string(), twin);
        }
    }
}

/// Whether `regex` is a clone of `twin`. A clone shares its original's pattern string, so this
/// tells a twin put in the crate's cache from a regex the crate compiled itself. (Should the
/// regex crate stop sharing it, every priming would re-insert the twin: the same results, a
/// little more work.)
fn same_compilation(regex: &Regex, twin: &Regex) -> bool {
    std::ptr::eq(regex.as_str(), twin.as_str())
}

/// The calling code and national number `phonenumber::parse(None, value)` will find, guessed
/// as libphonenumber reads them: the ASCII digits after the first `+`, up to a letter or `;`
/// (an extension, an RFC 3966 parameter); the calling code is their first one-to-three-digit
/// prefix that the metadata knows, the national number the rest without leading zeros (what the
/// parser chooses a region with). Only the priming depends on it.
fn guess_number(value: &str) -> Option<(u16, String)> {
    let plus = value.find(['+', '\u{FF0B}'])?;
    let digits: String = value[plus..]
        .chars()
        .take_while(|c| !c.is_ascii_alphabetic() && *c != ';')
        .filter(char::is_ascii_digit)
        .collect();
    if digits.starts_with('0') {
        // The parser rejects a calling code starting with 0.
        return None;
    }
    (1..=digits.len().min(3)).find_map(|len| {
        let code = digits[..len].parse().ok()?;
        DATABASE
            .by_code(&code)
            .map(|_| (code, digits[len..].trim_start_matches('0').to_string()))
    })
}

/// The patterns the crate's `number_type(meta, nsn)` compiles, in its order, and whether the
/// number has a type in the region. A type whose possible lengths exclude the number is
/// rejected without its pattern; the walk stops at the first type that matches, except that a
/// fixed-line match is then told from a mobile one (the last type).
fn number_type_patterns(
    twins: &mut Twins,
    meta: &'static Metadata,
    nsn: &str,
    out: &mut Vec<&'static str>,
) -> bool {
    let descriptors = meta.descriptors();
    if !twins.touch(descriptors.general(), nsn, out) {
        return false;
    }
    let fixed_line = descriptors.fixed_line();
    let mut valid = false;
    for descriptor in type_descriptors(descriptors).into_iter().flatten() {
        if twins.touch(descriptor, nsn, out) {
            valid = true;
            if !fixed_line.is_some_and(|fixed| std::ptr::eq(fixed, descriptor)) {
                break;
            }
        }
    }
    valid
}

/// The patterns the crate's `validator::source_for(code, nsn)` compiles, in its order, and the
/// region it picks: the calling code's only region, or else the first region whose
/// leading-digits pattern matches or, for a region without one, where the number has a type.
fn source_for_patterns(
    twins: &mut Twins,
    code: u16,
    nsn: &str,
    out: &mut Vec<&'static str>,
) -> Option<&'static Metadata> {
    let metas = DATABASE.by_code(&code)?;
    if let [only] = metas.as_slice() {
        return Some(*only);
    }
    metas.into_iter().find(|meta| match meta.leading_digits() {
        Some(leading) => {
            out.push(leading.as_str());
            twins
                .matches_at_start(leading.as_str(), nsn)
                .unwrap_or_else(|| leading.find(nsn).is_some_and(|m| m.start() == 0))
        }
        None => number_type_patterns(twins, meta, nsn, out),
    })
}

/// The patterns `phonenumber::parse` compiles for a number guessed (by [`guess_number`]) to be
/// national number `nsn` of calling code `code`: the region choice, then for the region
/// chosen the national-prefix-for-parsing pattern and the general pattern.
fn parse_patterns(twins: &mut Twins, code: u16, nsn: &str) -> Vec<&'static str> {
    let mut out = Vec::new();
    if let Some(meta) = source_for_patterns(twins, code, nsn, &mut out) {
        out.extend(meta.national_prefix_for_parsing().map(|p| p.as_str()));
        out.push(meta.descriptors().general().national_number().as_str());
    }
    out
}

/// The patterns `PhoneNumber::is_valid` compiles for national number `nsn` of calling code
/// `code`: the region choice again, then the number type in the region chosen.
fn validation_patterns(twins: &mut Twins, code: u16, nsn: &str) -> Vec<&'static str> {
    let mut out = Vec::new();
    if let Some(meta) = source_for_patterns(twins, code, nsn, &mut out) {
        number_type_patterns(twins, meta, nsn, &mut out);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The expected values are what Python phonenumbers 9.0 prints for these numbers.
    const COUNTRIES: &[(&str, &str, &str)] = &[
        ("+352 247 82000", "LU", "Luxembourg"),
        ("(+352) 247-82000", "LU", "Luxembourg"),
        ("tel:+352-247-82000", "LU", "Luxembourg"),
        ("+352 247 82000 ext. 12", "LU", "Luxembourg"),
        ("+7 495 123-45-67", "RU", "Russia"),
        ("+7 7172 123456", "KZ", "Kazakhstan"),
        ("+98 21 1234 5678", "IR", "Iran"),
        ("+82 2 1234 5678", "KR", "South Korea"),
        ("+420 212 345 678", "CZ", "Czech Republic"),
        ("+39 06 1234 5678", "IT", "Italy"),
        ("+1 650 253 0000", "US", "United States"),
        ("+1 416 555 0199", "CA", "Canada"),
        ("+1 684 633 1234", "AS", "American Samoa"),
        ("+44 20 7946 0958", "GB", "United Kingdom"),
        ("+44 1534 123456", "JE", "Jersey"),
        ("+33612345678", "FR", "France"),
        ("+358 18 12345", "AX", "Åland Islands"),
        ("+383 44 123 456", "XK", "Kosovo"),
    ];

    const NO_COUNTRY: &[&str] = &[
        "+800 1234 5678",   // international freephone, region "001"
        "+882 1234 5678",   // international networks, possible only
        "+870 773 111 632", // Inmarsat
        "+1 800 555 0199",  // toll free, valid in every NANPA region
        "+39 333 1234567",  // mobile, valid in both Italy and Vatican City
        "+1 2530000",       // possible (local length) but valid nowhere
        "+1 0337477",       // the same, with a leading zero kept
        "+290 8 1234",      // Saint Helena / Tristan da Cunha, valid in neither
    ];

    const UNPARSABLE: &[&str] = &[
        "0612345678",    // national format: no default region
        "0033612345678", // IDD prefix is not understood without a region
        "+999 1234567",  // unassigned calling code
        "+352",
        "+352 1",
        "+352 247 820001234567890",
        "+",
        "",
        "not a number",
    ];

    /// Parsed, but neither valid nor of a possible length.
    const NOT_VALID: &[&str] = &["+247 6123", "+1 03374", "+44 12"];

    fn country(iso: &str, name: &str) -> PhoneLookup {
        PhoneLookup::Country {
            iso: iso.to_string(),
            name: name.to_string(),
        }
    }

    #[test]
    fn resolves_countries_the_original_loses() {
        for (value, iso, name) in COUNTRIES {
            assert_eq!(phone_country(value), country(iso, name), "{value}");
        }
    }

    #[test]
    fn numbers_without_a_country() {
        for value in NO_COUNTRY {
            assert_eq!(phone_country(value), PhoneLookup::NoCountry, "{value}");
        }
    }

    #[test]
    fn unparsable_and_invalid_numbers() {
        for value in UNPARSABLE {
            assert_eq!(phone_country(value), PhoneLookup::Unparsable, "{value}");
        }
        for value in NOT_VALID {
            assert_eq!(phone_country(value), PhoneLookup::NotValid, "{value}");
        }
    }

    #[test]
    fn guesses_the_number_the_parser_finds() {
        for (value, guess) in [
            ("+352 247 82000", Some((352, "24782000"))),
            ("(+352) 247-82000", Some((352, "24782000"))),
            ("+352 247 82000 ext. 12", Some((352, "24782000"))),
            ("tel:+44-20-7946-0958;ext=12", Some((44, "2079460958"))),
            ("+44 (0) 20 7946 0958", Some((44, "2079460958"))),
            ("+1 650 253 0000", Some((1, "6502530000"))),
            ("+7 495 123-45-67", Some((7, "4951234567"))),
            ("+ 3 5 8 18 12345", Some((358, "1812345"))),
            ("\u{FF0B}33 6 12 34 56 78", Some((33, "612345678"))),
            ("+39 06 1234 5678", Some((39, "612345678"))),
            ("+0064 3 331 6005", None),
            ("+999 1234567", None),
            ("+35", None),
            ("0612345678", None),
        ] {
            let guess = guess.map(|(code, nsn)| (code, nsn.to_string()));
            assert_eq!(guess_number(value), guess, "{value}");
        }
    }

    /// The pre-priming path: the crate parses and validates with whatever its cache holds
    /// (in a fresh process: its own Unicode compilations), and regions are told through the
    /// crate's own matching.
    fn classify_unprimed(value: &str) -> PhoneLookup {
        let Ok(number) = phonenumber::parse(None, value) else {
            return PhoneLookup::Unparsable;
        };
        let code = number.code().value();
        let nsn = number.national().to_string();
        outcome(&number, code, &nsn, || {
            geocoder_region(code, &nsn, crate_valid_for_region)
        })
    }

    fn calling_codes() -> Vec<u16> {
        let mut codes: Vec<u16> = DATABASE.iter().map(Metadata::country_code).collect();
        codes.sort_unstable();
        codes.dedup();
        codes
    }

    /// Every calling code with a few national-number shapes and every example number of its
    /// regions (bare and behind a 0), the test vectors above, and a few odd spellings.
    fn broad_numbers() -> Vec<String> {
        let mut numbers = Vec::new();
        for code in calling_codes() {
            for shape in [
                " 612345678",
                " 2345678",
                "81234567890",
                " 0 612 3456",
                " 1234",
                "0337477",
                " 20 7946 0958",
                " 1",
                " 12345678901234567890",
            ] {
                numbers.push(format!("+{code}{shape}"));
            }
            for meta in DATABASE.by_code(&code).unwrap_or_default() {
                let descriptors = meta.descriptors();
                let examples = std::iter::once(descriptors.general())
                    .chain(type_descriptors(descriptors).into_iter().flatten())
                    .filter_map(Descriptor::example);
                for example in examples {
                    numbers.push(format!("+{code} {example}"));
                    numbers.push(format!("+{code} 0{example}"));
                }
            }
        }
        numbers.extend(COUNTRIES.iter().map(|(value, _, _)| value.to_string()));
        numbers.extend(NO_COUNTRY.iter().map(|value| value.to_string()));
        numbers.extend(UNPARSABLE.iter().map(|value| value.to_string()));
        numbers.extend(NOT_VALID.iter().map(|value| value.to_string()));
        numbers.extend(
            [
                "tel:03-331-6005;phone-context=+64",
                "+0064 3 331 6005",
                "+ 00 64 3 331 6005",
                "\u{FF0B}\u{FF13}\u{FF15}\u{FF12} 247 82000",
                "+1-800-FLOWERS",
                "+44 (0) 20 7946 0958",
            ]
            .map(String::from),
        );
        numbers
    }

    /// Runs `body` in a process of its own (this test binary, running only test `name`): the
    /// crate's regex cache is process-wide, and other tests (in `demo`, say) use the crate
    /// directly and concurrently.
    fn in_own_process(name: &str, body: impl FnOnce()) {
        const MARK: &str = "MISPDASH_PHONE_TEST_OWN_PROCESS";
        if std::env::var_os(MARK).is_some() {
            body();
            return;
        }
        let path = module_path!()
            .split_once("::")
            .map_or(module_path!(), |(_, path)| path);
        let exe = std::env::current_exe().expect("test binary path");
        let output = std::process::Command::new(exe)
            .args([&format!("{path}::{name}"), "--exact", "--test-threads=1"])
            .env(MARK, "1")
            .output()
            .expect("run the test binary");
        let stdout = String::from_utf8_lossy(&output.stdout);
        assert!(
            output.status.success() && stdout.contains("1 passed"),
            "{name} in its own process: {}\n{stdout}\n{}",
            output.status,
            String::from_utf8_lossy(&output.stderr),
        );
    }

    #[test]
    fn priming_changes_no_result() {
        in_own_process("priming_changes_no_result", || {
            let numbers = broad_numbers();
            // Reference first, while the crate's cache holds only its own compilations; the
            // primed pass then also has to replace those.
            let reference: Vec<PhoneLookup> = numbers
                .iter()
                .map(|value| classify_unprimed(value))
                .collect();
            let mut differences = Vec::new();
            for (value, expected) in numbers.iter().zip(&reference) {
                let primed = classify(value);
                if &primed != expected {
                    differences.push(format!("{value:?}: {primed:?} != {expected:?}"));
                }
            }
            assert!(
                differences.is_empty(),
                "{} of {} differ:\n{}",
                differences.len(),
                numbers.len(),
                differences.join("\n")
            );
            // The set must exercise every outcome.
            for kind in [
                |l: &PhoneLookup| matches!(l, PhoneLookup::Country { .. }),
                |l: &PhoneLookup| l == &PhoneLookup::NoCountry,
                |l: &PhoneLookup| l == &PhoneLookup::NotValid,
                |l: &PhoneLookup| l == &PhoneLookup::Unparsable,
            ] {
                let count = reference.iter().filter(|l| kind(l)).count();
                assert!(count > 100, "{count}");
            }
        });
    }

    /// Entries of the crate's regex cache that are not our ASCII compilation of their pattern.
    fn foreign_entries() -> Vec<String> {
        let twins = TWINS.lock().expect("twins");
        let cache = DATABASE.cache();
        let cache = cache.lock().expect("crate cache");
        cache
            .iter()
            .filter(|(source, regex)| {
                !twins
                    .0
                    .get(source.as_str())
                    .flatten()
                    .is_some_and(|twin| same_compilation(regex, &twin))
            })
            .map(|(source, _)| source.clone())
            .collect()
    }

    #[test]
    fn crate_cache_holds_only_ascii_compilations() {
        in_own_process("crate_cache_holds_only_ascii_compilations", || {
            // Room for every twin, so that "ours" below means an ASCII compilation even when
            // the crate still holds one that our cache has dropped.
            TWIN_ROOM.store(4096, std::sync::atomic::Ordering::Relaxed);
            // Entries the crate compiled itself are replaced, not kept.
            let value = "+352 247 82000";
            assert_eq!(classify_unprimed(value), country("LU", "Luxembourg"));
            assert!(!foreign_entries().is_empty());
            assert_eq!(classify(value), country("LU", "Luxembourg"));
            assert_eq!(foreign_entries(), Vec::<String>::new());

            let mut resolved = 0;
            for value in broad_numbers() {
                if classify(&value) != PhoneLookup::Unparsable {
                    resolved += 1;
                }
                let foreign = foreign_entries();
                assert!(
                    foreign.is_empty(),
                    "after {value:?}, the crate compiled {} pattern(s) itself: {foreign:?}",
                    foreign.len()
                );
            }
            assert!(resolved > 1000, "{resolved}");
            let cache = DATABASE.cache();
            let held = cache.lock().expect("crate cache").len();
            assert!(held > 10, "the crate's cache holds {held} entries");
        });
    }
}
