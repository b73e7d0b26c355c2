#!/usr/bin/env python3
"""Generate country_names.json: ISO 3166-1 alpha-2 code -> English short country name.

The names are the ones Python's `phonenumbers` geocoder prints for a region
(`geocoder.country_name_for_number(number, "en")`), so that mispdash reports the same
country names as the original misp-dashboard does for phone numbers. They come from the
`LOCALE_DATA` table in `phonenumbers/geodata/locale.py` (Apache-2.0), whose English entries
are mostly references of the form "*aa" to another language's entry; they are resolved here
the same way the geocoder resolves them.

A few regions that `phonenumbers` supports for phone numbers have no entry in LOCALE_DATA
(the geocoder prints an empty name for them). SUPPLEMENT gives them a name, so that such
numbers still resolve to a country in mispdash.

Usage (no installation needed, a wheel is importable as a zip file):

    pip download --no-deps phonenumbers==9.0.43 -d /tmp/pn
    python3 core/data/gen_country_names.py /tmp/pn/phonenumbers-9.0.43-py2.py3-none-any.whl

Without an argument, an installed `phonenumbers` is used. The output is written next to this
script as country_names.json.
"""
import json
import os
import sys

# Regions with phone metadata but no LOCALE_DATA entry, named here (English short names).
SUPPLEMENT = {
    "AC": "Ascension Island",
    "TA": "Tristan da Cunha",
    "XK": "Kosovo",
}


def resolve(names, lang):
    """Follow "*other_lang" references as phonenumbers.geocoder._region_display_name does."""
    name = names.get(lang, "")
    if name.startswith("*"):
        name = names.get(name[1:], "")
    return name


def main():
    if len(sys.argv) > 1:
        sys.path.insert(0, sys.argv[1])
    import phonenumbers
    from phonenumbers.geodata.locale import LOCALE_DATA

    table = {}
    for region, names in LOCALE_DATA.items():
        name = resolve(names, "en")
        if len(region) == 2 and name:
            table[region.upper()] = name
    for region, name in SUPPLEMENT.items():
        table.setdefault(region, name)

    out = os.path.join(os.path.dirname(os.path.abspath(__file__)), "country_names.json")
    with open(out, "w", encoding="utf-8") as f:
        json.dump(table, f, ensure_ascii=False, indent=4, sort_keys=True)
        f.write("\n")
    print(f"phonenumbers {phonenumbers.__version__}: {len(table)} names written to {out}",
          file=sys.stderr)


if __name__ == "__main__":
    main()
