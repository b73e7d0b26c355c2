import { describe, expect, it } from "vitest";
import { addDays, daysBetween, isDay, ServerClock } from "./time";

// 2026-10-25 in Brussels: at 03:00 CEST (01:00 UTC) the clocks go back to 02:00 CET.
const BACK = Date.UTC(2026, 9, 25, 1) / 1000;
// 2026-03-29: at 02:00 CET (01:00 UTC) they go forward to 03:00 CEST.
const FORWARD = Date.UTC(2026, 2, 29, 1) / 1000;

describe("ServerClock in Europe/Brussels", () => {
  const clock = new ServerClock(BACK, "Europe/Brussels", 7200, BACK);

  it("formats times in the zone, not the browser's", () => {
    expect(clock.time(BACK - 1)).toBe("2026-10-25 02:59:59");
    expect(clock.time(BACK)).toBe("2026-10-25 02:00:00");
    expect(clock.offsetAt(BACK - 1)).toBe(7200);
    expect(clock.offsetAt(BACK)).toBe(3600);
    expect(clock.day(Date.UTC(2026, 9, 24, 22, 30) / 1000)).toBe("2026-10-25");
  });

  it("labels every hour once across the end of summer time", () => {
    const hours = Array.from({ length: 5 }, (_, i) => clock.hourStart(BACK - 2 * 3600 + i * 3600));
    expect(hours.map((h) => clock.hourLabel(h))).toEqual(["01:00", "02:00 CEST", "02:00 CET", "03:00", "04:00"]);
  });

  it("skips the hour that does not exist in spring", () => {
    const hours = Array.from({ length: 3 }, (_, i) => clock.hourStart(FORWARD - 3600 + i * 3600));
    expect(hours.map((h) => clock.hourLabel(h))).toEqual(["01:00", "03:00", "04:00"]);
  });

  it("names a day by its noon, on days of 23 and 25 hours", () => {
    expect(clock.noonOf("2026-10-25")).toBe(Date.UTC(2026, 9, 25, 11) / 1000);
    expect(clock.noonOf("2026-03-29")).toBe(Date.UTC(2026, 2, 29, 10) / 1000);
    expect(clock.day(clock.noonOf("2026-10-25"))).toBe("2026-10-25");
  });

  it("keeps in step with the server's clock", () => {
    const c = new ServerClock(1000, "UTC", 0, 400);
    expect(c.now(400)).toBe(1000);
    expect(c.now(410)).toBe(1010);
    c.sync(2000, 500);
    expect(c.now(500)).toBe(2000);
    expect(c.today()).toBe(c.day(c.now()));
  });
});

describe("ServerClock without a zone name", () => {
  it("uses the offset it was given", () => {
    const c = new ServerClock(0, null, 5400, 0);
    expect(c.time(0)).toBe("1970-01-01 01:30:00");
    expect(c.hourStart(0)).toBe(-1800);
    expect(c.zoneName(0)).toBe("UTC+01:30");
  });

  it("falls back to it when the browser does not know the zone", () => {
    const c = new ServerClock(0, "Nowhere/Atlantis", 3600, 0);
    expect(c.time(0)).toBe("1970-01-01 01:00:00");
  });
});

describe("days", () => {
  it("steps by the calendar", () => {
    expect(addDays("2026-03-28", 2)).toBe("2026-03-30");
    expect(addDays("2026-01-01", -1)).toBe("2025-12-31");
    expect(daysBetween("2026-02-27", "2026-03-02", 10)).toEqual(["2026-02-27", "2026-02-28", "2026-03-01", "2026-03-02"]);
    expect(daysBetween("2026-01-01", "2026-12-31", 3)).toHaveLength(3);
  });

  it("accepts only days that exist", () => {
    expect(isDay("2026-02-28")).toBe(true);
    expect(isDay("2026-02-30")).toBe(false);
    expect(isDay("2026-2-3")).toBe(false);
    expect(isDay(null)).toBe(false);
  });
});
