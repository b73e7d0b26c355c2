// Building the page from data that comes from MISP (organisation names, event titles, tags...)
// must never interpret it: every element is made here, and every text goes in as text.

type Child = Node | string | number | null | undefined | false;

export interface Attrs {
  class?: string;
  id?: string;
  title?: string;
  href?: string;
  role?: string;
  "aria-label"?: string;
  "aria-live"?: "polite" | "off";
  "aria-hidden"?: "true";
  "data-state"?: string;
  "aria-pressed"?: "true" | "false";
  "aria-busy"?: "true" | "false";
  for?: string;
  name?: string;
  value?: string;
  placeholder?: string;
  list?: string;
  tabindex?: string;
  type?: string;
}

/** An element with attributes (set as attributes, never as HTML) and text or element children. */
export function el<K extends keyof HTMLElementTagNameMap>(tag: K, attrs: Attrs = {}, ...children: Child[]): HTMLElementTagNameMap[K] {
  const node = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (typeof v === "string") node.setAttribute(k, v);
  }
  for (const c of children) {
    if (c === null || c === undefined || c === false) continue;
    node.append(typeof c === "number" ? String(c) : c);
  }
  return node;
}

/** Replaces a container's children. */
export function fill(parent: Element, ...children: Child[]): void {
  parent.replaceChildren();
  for (const c of children) {
    if (c === null || c === undefined || c === false) continue;
    parent.append(typeof c === "number" ? String(c) : c);
  }
}
