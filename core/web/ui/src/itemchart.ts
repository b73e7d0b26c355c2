// The `[Dashboard] item_to_plot` chart: attributes per hour over the last `hours_spanned`
// hours, one stacked series per value of that column (the category by default), the biggest
// eight named and the rest summed. Hours are the server's (its clock and zone, daylight-saving
// changes included), counted from the rows the page has seen (history, then the stream), as the
// original did.

import { LiveChart, tipNode, tooltip, type Scope } from "./charts";
import { HOUR, type ServerClock } from "./time";

const SERIES = 8;

export class ItemChart extends LiveChart {
  /** Hour start (epoch) → value → count. */
  private readonly counts = new Map<number, Map<string, number>>();
  private names: string[] = [];

  constructor(
    host: HTMLElement,
    private readonly hours: number,
    private readonly clock: ServerClock,
    scope: Scope,
  ) {
    super(host, 2000, scope);
  }

  /** Counts one row with this value, at `epoch` (now when unknown). */
  add(value: string, epoch?: number): void {
    const now = this.clock.now();
    const t = epoch !== undefined && Number.isFinite(epoch) ? epoch : now;
    const hour = this.clock.hourStart(t);
    if (hour < now - (this.hours + 1) * HOUR) return;
    const m = this.counts.get(hour) ?? new Map<string, number>();
    m.set(value || "(none)", (m.get(value || "(none)") ?? 0) + 1);
    this.counts.set(hour, m);
    this.dirty = true;
  }

  /** An hour's label in the server's zone. */
  label(hour: number): string {
    return this.clock.hourLabel(hour);
  }

  /** The hours and the series, as drawn (for the exports too). */
  table(): { hours: number[]; series: [string, number[]][] } {
    const last = this.clock.hourStart(this.clock.now());
    // Hours step by an hour of real time: across a daylight-saving change a wall-clock hour
    // is skipped or shown twice, each labelled once (hourLabel).
    const hours = Array.from({ length: this.hours + 1 }, (_, i) => this.clock.hourStart(last - (this.hours - i) * HOUR));
    for (const h of this.counts.keys()) if (h < (hours[0] ?? 0)) this.counts.delete(h);
    const totals = new Map<string, number>();
    for (const m of this.counts.values()) for (const [v, n] of m) totals.set(v, (totals.get(v) ?? 0) + n);
    // The biggest eight, in name order: their order stays put while their counts move, so
    // the chart merges new counts instead of rebuilding.
    const named = [...totals.entries()]
      .sort((a, b) => b[1] - a[1])
      .slice(0, SERIES)
      .map(([v]) => v)
      .sort();
    const series: [string, number[]][] = named.map((v) => [v, hours.map((h) => this.counts.get(h)?.get(v) ?? 0)]);
    if (totals.size > SERIES) {
      const keep = new Set(named);
      series.push([
        "other",
        hours.map((h) => [...(this.counts.get(h)?.entries() ?? [])].filter(([v]) => !keep.has(v)).reduce((a, [, n]) => a + n, 0)),
      ]);
    }
    return { hours, series };
  }

  protected draw(): void {
    if (!this.dirty) return;
    this.dirty = false;
    const { hours, series } = this.table();
    const labels = hours.map((h) => this.label(h));
    const data = {
      xAxis: { data: labels },
      series: series.map(([name, counts]) => ({ name, type: "bar", stack: "all", data: counts })),
    };
    // The same series as before: merged. A new one (a new category among the biggest): set.
    if (!this.full && series.length === this.names.length && series.every(([n], i) => n === this.names[i])) {
      this.chart.update(data);
      return;
    }
    this.full = false;
    this.names = series.map(([n]) => n);
    this.chart.set({
      animation: false,
      grid: { left: 40, right: 12, top: 36, bottom: 28 },
      legend: { type: "scroll", top: 0 },
      tooltip: tooltip((p) => {
        const items = p as { axisValueLabel?: string; seriesName?: string; value?: number }[];
        return tipNode(
          items[0]?.axisValueLabel ?? "",
          ...items.filter((i) => (i.value ?? 0) > 0).map((i): [string, number] => [i.seriesName ?? "", i.value ?? 0]),
        );
      }, "axis"),
      xAxis: { type: "category", data: labels },
      yAxis: { type: "value", minInterval: 1 },
      series: series.map(([name, data]) => ({ name, type: "bar", stack: "all", data, animation: false })),
    });
  }
}
