// MISP's tags come with a colour chosen by whoever made the tag: used only when it is a plain
// `#rrggbb` colour, never as arbitrary CSS.

export function safeColour(c: unknown): string | null {
  return typeof c === "string" && /^#[0-9a-fA-F]{6}$/.test(c) ? c : null;
}
