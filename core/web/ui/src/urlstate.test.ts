import { describe, expect, it } from "vitest";
import { withParams } from "./urlstate";

describe("withParams", () => {
  it("changes, adds and removes parameters, keeping the others", () => {
    expect(withParams("?a=1&b=2", { b: "3", c: "x y" })).toBe("?a=1&b=3&c=x+y");
    expect(withParams("?a=1&b=2", { a: null })).toBe("?b=2");
    expect(withParams("?a=1", { a: null })).toBe("");
    expect(withParams("", { a: "" })).toBe("");
  });

  it("writes several values of one name in order", () => {
    expect(withParams("?f=x&k=1", { f: ["a~eq~1", "b~has~2"] })).toBe("?k=1&f=a%7Eeq%7E1&f=b%7Ehas%7E2");
  });
});
