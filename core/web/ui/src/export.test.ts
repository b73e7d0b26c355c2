import { describe, expect, it } from "vitest";
import { csvText, slug } from "./export";

describe("exports", () => {
  it("quote cells a spreadsheet would run as formulas", () => {
    const text = csvText({
      header: ["name", "n"],
      rows: [
        ['=HYPERLINK("x")', 1],
        ["plain, with comma", null],
      ],
    });
    const lines = text.split("\r\n");
    expect(lines[0]).toBe("name,n");
    expect(lines[1]?.startsWith("\"'=HYPERLINK")).toBe(true);
    expect(lines[2]).toBe('"plain, with comma",');
  });

  it("name files after the panel", () => {
    expect(slug("Hits per country, 2026-11-19 to 2026-11-20")).toBe("hits-per-country-2026-11-19-to-2026-11-20");
    expect(slug("***")).toBe("panel");
  });
});
