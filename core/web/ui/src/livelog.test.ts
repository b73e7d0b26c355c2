import { describe, expect, it } from "vitest";
import { cellText, columnsOf, isRow, logEpoch, tagsOf, type LogEvent } from "./livelog";

const header = [
  "Attribute.timestamp",
  "Event.id",
  "Attribute.Tag",
  "Attribute.category",
  "Attribute.type",
  "Attribute.value | Attribute.comment",
];

describe("the live log's rows", () => {
  it("know what each column shows from its path", () => {
    expect(columnsOf(header).map((c) => c.kind)).toEqual(["time", "id", "tags", "text", "text", "composite"]);
    expect(columnsOf(["Attribute.value"])[0]?.kind).toBe("value");
  });

  it("read tags from the original's cell, keeping only plain colours", () => {
    const cell = {
      name: "Tag",
      data: JSON.stringify([
        { name: "tlp:amber", colour: "#FFC000" },
        { name: "x", colour: "red;background:url(y)" },
      ]),
    };
    expect(tagsOf(cell)).toEqual([
      { name: "tlp:amber", colour: "#FFC000" },
      { name: "x", colour: null },
    ]);
    expect(tagsOf("")).toBeNull();
    expect(tagsOf({ name: "Tag", data: "not json" })).toEqual([]);
  });

  it("give each cell's whole text, tags by name", () => {
    const ev: LogEvent = {
      name: "Attribute",
      zmqName: "misp1",
      log: {
        "0": "2026-11-20 11:59:59",
        "1": "7",
        "2": { name: "Tag", data: '[{"name": "a"}, {"name": "b"}]' },
        "3": "Other",
        "4": "text",
        "5": "v||c",
      },
    };
    expect([0, 1, 2, 5].map((i) => cellText(ev, i))).toEqual(["2026-11-20 11:59:59", "7", "a, b", "v||c"]);
    expect(isRow(ev)).toBe(true);
    expect(isRow({ name: "Keepalive", zmqName: "misp1", log: [86400] })).toBe(false);
  });

  it("read the log's UTC times", () => {
    expect(logEpoch("2026-11-20 12:00:00")).toBe(1795176000);
    expect(logEpoch("soon")).toBeUndefined();
  });
});
