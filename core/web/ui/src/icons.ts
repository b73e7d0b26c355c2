// The dashboard's own insignia, drawn at run time from simple geometry: no icon set is copied or
// fetched, and since every node is made with createElementNS/setAttribute the page's CSP (no
// inline style) and the lint rule against HTML strings both hold. Levels come from the server,
// so every entry point clamps them before they decide anything about the drawing.

const SVG_NS = "http://www.w3.org/2000/svg";

export const RANK_LEVELS = 16;
export const BADGE_COUNT = 5;
export const TROPHY_LEVELS = 12;

type Attrs = Record<string, string | number>;
type Point = readonly [number, number];

/** Two decimals are plenty on a 32-unit grid and keep the serialised SVG short. */
function num(v: number): string {
  return String(Math.round(v * 100) / 100);
}

function svg<K extends keyof SVGElementTagNameMap>(tag: K, attrs: Attrs = {}, ...children: SVGElement[]): SVGElementTagNameMap[K] {
  const node = document.createElementNS(SVG_NS, tag);
  for (const [k, v] of Object.entries(attrs)) node.setAttribute(k, typeof v === "number" ? num(v) : v);
  node.append(...children);
  return node;
}

function pts(points: readonly Point[]): string {
  return points.map(([x, y]) => `${num(x)},${num(y)}`).join(" ");
}

/** Anything that is not a number (NaN included) is the lowest level: a bad value must never
 * show off a rank nobody earned. Infinity and fractions clamp like any other number. */
function clamp(v: unknown, lo: number, hi: number): number {
  if (typeof v !== "number" || Number.isNaN(v)) return lo;
  return Math.min(hi, Math.max(lo, Math.trunc(v)));
}

/** Splits 1..16 (or 1..12) into a tier of four and a step 1..4 inside it. */
function tierStep(level: number): [tier: number, step: number] {
  return [Math.floor((level - 1) / 4), ((level - 1) % 4) + 1];
}

function frame(kind: string, fallback: string, title: string | undefined): SVGSVGElement {
  const text = title !== undefined && title !== "" ? title : fallback;
  const t = svg("title");
  t.textContent = text;
  return svg("svg", { viewBox: "0 0 32 32", width: 32, height: 32, role: "img", "aria-label": text, class: `icon icon-${kind}` }, t);
}

/** A light fill with a thin dark edge reads on the dark (#171d24) and the white theme alike. */
function paint(fill: string, stroke: string, width = 1): Attrs {
  return { fill, stroke, "stroke-width": width, "stroke-linejoin": "round" };
}

/** "Nothing yet" is an outline, so an empty slot still shows where the insignia will go. */
const MUTED: Attrs = { fill: "none", stroke: "#93a1b0", "stroke-width": 1.5, "stroke-linejoin": "round" };

function star(cx: number, cy: number, r: number, attrs: Attrs, points = 5, inner = 0.45): SVGPolygonElement {
  const out: Point[] = [];
  for (let i = 0; i < points * 2; i++) {
    const a = -Math.PI / 2 + (i * Math.PI) / points;
    const d = i % 2 === 0 ? r : r * inner;
    out.push([cx + d * Math.cos(a), cy + d * Math.sin(a)]);
  }
  return svg("polygon", { points: pts(out), ...attrs });
}

/** Where 1-4 marks sit in a square of half-size 1, and how big each may be: one layout shared
 * by rank stars and hexagon pips, so a count always reads the same way. */
const LAYOUT: Record<number, { r: number; at: readonly Point[] }> = {
  1: { r: 0.95, at: [[0, 0]] },
  2: {
    r: 0.5,
    at: [
      [-0.55, 0],
      [0.55, 0],
    ],
  },
  3: {
    r: 0.48,
    at: [
      [0, -0.5],
      [-0.52, 0.42],
      [0.52, 0.42],
    ],
  },
  4: {
    r: 0.46,
    at: [
      [-0.5, -0.5],
      [0.5, -0.5],
      [-0.5, 0.5],
      [0.5, 0.5],
    ],
  },
};

function placed(count: number, cx: number, cy: number, half: number): { r: number; at: Point[] } {
  const l = LAYOUT[count] ?? LAYOUT[1] ?? { r: 1, at: [[0, 0]] };
  return { r: l.r * half, at: l.at.map(([x, y]): Point => [cx + x * half, cy + y * half]) };
}

// ---- Monthly rank: enlisted chevrons, then officer bars, then stars, then stars in a laurel.

const CHEVRON = paint("#e3a63b", "#6b4510");
const BAR = paint("#cfd6de", "#4a5561");
const STAR = paint("#f5c542", "#7a5800");
const LEAF = paint("#6dbb4f", "#2c6320", 0.8);

function chevron(y: number, attrs: Attrs): SVGPolygonElement {
  const p: Point[] = [
    [5, y + 7],
    [16, y],
    [27, y + 7],
    [27, y + 10.5],
    [16, y + 3.5],
    [5, y + 10.5],
  ];
  return svg("polygon", { points: pts(p), ...attrs });
}

/** The laurel keeps the top tier apart from plain stars even where colour is hard to see. */
function laurel(): SVGGElement {
  const g = svg("g", LEAF);
  for (const side of [1, -1]) {
    for (let i = 0; i < 5; i++) {
      const deg = 90 + side * (28 + i * 24);
      const a = (deg * Math.PI) / 180;
      const x = 16 + 12.5 * Math.cos(a);
      const y = 16 + 12.5 * Math.sin(a);
      g.append(svg("ellipse", { cx: x, cy: y, rx: 3, ry: 1.4, transform: `rotate(${num(deg + 90)} ${num(x)} ${num(y)})` }));
    }
  }
  g.append(svg("circle", { cx: 16, cy: 28.6, r: 1.6, ...STAR }));
  return g;
}

export function rankIcon(level: number, title?: string): SVGSVGElement {
  const lv = clamp(level, 0, RANK_LEVELS);
  const root = frame("rank", `rank ${lv}`, title);
  if (lv === 0) {
    root.append(chevron(10.75, MUTED));
    return root;
  }
  const [tier, step] = tierStep(lv);
  if (tier === 0) {
    const top = (32 - (10.5 + 5 * (step - 1))) / 2;
    for (let i = 0; i < step; i++) root.append(chevron(top + 5 * i, CHEVRON));
  } else if (tier === 1) {
    const top = (32 - (4.5 + 7 * (step - 1))) / 2;
    for (let i = 0; i < step; i++) {
      root.append(svg("rect", { x: 6, y: top + 7 * i, width: 20, height: 4.5, rx: 1, ...BAR }));
    }
  } else {
    const wreathed = tier === 3;
    if (wreathed) root.append(laurel());
    const { r, at } = wreathed ? placed(step, 16, 13.5, 8) : placed(step, 16, 16, 12);
    for (const [x, y] of at) root.append(star(x, y, r, STAR));
  }
  return root;
}

// ---- Contribution rank: a hexagon plate whose colour and trim mark the tier, pips the step.

const TIERS: readonly Attrs[] = [
  paint("#5b9be0", "#1f4f85"),
  paint("#3fbf8f", "#17664a"),
  paint("#a57ae6", "#4a2a85"),
  paint("#e86458", "#7a1f1a"),
];

function hexPoints(r: number): Point[] {
  const out: Point[] = [];
  for (let i = 0; i < 6; i++) {
    const a = -Math.PI / 2 + (i * Math.PI) / 3;
    out.push([16 + r * Math.cos(a), 16 + r * Math.sin(a)]);
  }
  return out;
}

/** Each tier adds trim (inner rim, then corner studs, then a gold core) on top of its colour,
 * so tiers stay apart for colour-blind viewers too. */
export function orgRankIcon(level: number, title?: string): SVGSVGElement {
  const lv = clamp(level, 0, RANK_LEVELS);
  const root = frame("orgrank", `contribution rank ${lv}`, title);
  if (lv === 0) {
    root.append(svg("polygon", { points: pts(hexPoints(14.5)), ...MUTED }));
    return root;
  }
  const [tier, step] = tierStep(lv);
  const plate = TIERS[tier] ?? TIERS[0] ?? MUTED;
  const edge = String(plate.stroke);
  root.append(svg("polygon", { points: pts(hexPoints(14.5)), ...plate }));
  if (tier >= 1) {
    const core = tier === 3 ? paint("#f5c542", edge) : { fill: "none", stroke: edge, "stroke-width": 1 };
    root.append(svg("polygon", { points: pts(hexPoints(10)), ...core }));
  }
  if (tier >= 2) {
    for (const [x, y] of hexPoints(12.3)) root.append(svg("circle", { cx: x, cy: y, r: 1.2, ...paint("#ffffff", edge, 0.8) }));
  }
  const { r, at } = placed(step, 16, 16, 6);
  for (const [x, y] of at) {
    const d: Point[] = [
      [x, y - r],
      [x + r, y],
      [x, y + r],
      [x - r, y],
    ];
    root.append(svg("polygon", { points: pts(d), ...paint("#ffffff", edge, 0.9) }));
  }
  return root;
}

// ---- Honour badges: a two-tone ribbon over a gold disc, each with its own colour and emblem.

interface BadgeDesign {
  light: string;
  dark: string;
  edge: string;
  emblem: (a: Attrs) => SVGElement;
}

const DISC = { cx: 16, cy: 21 } as const;

const BADGES: readonly BadgeDesign[] = [
  { light: "#4a90d9", dark: "#2f6aa8", edge: "#173b63", emblem: (a) => star(DISC.cx, DISC.cy, 5.2, a) },
  {
    light: "#e0574c",
    dark: "#b23a31",
    edge: "#5e1813",
    emblem: (a) =>
      svg("polygon", {
        points: pts([
          [17.5, 14.8],
          [12, 22],
          [15.6, 22],
          [14.3, 27.4],
          [20.3, 19.8],
          [16.7, 19.8],
          [19.2, 14.8],
        ]),
        ...a,
      }),
  },
  {
    light: "#45b06b",
    dark: "#2e8450",
    edge: "#154a2a",
    emblem: (a) =>
      svg(
        "g",
        {},
        svg("circle", { cx: DISC.cx, cy: DISC.cy, r: 4.8, ...a }),
        svg("circle", { cx: DISC.cx, cy: DISC.cy, r: 2.6, ...paint("#f0c24b", String(a.stroke)) }),
        svg("circle", { cx: DISC.cx, cy: DISC.cy, r: 1, ...a }),
      ),
  },
  {
    light: "#9b6fdb",
    dark: "#7650b0",
    edge: "#3b2366",
    emblem: (a) => {
      const { cx: x, cy: y } = DISC;
      const w = 1.7;
      const l = 5;
      const p: Point[] = [
        [x - w, y - l],
        [x + w, y - l],
        [x + w, y - w],
        [x + l, y - w],
        [x + l, y + w],
        [x + w, y + w],
        [x + w, y + l],
        [x - w, y + l],
        [x - w, y + w],
        [x - l, y + w],
        [x - l, y - w],
        [x - w, y - w],
      ];
      return svg("polygon", { points: pts(p), ...a });
    },
  },
  {
    light: "#ee9a2e",
    dark: "#c0741a",
    edge: "#5f3606",
    emblem: (a) =>
      svg("polygon", {
        points: pts([
          [11, 25],
          [11, 18],
          [13.7, 21],
          [16, 16.5],
          [18.3, 21],
          [21, 18],
          [21, 25],
        ]),
        ...a,
      }),
  },
];

/** A badge not yet earned keeps its design but fades, so visitors see what there is to earn. */
export function badgeIcon(n: number, title?: string, acquired = true): SVGSVGElement {
  const b = clamp(n, 1, BADGE_COUNT);
  const root = frame("badge", `badge ${b}`, title);
  const d = BADGES[b - 1] ?? BADGES[0];
  if (d === undefined) return root;
  const g = svg(
    "g",
    acquired ? {} : { opacity: 0.3 },
    svg("polygon", {
      points: pts([
        [19, 1],
        [25, 1],
        [19.5, 14],
        [13.5, 14],
      ]),
      ...paint(d.dark, d.edge),
    }),
    svg("polygon", {
      points: pts([
        [7, 1],
        [13, 1],
        [18.5, 14],
        [12.5, 14],
      ]),
      ...paint(d.light, d.edge),
    }),
    svg("circle", { ...DISC, r: 9, ...paint("#f0c24b", "#7a5a12") }),
    svg("circle", { ...DISC, r: 7.3, fill: "none", stroke: "#b8892a", "stroke-width": 0.8 }),
    d.emblem(paint(d.light, d.edge, 0.9)),
  );
  root.append(g);
  return root;
}

// ---- Trophies: a cup whose metal marks the tier and whose ruby gems mark the step.

const METALS: readonly [fill: string, stroke: string][] = [
  ["#cd8a4a", "#6b3d12"],
  ["#cfd6de", "#4a5561"],
  ["#f2c230", "#7a5a00"],
];
const BOWL = "M7 4H25V9C25 15 21 19 16 19C11 19 7 15 7 9Z";
const HANDLES = ["M7 6.5H4.5C2 6.5 2 13.5 8 14.5", "M25 6.5H27.5C30 6.5 30 13.5 24 14.5"];

/** Besides the metal, silver gets a stepped plinth and gold a rim lip as well, so the three
 * metals differ in shape and not only in hue. */
export function trophyIcon(level: number, title?: string): SVGSVGElement {
  const lv = clamp(level, 0, TROPHY_LEVELS);
  const root = frame("trophy", `trophy level ${lv}`, title);
  if (lv === 0) {
    for (const d of HANDLES) root.append(svg("path", { d, ...MUTED, "stroke-linecap": "round" }));
    root.append(
      svg("path", { d: BOWL, ...MUTED }),
      svg("rect", { x: 14, y: 19, width: 4, height: 5, ...MUTED }),
      svg("rect", { x: 9, y: 24, width: 14, height: 5, rx: 1, ...MUTED }),
    );
    return root;
  }
  const [tier, step] = tierStep(lv);
  const [fill, edge] = METALS[tier] ?? METALS[0] ?? ["#cd8a4a", "#6b3d12"];
  const metal = paint(fill, edge);
  // A dark wide stroke under a narrower metal one: a handle with an edge, without a filled shape.
  for (const d of HANDLES) {
    root.append(
      svg("path", { d, fill: "none", stroke: edge, "stroke-width": 3.2, "stroke-linecap": "round" }),
      svg("path", { d, fill: "none", stroke: fill, "stroke-width": 1.6, "stroke-linecap": "round" }),
    );
  }
  root.append(svg("rect", { x: 14, y: 18, width: 4, height: 6.5, ...metal }));
  if (tier === 0) {
    root.append(svg("rect", { x: 9, y: 24, width: 14, height: 5, rx: 1, ...metal }));
  } else {
    root.append(
      svg("rect", { x: 10, y: 24, width: 12, height: 3, rx: 0.8, ...metal }),
      svg("rect", { x: 8, y: 27, width: 16, height: 3.5, rx: 1, ...metal }),
    );
  }
  root.append(svg("path", { d: BOWL, ...metal }));
  if (tier === 2) root.append(svg("rect", { x: 6, y: 2.5, width: 20, height: 3, rx: 1, ...metal }));
  // Round gems with gaps between them: pointed ones ran together into a zigzag at three or four.
  const gem = paint("#e0435a", "#7a1424", 0.7);
  for (let i = 0; i < step; i++) root.append(svg("circle", { cx: 16 + (i - (step - 1) / 2) * 4.2, cy: 10.5, r: 1.6, ...gem }));
  return root;
}
