#!/usr/bin/env python3
"""Generate country_centroids.json, mispdash's built-in country centroid table.

Source: the npm package `world-countries` (mledoze/countries, data under the Open Database
License 1.0), whose countries.json gives for every ISO 3166-1 country a representative
point `latlng` = [latitude, longitude]. This script keeps only the alpha-2 code and that
point.

The output has the same format as the original misp-dashboard's
data/country_code_lat_long.json, so both files are read by the same loader:

    {"lu": {"lat": "49.7500", "long": "6.1667"}, ...}

lower-case alpha-2 keys, and coordinates as strings with exactly four decimals (the phone
path of the dashboard writes these strings verbatim into Redis).

Usage:

    npm pack world-countries@5.1.0 && tar xzf world-countries-5.1.0.tgz
    python3 core/data/gen_country_centroids.py package/countries.json

The output is written next to this script as country_centroids.json.
"""
import json
import os
import sys


def fmt(value):
    """Four decimals like the original table; never "-0.0000"."""
    text = "{:.4f}".format(float(value))
    return "0.0000" if text == "-0.0000" else text


def main():
    if len(sys.argv) != 2:
        sys.exit(__doc__)
    with open(sys.argv[1], encoding="utf-8") as f:
        countries = json.load(f)

    table = {}
    for country in countries:
        code = country.get("cca2", "")
        latlng = country.get("latlng") or []
        if len(code) != 2 or len(latlng) != 2:
            print(f"skipped: {code!r} {latlng!r}", file=sys.stderr)
            continue
        lat, lon = latlng
        if not (-90 <= lat <= 90 and -180 <= lon <= 180):
            print(f"skipped out-of-range: {code} {latlng!r}", file=sys.stderr)
            continue
        table[code.lower()] = {"lat": fmt(lat), "long": fmt(lon)}

    out = os.path.join(os.path.dirname(os.path.abspath(__file__)), "country_centroids.json")
    with open(out, "w", encoding="utf-8") as f:
        json.dump(table, f, indent=4, sort_keys=True)
        f.write("\n")
    print(f"{len(table)} centroids written to {out}", file=sys.stderr)


if __name__ == "__main__":
    main()
