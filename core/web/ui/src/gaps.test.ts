import { describe, expect, it } from "vitest";
import type { Feed, Gap } from "./api";
import { gapsText } from "./gaps";

const feed = (gaps?: Gap[]): Feed => ({
  name: "misp1",
  connected: true,
  last_message: null,
  last_keepalive: null,
  messages: 0,
  messages_per_minute: null,
  endpoint: null,
  subscriber_running: true,
  disconnected_since: null,
  ...(gaps ? { gaps } : {}),
});

describe("gapsText", () => {
  it("says none without gaps", () => {
    expect(gapsText(feed(undefined))).toBe("none");
    expect(gapsText(feed([]))).toBe("none");
  });
  it("counts what was read back and names the open gap's reason", () => {
    expect(
      gapsText(
        feed([
          { from: 1, to: 2, state: "filled", events: 25, sightings: 3 },
          { from: 3, to: 4, state: "filling" },
          { from: 5, to: 6, state: "open", error: "MISP at x refused the API key (HTTP 403)" },
        ]),
      ),
    ).toBe("1 filled (28 read back); 1 being filled; 1 open: MISP at x refused the API key (HTTP 403) (mispdash backfill fills it)");
  });
});
