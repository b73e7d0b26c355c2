// The live page under a steady feed, for bench/ui_endurance.sh (not a test): opens the page,
// then every 30 s reports the log's rows, the map's points, the JS heap, and the frames longer
// than 100 ms since the previous sample. Prints one JSON report on stdout.
//
//   node e2e/endurance.mjs --base http://127.0.0.1:8001 --seconds 600

import { launch } from "./chromium.mjs";
import { parseArgs } from "node:util";

const { values } = parseArgs({ options: { base: { type: "string" }, seconds: { type: "string", default: "600" } } });
const browser = await launch(["--enable-precise-memory-info"]);
const report = { samples: [], problems: [] };
try {
  const page = await browser.newPage({ viewport: { width: 1920, height: 1080 } });
  page.on("pageerror", (e) => report.problems.push(`script error: ${e.message}`));
  await page.goto(new URL("/", values.base).toString(), { waitUntil: "load" });
  await page.waitForSelector("main[aria-busy='false']", { timeout: 20000 });
  const cdp = await page.context().newCDPSession(page);
  await cdp.send("Performance.enable");
  // Frames longer than 100 ms, counted in the page (the debugging protocol's evaluation is not
  // subject to the page's CSP).
  // The benchmark's own forced garbage collection (for a comparable heap figure) blocks the
  // page too: frames that overlap it are counted apart.
  await page.evaluate(() => {
    globalThis.__long = [];
    globalThis.__gc = [];
    new PerformanceObserver((list) => {
      for (const e of list.getEntries()) {
        if (e.duration <= 100) continue;
        const end = e.startTime + e.duration;
        const byGc = globalThis.__gc.some(([a, b]) => e.startTime < b + 50 && end > a - 50);
        globalThis.__long.push({ ms: Math.round(e.duration), byGc });
      }
    }).observe({ type: "long-animation-frame", buffered: false });
  });
  const start = Date.now();
  const end = start + Number(values.seconds) * 1000;
  while (Date.now() < end) {
    await page.waitForTimeout(Math.min(30000, end - Date.now()));
    const gcStart = await page.evaluate(() => performance.now());
    await cdp.send("HeapProfiler.collectGarbage");
    await page.evaluate((a) => globalThis.__gc.push([a, performance.now()]), gcStart);
    // Frames end up in the observer a little after they end.
    await page.waitForTimeout(300);
    const { metrics } = await cdp.send("Performance.getMetrics");
    const heap = metrics.find((m) => m.name === "JSHeapUsedSize")?.value ?? 0;
    const dom = await page.evaluate(() => ({
      rows: document.querySelectorAll("#log tbody tr").length,
      points: Number(document.getElementById("map")?.dataset.points ?? -1),
      nodes: document.getElementsByTagName("*").length,
      long: globalThis.__long.filter((f) => !f.byGc).map((f) => f.ms),
      longGc: globalThis.__long
        .splice(0)
        .filter((f) => f.byGc)
        .map((f) => f.ms),
    }));
    report.samples.push({ t: Math.round((Date.now() - start) / 1000), heap_mib: +(heap / 1048576).toFixed(1), ...dom });
    console.error(JSON.stringify(report.samples[report.samples.length - 1]));
  }
} finally {
  await browser.close();
}
console.log(JSON.stringify(report));
