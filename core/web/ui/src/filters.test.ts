import { describe, expect, it } from "vitest";
import { columnOf, containsTest, cookieValue, filterParams, readFilters } from "./filters";

const header = [
  "Attribute.timestamp",
  "Event.id",
  "Attribute.Tag",
  "Attribute.category",
  "Attribute.type",
  "Attribute.value | Attribute.comment",
];

describe("live-log filters", () => {
  it("are read from the URL, the malformed ones left out", () => {
    const q = new URLSearchParams("f=Attribute.type~eq~ip-dst&f=Event.id~ne~7&f=Attribute.value~has~a~b&f=bad&f=x~zz~1&f=y~eq~");
    const f = readFilters(q);
    expect(f).toEqual([
      { path: "Attribute.type", op: "eq", value: "ip-dst" },
      { path: "Event.id", op: "ne", value: "7" },
      { path: "Attribute.value", op: "has", value: "a~b" },
    ]);
    expect(
      readFilters(
        new URLSearchParams(
          filterParams(f)
            .map((p) => `f=${encodeURIComponent(p)}`)
            .join("&"),
        ),
      ),
    ).toEqual(f);
  });

  it("go to the cookie in the original's format, except 'contains'", () => {
    const v = cookieValue([
      { path: "Attribute.type", op: "eq", value: "ip-dst" },
      { path: "Attribute.type", op: "ne", value: "url" },
      { path: "Event.id", op: "eq", value: "7" },
      { path: "Attribute.value", op: "has", value: "x" },
    ]);
    expect(JSON.parse(decodeURIComponent(v))).toEqual({ "Attribute.type": ["ip-dst", "!url"], "Event.id": "7" });
    expect(cookieValue([{ path: "Attribute.value", op: "has", value: "x" }])).toBe("");
  });

  it("'contains' is tested on the cells of its column, without case", () => {
    expect(columnOf("Attribute.comment", header)).toBe(5);
    expect(columnOf("Attribute.nothing", header)).toBe(-1);
    const test = containsTest([{ path: "Attribute.type", op: "has", value: "SHA" }], header);
    expect(test(["", "", "", "", "sha256", ""])).toBe(true);
    expect(test(["", "", "", "", "md5", ""])).toBe(false);
  });
});
