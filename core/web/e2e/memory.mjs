// Pages left open with their refresh running, as on a wall screen: after each refresh the
// page's DOM nodes, event listeners and JS heap are read through the DevTools protocol
// (Performance.getMetrics), after a forced garbage collection. Every page runs at once, each in
// its own tab.
//
//   node e2e/memory.mjs --base http://127.0.0.1:8001 --page "/geo?refresh=10" ... \
//        --refreshes 20 [--mode click|timer] [--sample-every 1]
//
// A "refresh" is the page's own: its refresh countdown reaching zero (`--mode timer`, the
// benchmark) or its "Refresh now" button (`--mode click`, the test: the same code path without
// the wait); on the status page, one status poll (every 5 s); on the live page, which streams
// and never refreshes, 5 seconds of its stream. Prints one JSON report on stdout: per page,
// the samples (refresh, nodes, listeners, heap in MiB).

import { launch } from "./chromium.mjs";
import { parseArgs } from "node:util";

const { values } = parseArgs({
  options: {
    base: { type: "string" },
    page: { type: "string", multiple: true },
    refreshes: { type: "string", default: "20" },
    mode: { type: "string", default: "click" },
    "sample-every": { type: "string", default: "1" },
  },
});
if (!values.base || !values.page) {
  console.error("usage: memory.mjs --base URL --page PATH... [--refreshes N] [--mode click|timer]");
  process.exit(2);
}
const refreshes = Number(values.refreshes);
const every = Math.max(1, Number(values["sample-every"]));

const browser = await launch(["--enable-precise-memory-info"]);
const report = { pages: [], problems: [] };

/** The refresh countdown's words ("refresh in 7 s", "refreshing…"). */
const label = (page) => page.locator(".refresh .hint").first().innerText();

async function sample(page, cdp) {
  await cdp.send("HeapProfiler.collectGarbage");
  await cdp.send("HeapProfiler.collectGarbage");
  const { metrics } = await cdp.send("Performance.getMetrics");
  const get = (n) => metrics.find((m) => m.name === n)?.value ?? 0;
  return { nodes: get("Nodes"), listeners: get("JSEventListeners"), heap_mib: +(get("JSHeapUsedSize") / 1048576).toFixed(2) };
}

/** One refresh of the page, in the chosen mode. */
async function refresh(page, kind) {
  if (kind === "status") {
    // The status page redraws at every poll of the shell (5 s).
    await page.waitForTimeout(5200);
    return;
  }
  if (kind === "live") {
    await page.waitForTimeout(5000);
    return;
  }
  if (values.mode === "click") {
    await page.getByRole("button", { name: "Refresh now" }).click();
  } else {
    // The countdown goes down every second and starts again after a refresh: a refresh is
    // done when the seconds left go up (a "refreshing…" between two polls may be missed).
    const left = async () => Number((/refresh in (\d+) s/.exec(await label(page)) ?? [])[1] ?? NaN);
    let last = await left();
    const end = Date.now() + 120000;
    for (;;) {
      if (Date.now() > end) throw new Error("no refresh in 120 s");
      await page.waitForTimeout(200);
      const now = await left();
      if (!Number.isNaN(now) && !Number.isNaN(last) && now > last) break;
      if (!Number.isNaN(now)) last = now;
    }
  }
  // Done when the countdown is back.
  await page.waitForFunction(() => /refresh in \d+ s/.test(document.querySelector(".refresh .hint")?.textContent ?? ""), null, {
    timeout: 120000,
    polling: 100,
  });
  const failed = page.locator(".refresh .error");
  if ((await failed.count()) > 0 && (await failed.innerText()) !== "") {
    report.problems.push(`${page.url()}: a refresh failed: ${await failed.innerText()}`);
  }
}

async function run(path) {
  const ctx = await browser.newContext({ viewport: { width: 1920, height: 1080 } });
  const page = await ctx.newPage();
  page.on("pageerror", (e) => report.problems.push(`${path}: script error: ${e.message}`));
  const url = new URL(path, values.base);
  const kind = url.pathname === "/status" ? "status" : url.pathname === "/" ? "live" : "refresh";
  await page.goto(url.toString(), { waitUntil: "load" });
  await page.waitForSelector("main[aria-busy='false']", { timeout: 30000 });
  if (kind === "refresh") await label(page);
  const cdp = await ctx.newCDPSession(page);
  await cdp.send("Performance.enable");
  const samples = [];
  const started = Date.now();
  for (let i = 1; i <= refreshes; i++) {
    await refresh(page, kind);
    if (i === 2 || i === refreshes || i % every === 0)
      samples.push({ refresh: i, t: Math.round((Date.now() - started) / 1000), ...(await sample(page, cdp)) });
  }
  report.pages.push({ path, kind, samples });
  await ctx.close();
}

try {
  const results = await Promise.allSettled(values.page.map(run));
  for (const [i, r] of results.entries()) {
    if (r.status === "rejected") report.problems.push(`${values.page[i]}: ${r.reason?.message ?? r.reason}`);
  }
} finally {
  await browser.close();
}
// Exit once the report is written: a report over 64 KiB on a pipe is written in parts.
process.stdout.write(`${JSON.stringify(report, null, 2)}\n`, () => process.exit(report.problems.length === 0 ? 0 : 1));
