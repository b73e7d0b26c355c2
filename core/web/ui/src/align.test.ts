import { describe, expect, it } from "vitest";
import { align } from "./align";

describe("align", () => {
  it("adds what came after the page's newest entry", () => {
    expect(align(["c", "b", "a"], ["a", "b", "c", "d", "e"])).toEqual({ add: ["d", "e"], replace: false });
    expect(align(["c", "b"], ["a", "b", "c"])).toEqual({ add: [], replace: false });
  });

  it("places a repeated value by its neighbours", () => {
    // The snapshot holds x, a twice: the page's last three say which one the page ends with.
    const snapshot = ["q", "x", "a", "z", "x", "a", "n1", "n2"];
    expect(align(["a", "x", "z"], snapshot)).toEqual({ add: ["n1", "n2"], replace: false });
    expect(align(["a", "x", "q"], snapshot)).toEqual({ add: ["z", "x", "a", "n1", "n2"], replace: false });
    expect(align(["a", "y"], ["y", "a", "z", "a", "n"])).toEqual({ add: ["z", "a", "n"], replace: false });
  });

  it("shows the server's entries when the page's newest is not among them", () => {
    expect(align(["old"], ["a", "b"])).toEqual({ add: ["a", "b"], replace: true });
  });

  it("fills an empty page, and keeps a page when the server has nothing", () => {
    expect(align([], ["a"])).toEqual({ add: ["a"], replace: false });
    expect(align(["a"], [])).toEqual({ add: [], replace: false });
  });
});
