// The charts and maps of every page: ECharts imported per component (only what the pages
// draw reaches the bundle), one theme per colour scheme derived from the CSS tokens of
// theme.css. The world map is in worldmap.ts (only the pages with a map carry it).
//
// Tooltips are built as elements (`tipNode`), never as HTML strings: ECharts would otherwise
// insert its default markup, which carries style attributes the CSP refuses and would have
// to escape names that come from MISP.

import * as echarts from "echarts/core";
import { BarChart, EffectScatterChart, LineChart, LinesChart, MapChart, PieChart, ScatterChart } from "echarts/charts";
import { GeoComponent, GridComponent, LegendComponent, TooltipComponent, VisualMapContinuousComponent } from "echarts/components";
import { CanvasRenderer } from "echarts/renderers";
import { el } from "./dom";

echarts.use([
  BarChart,
  EffectScatterChart,
  LineChart,
  LinesChart,
  MapChart,
  PieChart,
  ScatterChart,
  GeoComponent,
  GridComponent,
  LegendComponent,
  TooltipComponent,
  VisualMapContinuousComponent,
  CanvasRenderer,
]);

export type Option = echarts.EChartsCoreOption;

/** Whether the reader asked for less motion (no pulse, no fading). */
export function reducedMotion(): boolean {
  return window.matchMedia("(prefers-reduced-motion: reduce)").matches;
}

/** A CSS custom property of the current theme. */
export function token(name: string): string {
  return getComputedStyle(document.documentElement).getPropertyValue(name).trim();
}

/** Series colours, after the accent: distinguishable on both backgrounds. */
const PALETTE_TAIL = ["#3fbf7f", "#e0a53a", "#b07cff", "#ef5b5b", "#2ec4c4", "#d46bb4", "#9aa84a", "#ff8a4c", "#6f8cff"];

/** The ECharts theme of the current colour scheme, from the same tokens as the CSS. */
function theme(): Record<string, unknown> {
  const text = token("--text");
  const muted = token("--muted");
  const edge = token("--panel-edge");
  const axis = { axisLine: { lineStyle: { color: muted } }, axisLabel: { color: muted }, splitLine: { lineStyle: { color: edge } } };
  return {
    color: [token("--accent"), ...PALETTE_TAIL],
    backgroundColor: "transparent",
    textStyle: { color: text, fontFamily: token("--font") },
    legend: { textStyle: { color: text } },
    categoryAxis: axis,
    valueAxis: axis,
    timeAxis: axis,
    geo: { itemStyle: { areaColor: edge, borderColor: token("--panel") }, label: { color: text } },
    tooltip: { backgroundColor: token("--panel"), borderColor: edge, textStyle: { color: text } },
  };
}

/** Something that holds resources a page must give back: a chart, a timer, a listener. */
export interface Disposable {
  dispose(): void;
}

/** What one rendering of a page's panels holds. A refresh builds new panels in a new scope,
 * then disposes of the old one: charts, their observers and timers go with their panels, so a
 * page refreshed every minute for weeks holds what one rendering holds. */
export class Scope implements Disposable {
  private readonly held: Disposable[] = [];

  own<T extends Disposable>(d: T): T {
    this.held.push(d);
    return d;
  }

  dispose(): void {
    for (const d of this.held.splice(0)) d.dispose();
  }
}

/** The charts drawn now, for a theme change (disposed charts leave it). */
const charts = new Set<Chart>();

/** One chart in a host element: drawn once the host has a size (panels are often built
 * before they are attached), re-created in the new theme when the theme changes, resized with
 * its host, exportable as PNG. Owned by a scope, which disposes of it. */
export class Chart implements Disposable {
  private inst: echarts.ECharts | null = null;
  private readonly handlers: [string, (params: unknown) => void][] = [];
  private last: Option | null = null;
  private readonly observer: ResizeObserver;

  constructor(
    readonly host: HTMLElement,
    scope: Scope,
  ) {
    this.observer = new ResizeObserver(() => {
      if (this.inst) this.inst.resize();
      else this.start();
    });
    this.observer.observe(host);
    charts.add(this);
    scope.own(this);
  }

  /** Creates the ECharts instance when the host can hold it, and draws the last option. */
  private start(): void {
    if (this.host.clientWidth === 0 || this.host.clientHeight === 0) return;
    this.inst = echarts.init(this.host, theme(), { renderer: "canvas" });
    for (const [event, handler] of this.handlers) this.inst.on(event, handler);
    if (this.last) this.inst.setOption(this.last, { notMerge: true });
  }

  /** Replaces the whole option (kept, so that a theme change can draw it again). */
  set(option: Option): void {
    this.last = option;
    if (this.inst) this.inst.setOption(option, { notMerge: true, lazyUpdate: true });
    else this.start();
  }

  /** Merges a part into the drawn option (a live chart's new data): cheaper than `set`,
   * which rebuilds everything. A theme change draws the last `set` again; the owner then
   * merges its current data on its next update. */
  update(part: Option): void {
    this.inst?.setOption(part, { lazyUpdate: true });
  }

  on(event: string, handler: (params: unknown) => void): void {
    this.handlers.push([event, handler]);
    this.inst?.on(event, handler);
  }

  /** The data coordinate (for maps: [lon, lat]) of a point of the chart. */
  fromPixel(finder: Record<string, number>, value: number[]): number[] | null {
    const p: unknown = this.inst?.convertFromPixel(finder, value);
    return Array.isArray(p) ? (p as number[]) : null;
  }

  /** The chart as a PNG data URL, on the panel's background. */
  png(): string | null {
    return this.inst?.getDataURL({ type: "png", pixelRatio: 2, backgroundColor: token("--panel") }) ?? null;
  }

  retheme(): void {
    this.inst?.dispose();
    this.inst = null;
    this.start();
  }

  dispose(): void {
    this.observer.disconnect();
    this.inst?.dispose();
    this.inst = null;
    this.last = null;
    this.handlers.length = 0;
    charts.delete(this);
  }
}

/** A chart fed continuously (the live page's): redrawn on a timer only when something changed,
 * merging new data into the drawn option; set whole at first and after a theme change. */
export abstract class LiveChart implements Disposable {
  protected readonly chart: Chart;
  /** Something changed since the last draw. */
  protected dirty = true;
  /** The next draw sets the whole option. */
  protected full = true;
  private readonly timer: number;
  private readonly onTheme = (): void => {
    this.full = true;
    this.dirty = true;
  };

  constructor(host: HTMLElement, everyMs: number, scope: Scope) {
    this.chart = new Chart(host, scope);
    document.addEventListener("mispdash-theme", this.onTheme);
    this.timer = window.setInterval(() => this.draw(), everyMs);
    scope.own(this);
  }

  png(): string | null {
    return this.chart.png();
  }

  /** Draws now (after the history, so that the page is complete when it says it is ready). */
  flush(): void {
    this.dirty = true;
    this.draw();
  }

  dispose(): void {
    window.clearInterval(this.timer);
    document.removeEventListener("mispdash-theme", this.onTheme);
  }

  protected abstract draw(): void;
}

/** Called by the shell after the theme switched. */
export function rethemeAll(): void {
  for (const c of charts) c.retheme();
}
document.addEventListener("mispdash-theme", rethemeAll);

/** A tooltip's content as elements: a title line and label/value lines, all text. */
export function tipNode(title: string, ...lines: [string, string | number][]): HTMLElement {
  return el(
    "div",
    { class: "tip" },
    el("strong", {}, title),
    ...lines.map(([k, v]) => el("div", {}, `${k}: `, el("span", { class: "num" }, typeof v === "number" ? v.toLocaleString() : v))),
  );
}

/** Options every tooltip shares: plain container, content from `tipNode`. */
export function tooltip(formatter: (p: unknown) => HTMLElement | string, trigger: "item" | "axis" = "item"): Option {
  return {
    trigger,
    confine: true,
    className: "chart-tip",
    formatter: (p: unknown) => formatter(p),
  };
}
