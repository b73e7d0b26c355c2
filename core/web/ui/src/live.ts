// The live page: what MISP publishes, as it streams. One stream (stream.ts) carries the log,
// the map points, the contributors and the awards; on its first connection it brings the
// newest log rows and map points, and after an interruption it resumes where the page was,
// or, from a server process that replaced the one the page knew, brings its newest rows,
// which the page aligns with its own (align.ts): rows applied while the stream was down
// appear, none twice. The live lists are read again then. The log and the map can be rewound
// to any moment of the last `[mispdash] rewind_hours` (rewind.ts): a second log in the same
// table and a second layer of the map show that moment, while the live ones go on arriving.

import { el, fill } from "./dom";
import { getJson, uiSettings, type UiSettings } from "./api";
import { align } from "./align";
import { Scope } from "./charts";
import { tools } from "./export";
import { containsTest, cookieValue, filterParams, OP_WORDS, readFilters, type Filter } from "./filters";
import { ItemChart } from "./itemchart";
import { cellText, isRow, LiveLog, logEpoch, MAX_ROWS, type LogEvent } from "./livelog";
import { LiveMap, type MapEvent } from "./livemap";
import { fieldText, reason } from "./panels";
import { LiveLists, type Award, type Contributor } from "./ranks";
import { startPage, type PageStart } from "./shell";
import { pointsOf, RewindBar, rowsOf } from "./rewind";
import { LiveStream } from "./stream";
import { go, params } from "./urlstate";

/** A stream event's identity: its JSON, as the server spelled it (the same row from the
 * stream and from a snapshot gives the same text). */
const keyOf = (v: unknown): string => JSON.stringify(v);

function writeCookie(filters: Filter[]): void {
  const value = cookieValue(filters);
  document.cookie = `filters=${value}; path=/; SameSite=Strict${value === "" ? "; max-age=0" : ""}`;
}

function filterBar(header: string[], filters: Filter[]): void {
  const form = document.getElementById("filters");
  const active = document.getElementById("active");
  if (!(form instanceof HTMLFormElement) || !active) return;
  const field = form.elements.namedItem("field");
  if (field instanceof HTMLSelectElement) {
    fill(field, ...header.flatMap((h) => h.split(" | ")).map((p) => el("option", {}, p)));
  }
  const apply = (next: Filter[]): void => go({ f: filterParams(next) });
  fill(
    active,
    ...filters.map((f, i) => {
      const remove = el("button", { type: "button", "aria-label": `Remove the filter ${f.path} ${OP_WORDS[f.op]} ${f.value}` }, "×");
      remove.addEventListener("click", () => apply(filters.filter((_, j) => j !== i)));
      return el("span", { class: "chip" }, `${f.path} ${OP_WORDS[f.op]} ${f.value} `, remove);
    }),
  );
  form.addEventListener("submit", (e) => {
    e.preventDefault();
    const data = new FormData(form);
    const op = fieldText(data, "op");
    const f: Filter = { path: fieldText(data, "field"), op: op === "ne" || op === "has" ? op : "eq", value: fieldText(data, "value") };
    if (f.value !== "") apply([...filters, f]);
  });
}

function required(id: string): HTMLElement {
  const e = document.getElementById(id);
  if (!e) throw new Error(`the page is incomplete (#${id})`);
  return e;
}

async function start({ clock, shell, status }: PageStart): Promise<void> {
  const table = required("log");
  const main = required("live");
  const pause = required("pause");
  const count = required("count");
  if (!(table instanceof HTMLTableElement)) throw new Error("the page is incomplete (#log)");
  // The URL's filters go to the cookie first: the server filters the stream by it.
  const filters = readFilters(params());
  writeCookie(filters);
  const u: UiSettings = await uiSettings();
  const header = await getJson<string[]>("/_get_log_head");
  const d = u.dashboard;
  const scope = new Scope();

  // The log.
  const log = new LiveLog({
    table,
    header,
    separator: d.char_separator || "||",
    clock,
    mispWebUrl: u.misp_web_url,
    passes: containsTest(filters, header),
    counted: (n) => {
      // An empty log under access control says why it may stay empty.
      const acl = status.auth.enabled && status.access_control?.enabled === true;
      count.textContent =
        n === 0 && acl ? "0 rows: nothing MISP shows you has arrived yet (the live log follows your MISP permissions)" : `${n} row(s)`;
    },
  });
  filterBar(header, filters);
  const logPanel = table.closest("section");
  // The rewound log: the same table, its own body, shown instead of the live one.
  const rewoundBody = document.createElement("tbody");
  rewoundBody.id = "log-rewound";
  table.append(rewoundBody);
  let rewoundAt = "";
  const rewoundLog = new LiveLog({
    table,
    header,
    separator: d.char_separator || "||",
    clock,
    mispWebUrl: u.misp_web_url,
    passes: containsTest(filters, header),
    counted: (n) => {
      count.textContent = `${n} row(s) as at ${rewoundAt}`;
    },
    body: rewoundBody,
    hidden: true,
  });
  let bar: RewindBar | null = null;
  if (logPanel) tools(logPanel, { table: () => (bar?.rewound ? rewoundLog : log).table() });

  // The map and the item chart.
  const mapTitle = required("map-now");
  const map = new LiveMap(required("map"), mapTitle, d.rotation_wait_time, d.max_img_rotation, scope);
  const mapPanel = mapTitle.closest("section");
  if (mapPanel) {
    tools(mapPanel, {
      png: () => map.png(),
      table: () => ({
        header: ["longitude", "latitude", "what", "place"],
        rows: map.snapshot().points.map((p) => [p.lon, p.lat, p.label, p.place]),
      }),
      json: () => map.snapshot(),
    });
  }
  const bare = d.item_to_plot.replace(/^(Attribute|Event)\./, "");
  const item = bare.charAt(0).toUpperCase() + bare.slice(1);
  const plotTitle = required("plot-title");
  plotTitle.textContent = `${item} per hour, last ${d.hours_spanned} h`;
  plotTitle.closest("section")?.setAttribute("aria-label", `${item} per hour`);
  const plot = new ItemChart(required("plot"), d.hours_spanned, clock, scope);
  const plotPanel = plotTitle.closest("section");
  if (plotPanel) {
    tools(plotPanel, {
      png: () => plot.png(),
      table: () => {
        const t = plot.table();
        return {
          header: ["hour", "hour (epoch)", ...t.series.map(([n]) => n)],
          rows: t.hours.map((h, i) => [plot.label(h), h, ...t.series.map(([, v]) => v[i] ?? 0)]),
        };
      },
    });
  }
  // The rewind slider, when the server keeps the live view.
  const hours = u.rewind?.hours ?? 0;
  if (hours > 0) {
    const logTitle = required("log-title");
    const rewoundTitle = (on: boolean): void => {
      const words = logTitle.firstChild;
      if (words?.nodeType === Node.TEXT_NODE) words.textContent = on ? "Log as it was " : "Live log ";
      logPanel?.classList.toggle("rewound", on);
      // The live log's pause means nothing for a past moment.
      pause.hidden = on;
      mapPanel?.classList.toggle("rewound", on);
    };
    const b = new RewindBar(
      {
        clock,
        hours,
        filters: filterParams(filters),
        pointLife: Math.max(30, d.rotation_wait_time * Math.max(1, d.max_img_rotation)),
        rows: MAX_ROWS,
        points: 100,
      },
      {
        show: (w, at) => {
          rewoundAt = clock.time(at);
          if (!bar?.rewound) return;
          log.setShown(false);
          rewoundLog.replace(rowsOf(w));
          rewoundLog.setShown(true);
          rewoundTitle(true);
          map.rewind(pointsOf(w), b.now);
        },
        more: (w, at) => {
          rewoundAt = clock.time(at);
          rewoundLog.add(rowsOf(w), true);
          map.more(pointsOf(w));
          count.textContent = `${rewoundLog.size} row(s) as at ${rewoundAt}`;
        },
        live: () => {
          rewoundLog.setShown(false);
          rewoundLog.replace([]);
          log.setShown(true);
          rewoundTitle(false);
          map.toLive();
        },
        announce: (t) => shell.announce(t),
        failed: (why) => {
          count.textContent = `cannot rewind: ${why}`;
        },
      },
    );
    bar = b;
    document.getElementById("filters")?.after(b.element);
  }

  const plotCol = header.findIndex((h) => h.split(" | ").includes(d.item_to_plot));
  const timeCol = header.indexOf("Attribute.timestamp");
  const countRow = (ev: LogEvent): void => {
    if (!isRow(ev)) return;
    plot.add(cellText(ev, plotCol), timeCol >= 0 ? logEpoch(cellText(ev, timeCol)) : undefined);
  };

  // The live lists.
  const stream = new LiveStream(
    ["live", "map", "contributors", "awards"],
    { event: (t, data) => onEvent(t, data), snapshot: (t, events, first) => onSnapshot(t, events, first) },
    shell,
    clock,
  );
  const lists = new LiveLists(u, clock, [stream.note(), stream.note()]);
  fill(required("people"), ...lists.panels);
  for (const id of ["log-title", "map-title"]) document.getElementById(id)?.append(stream.note());

  // Rows that arrive within a frame go in together, and only the newest MAX_ROWS of them: at a
  // hundred messages a second the table is laid out once a frame, not a hundred times. A
  // hidden tab draws no frame: the queue keeps the newest rows and the tab catches up when
  // shown.
  let queued: { key: string; ev: LogEvent }[] = [];
  let frame = 0;
  const flush = (): void => {
    frame = 0;
    const batch = queued;
    queued = [];
    log.add(batch, true);
  };
  const queue = (rows: { key: string; ev: LogEvent }[]): void => {
    queued.push(...rows);
    if (queued.length > MAX_ROWS) queued = queued.slice(-MAX_ROWS);
    if (frame === 0 && !document.hidden) frame = window.requestAnimationFrame(flush);
  };
  document.addEventListener("visibilitychange", () => {
    if (!document.hidden && queued.length > 0 && frame === 0) frame = window.requestAnimationFrame(flush);
  });
  let paused = false;
  let held: { key: string; ev: LogEvent }[] = [];
  pause.addEventListener("click", () => {
    paused = !paused;
    pause.setAttribute("aria-pressed", String(paused));
    if (!paused) {
      queue(held);
      held = [];
    }
    pause.textContent = paused ? "Resume" : "Pause";
  });
  const show = (rows: { key: string; ev: LogEvent }[]): void => {
    if (!paused) {
      queue(rows);
      return;
    }
    held.push(...rows);
    if (held.length > MAX_ROWS) held = held.slice(-MAX_ROWS);
    pause.textContent = `Resume (${held.length} new)`;
  };

  const parseRow = (v: unknown): { key: string; ev: LogEvent } | null => {
    if (typeof v !== "object" || v === null) return null;
    const ev = v as LogEvent;
    return typeof ev.name === "string" ? { key: keyOf(v), ev } : null;
  };
  // The map's history fades oldest first; points added later fade from now.
  const life = Math.max(30, d.rotation_wait_time * Math.max(1, d.max_img_rotation));
  const onSnapshot = (topic: string, events: unknown[], first: boolean): void => {
    if (topic === "live") {
      const rows = events.map(parseRow).filter((r): r is { key: string; ev: LogEvent } => r !== null && isRow(r.ev));
      const a = align(
        log.keys(),
        rows.map((r) => r.key),
      );
      const added = new Set(a.add);
      const fresh = rows.filter((r) => added.has(r.key));
      for (const r of fresh) countRow(r.ev);
      if (a.replace) log.replace(rows);
      else if (first) log.add(fresh, false);
      else show(fresh);
      plot.flush();
    } else if (topic === "map") {
      const points = events.filter((e): e is MapEvent => typeof e === "object" && e !== null);
      const a = align(
        map.keys(),
        points.map((p) => keyOf(p)),
      );
      const added = new Set(a.add);
      const fresh = points.filter((p) => added.has(keyOf(p)));
      fresh.forEach((p, i) => map.add(p, keyOf(p), first ? (life * (fresh.length - i)) / (fresh.length + 1) : 0));
      map.flush();
    } else if (topic === "awards") {
      // Both lists come from their routes (the last 7 days), on the first connection and after
      // a new server process. The page is complete once they are in.
      void lists
        .reload()
        .catch((e: unknown) => console.warn("live lists:", reason(e)))
        .finally(() => {
          if (first) main.setAttribute("aria-busy", "false");
        });
    }
  };
  const onEvent = (topic: string, data: string): void => {
    const v: unknown = JSON.parse(data);
    if (topic === "live") {
      const r = parseRow(v);
      if (!r || !isRow(r.ev)) return;
      countRow(r.ev);
      show([r]);
    } else if (topic === "map") {
      if (typeof v === "object" && v !== null) map.add(v, keyOf(v));
    } else if (topic === "contributors") {
      lists.contributor(v as Contributor);
    } else if (topic === "awards") {
      lists.award(v as Award);
    }
  };
  stream.start();
}

startPage("/", (p) => {
  start(p).catch((e: unknown) => {
    const main = document.getElementById("live");
    if (main) {
      main.setAttribute("aria-busy", "false");
      fill(main, el("p", { class: "error", role: "alert" }, `Cannot load the live page: ${reason(e)}`));
    }
  });
});
