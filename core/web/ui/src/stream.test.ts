import { describe, expect, it } from "vitest";
import { backoffSeconds, streamPath } from "./stream";

describe("the live stream", () => {
  it("waits longer after each failure, up to 15 s, drawn in the upper half", () => {
    expect(backoffSeconds(1, 0)).toBe(0.5);
    expect(backoffSeconds(1, 1)).toBe(1);
    expect(backoffSeconds(3, 0)).toBe(2);
    expect(backoffSeconds(3, 1)).toBe(4);
    expect(backoffSeconds(20, 0)).toBe(7.5);
    expect(backoffSeconds(20, 1)).toBe(15);
  });

  it("resumes after the ids it saw", () => {
    expect(streamPath(["live", "map"], new Map())).toBe("/_mispdash/stream?topics=live%2Cmap");
    expect(
      streamPath(
        ["live", "awards"],
        new Map([
          ["live", 17],
          ["map", 3],
        ]),
      ),
    ).toBe("/_mispdash/stream?topics=live%2Cawards&live=17");
  });
});
