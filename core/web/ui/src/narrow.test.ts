import { describe, expect, it } from "vitest";
import { listParam, pointFilters, tagPatterns, uncountedText } from "./narrow";

describe("the routes' filters from a page's form", () => {
  it("sends typed lists comma-separated, and nothing for empty fields", () => {
    expect(listParam(" tlp:*  misp-galaxy:*, osint ")).toBe("tlp:*,misp-galaxy:*,osint");
    expect(listParam("  ")).toBe("");
    expect(tagPatterns({ include: "tlp:*", exclude: "" })).toEqual({ tags: "tlp:*" });
    expect(tagPatterns({ include: "", exclude: "tlp:red tlp:amber" })).toEqual({ not_tags: "tlp:red,tlp:amber" });
    expect(pointFilters({ types: "ip-dst domain|ip", tags: "", notags: "tlp:red" })).toEqual({
      type: "ip-dst,domain|ip",
      not_tags: "tlp:red",
    });
    expect(pointFilters({ types: "", tags: "", notags: "" })).toEqual({});
  });

  it("names the days the server could not count", () => {
    const days = ["2026-11-18", "2026-11-19", "2026-11-20"];
    expect(uncountedText(days, [false, false, false])).toBeNull();
    expect(uncountedText(days, [true, false, false])).toBe(
      "1 of the 3 day(s) (2026-11-18) predate the records the type and tag filters read: their points are not counted.",
    );
    expect(uncountedText(days, [true, true])).toContain("2 of the 3 day(s) (2026-11-18 to 2026-11-19)");
  });
});
