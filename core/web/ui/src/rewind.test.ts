import { describe, expect, it } from "vitest";
import { rewindCsvUrl, type RewindWindow } from "./api";
import { agoText, keyStep, played, pointsOf, rangeAt, rowsOf } from "./rewind";

const win: RewindWindow = {
  from: 0,
  to: 20,
  now: 30,
  hours: 24,
  oldest: 5,
  more: false,
  rows: [
    { id: "20000-0", at: 20, log: { "5": "b" }, name: "Attribute", zmqName: "misp1" },
    { id: "10000-1", at: 10, log: { "5": "a" }, name: "Attribute", zmqName: "misp1" },
  ],
  points: [
    { id: "20000-1", at: 20, point: { value: "q" } },
    { id: "10000-0", at: 10, point: { value: "p" } },
  ],
};

describe("rewind", () => {
  it("ranges over the hours, from the oldest moment kept when that is later", () => {
    expect(rangeAt(100_000.7, 24, null)).toEqual({ min: 100_000 - 86_400, max: 100_000 });
    expect(rangeAt(100_000, 24, 90_000.5)).toEqual({ min: 90_000, max: 100_000 });
    expect(rangeAt(100_000, 1, 50_000)).toEqual({ min: 96_400, max: 100_000 });
    expect(rangeAt(100_000, 1, 200_000)).toEqual({ min: 100_000, max: 100_000 });
  });

  it("says how long ago a moment was", () => {
    expect(agoText(-3)).toBe("0 s ago");
    expect(agoText(45.4)).toBe("45 s ago");
    expect(agoText(12 * 60 + 59)).toBe("12 min ago");
    expect(agoText(2 * 3600 + 5 * 60)).toBe("2 h 05 min ago");
  });

  it("moves the slider by minutes, quarters of an hour, or to either end", () => {
    expect(keyStep("ArrowLeft", false, 1000, 0, 5000)).toBe(940);
    expect(keyStep("ArrowRight", true, 1000, 0, 5000)).toBe(1010);
    expect(keyStep("PageUp", false, 1000, 0, 5000)).toBe(1900);
    expect(keyStep("PageDown", false, 100, 0, 5000)).toBe(0);
    expect(keyStep("ArrowUp", false, 4990, 0, 5000)).toBe(5000);
    expect(keyStep("Home", false, 1000, 7, 5000)).toBe(7);
    expect(keyStep("End", false, 1000, 7, 5000)).toBe(5000);
    expect(keyStep("a", false, 1000, 0, 5000)).toBeNull();
  });

  it("plays forward at its speed and stops at now", () => {
    expect(played(100, 1, 1, 1000)).toEqual({ at: 101, live: false });
    expect(played(100, 60, 2, 1000)).toEqual({ at: 220, live: false });
    expect(played(100, 60, 20, 1000)).toEqual({ at: 1000, live: true });
    expect(played(100, 10, -5, 1000)).toEqual({ at: 100, live: false });
  });

  it("gives the log and the map a window oldest first, keyed apart from live rows", () => {
    expect(rowsOf(win).map((r) => [r.key, r.ev.log])).toEqual([
      ["rewind:10000-1", { "5": "a" }],
      ["rewind:20000-0", { "5": "b" }],
    ]);
    expect(pointsOf(win)).toEqual([
      { e: { value: "p" }, key: "rewind:10000-0", at: 10 },
      { e: { value: "q" }, key: "rewind:20000-1", at: 20 },
    ]);
  });

  it("asks for the CSV of a window with the page's filters", () => {
    const url = rewindCsvUrl({ from: 1795172400, to: 1795176000.25, filters: ["Attribute.type~eq~ip-dst", "Attribute.value~has~a&b"] });
    const q = new URL(url, "http://x").searchParams;
    expect(url.startsWith("/_mispdash/rewind.csv?")).toBe(true);
    expect(q.get("from")).toBe("1795172400.000");
    expect(q.get("to")).toBe("1795176000.250");
    expect(q.getAll("f")).toEqual(["Attribute.type~eq~ip-dst", "Attribute.value~has~a&b"]);
  });
});
