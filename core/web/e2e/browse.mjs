// Opens pages of a running mispdash in headless Debian Chromium (playwright-core) and checks
// what a user would see: no console error, no CSP violation, no failed request, no request to
// another host, no dialog; the texts the caller expects; and a screenshot per page and theme.
//
//   node e2e/browse.mjs --base http://127.0.0.1:8001 --out DIR --page /status \
//        --expect "misp1" --expect "Dead letters" [--expect-in "SELECTOR=>TEXT"] \
//        [--absent-selector "img"]
//
// Prints one JSON report on stdout; exits 1 when anything is wrong, saying what.

import { launch } from "./chromium.mjs";
import { parseArgs } from "node:util";
import { mkdirSync, readFileSync } from "node:fs";
import { createRequire } from "node:module";
import { join } from "node:path";

const { values } = parseArgs({
  options: {
    base: { type: "string" },
    out: { type: "string" },
    page: { type: "string", multiple: true },
    expect: { type: "string", multiple: true, default: [] },
    // "SELECTOR=>TEXT": the first element matching SELECTOR shows TEXT.
    "expect-in": { type: "string", multiple: true, default: [] },
    // "SELECTOR=>TEXT": there is at least one match, and every one shows TEXT.
    "expect-all": { type: "string", multiple: true, default: [] },
    "absent-selector": { type: "string", multiple: true, default: [] },
    // "SELECTOR=>TEXT": no element matching SELECTOR shows TEXT.
    "absent-text": { type: "string", multiple: true, default: [] },
    ready: { type: "string", default: "main[aria-busy='false']" },
    // "USER:PASSWORD": the page must first send the browser to /login; the form is filled in
    // and sent, then the page must work.
    login: { type: "string" },
    // Waits (up to 20 s) until the browser is on this path (kiosk mode's next page).
    "wait-path": { type: "string" },
    // Waits (up to 60 s each, in order) until the page shows these texts: what a live stream
    // brings.
    "wait-text": { type: "string", multiple: true, default: [] },
    // The test restarts the server while the page is open: the streams' and the status
    // poll's failed connections in between are expected, not problems.
    "server-restarts": { type: "boolean", default: false },
    // The themes to load each page in.
    themes: { type: "string", default: "dark,light" },
    // "FORM=>name=value&name=value": fills the form's fields and submits it, as a user would,
    // then waits for the page it leads to (before the expectations are checked).
    act: { type: "string", multiple: true, default: [] },
    // Clicks the first link matching this selector and waits for the page it leads to.
    follow: { type: "string", multiple: true, default: [] },
    // The final URL (decoded) contains this.
    "url-has": { type: "string", multiple: true, default: [] },
    // Runs axe-core on the final page: serious and critical violations are problems.
    axe: { type: "boolean", default: false },
    // The window's size, "WIDTHxHEIGHT" (default 1920x1080).
    viewport: { type: "string", default: "1920x1080" },
    // Keyboard: presses Tab (up to 200 times) until the focus is on an element matching this,
    // then presses each --press key in order.
    "tab-to": { type: "string" },
    press: { type: "string", multiple: true, default: [] },
    // "SELECTOR=>FILE": clicks the (export) button and saves what it downloads to FILE.
    download: { type: "string", multiple: true, default: [] },
    // Counts the elements matching this that are wholly visible (inside the window and their
    // scrolling box): report.pages[].visible.
    "count-visible": { type: "string" },
    // Steps run in order after the keyboard ones, each "VERB:ARGUMENT":
    //   set:SELECTOR=>VALUE     sets an input's or a select's value as a user would (input
    //                           and change events: a slider dragged there)
    //   click:SELECTOR          clicks the first match
    //   wait:SELECTOR=>TEXT     waits (20 s) until the first match shows TEXT
    //   rows:SELECTOR=>A|B|C    waits (20 s) until exactly these elements match, in order, the
    //                           first showing A, the second B...
    //   hidden:SELECTOR         waits (20 s) until no match is visible
    //   shot:NAME               saves a screenshot as NAME-<theme>.png
    step: { type: "string", multiple: true, default: [] },
    // The fonts the browser drew this text with (DevTools' CSS.getPlatformFontsForNode):
    // report.pages[].fonts[TEXT] = [{ familyName, glyphCount }].
    "fonts-for": { type: "string", multiple: true, default: [] },
  },
});
const axeSource = values.axe ? readFileSync(createRequire(import.meta.url).resolve("axe-core/axe.min.js"), "utf8") : "";
if (!values.base || !values.out || !values.page) {
  console.error("usage: browse.mjs --base URL --out DIR --page PATH... [--expect TEXT...]");
  process.exit(2);
}
mkdirSync(values.out, { recursive: true });
const base = new URL(values.base);

const browser = await launch();
const report = { pages: [], problems: [] };
try {
  for (const path of values.page) {
    for (const theme of values.themes.split(",")) {
      const [width, height] = values.viewport.split("x").map(Number);
      const ctx = await browser.newContext({ viewport: { width, height }, acceptDownloads: true });
      // The page reads the theme from localStorage, as a returning visitor's would be.
      await ctx.addInitScript((t) => localStorage.setItem("mispdash-theme", t), theme);
      const page = await ctx.newPage();
      const problems = [];
      const where = `${path} (${theme})`;
      // While the server restarts, the streams and the status poll fail: refused or cut
      // connections, or a proxy's 502/503/504 in front of it.
      const restartPath = (url) =>
        values["server-restarts"] && /\/(_logs|_maps|_eventStream\w*|_mispdash\/stream|status)$/.test(new URL(url).pathname);
      const duringRestart = (url, text) =>
        restartPath(url) &&
        /ERR_(CONNECTION_REFUSED|INCOMPLETE_CHUNKED_ENCODING|EMPTY_RESPONSE|CONNECTION_RESET|CONNECTION_CLOSED|ABORTED)|status of 50[234]/.test(
          text,
        );
      page.on("console", (m) => {
        if (m.type() !== "error") return;
        if (duringRestart(m.location().url || base.toString(), m.text())) return;
        problems.push(`${where}: console error: ${m.text()}`);
      });
      page.on("pageerror", (e) => problems.push(`${where}: script error: ${e.message}`));
      page.on("dialog", async (d) => {
        problems.push(`${where}: a dialog opened (${d.type()}: ${d.message()})`);
        await d.dismiss();
      });
      page.on("request", (r) => {
        const u = new URL(r.url());
        if (u.protocol !== "data:" && u.host !== base.host) {
          problems.push(`${where}: request to another host: ${r.url()}`);
        }
      });
      // Until the page under test is loaded, requests cut short by a navigation (the login's
      // redirect leaving a page with an open stream) are not failures.
      let settled = false;
      page.on("requestfailed", (r) => {
        const why = r.failure()?.errorText ?? "";
        if (!settled && why.includes("ERR_ABORTED")) return;
        if (duringRestart(r.url(), why)) return;
        problems.push(`${where}: request failed: ${r.url()} ${why}`);
      });
      page.on("response", (r) => {
        if ([502, 503, 504].includes(r.status()) && restartPath(r.url())) return;
        if (r.status() >= 400) problems.push(`${where}: ${r.status()} for ${r.url()}`);
      });
      if (values.login) {
        await page.goto(new URL(path, base).toString(), { waitUntil: "load" });
        if (new URL(page.url()).pathname !== "/login") {
          problems.push(`${where}: not sent to /login without a session (at ${page.url()})`);
        }
        const at = values.login.indexOf(":");
        await page.fill("#username", values.login.slice(0, at));
        await page.fill("#password", values.login.slice(at + 1));
        await Promise.all([page.waitForNavigation(), page.click("button[type=submit]")]);
        if (new URL(page.url()).pathname === "/login") {
          problems.push(`${where}: the login was refused (${page.url()})`);
        }
      }
      const started = Date.now();
      const target = new URL(path, base);
      const here = new URL(page.url());
      // After a login the browser is already on the page: loading it again would cut its
      // requests short.
      if (here.pathname + here.search !== target.pathname + target.search) {
        await page.goto(target.toString(), { waitUntil: "load" });
      }
      settled = true;
      try {
        await page.waitForSelector(values.ready, { timeout: 10000 });
      } catch {
        problems.push(`${where}: never ready (${values.ready})`);
      }
      const readyMs = Date.now() - started;
      if (values["wait-path"]) {
        try {
          await page.waitForURL((u) => u.pathname === values["wait-path"], { timeout: 20000 });
          await page.waitForSelector(values.ready, { timeout: 10000 });
        } catch {
          problems.push(`${where}: never went on to ${values["wait-path"]} (at ${page.url()})`);
        }
      }
      for (const want of values["wait-text"]) {
        try {
          await page.waitForFunction((t) => document.body.innerText.includes(t), want, { timeout: 60000 });
        } catch {
          problems.push(`${where}: "${want}" never came`);
        }
      }
      // A navigation the test asks for cuts the page's open streams short: not failures.
      const afterNavigation = async (what) => {
        settled = true;
        try {
          await page.waitForLoadState("load");
          await page.waitForSelector(values.ready, { timeout: 10000 });
        } catch {
          problems.push(`${where}: never ready after ${what}`);
        }
      };
      for (const act of values.act) {
        const at = act.indexOf("=>");
        const form = act.slice(0, at);
        const fields = new URLSearchParams(act.slice(at + 2));
        for (const [name, value] of fields) {
          const field = page.locator(`${form} [name="${name}"]`).first();
          if ((await field.evaluate((e) => e.tagName)) === "SELECT") await field.selectOption(value);
          else await field.fill(value);
        }
        settled = false;
        await Promise.all([page.waitForNavigation(), page.locator(`${form} button[type=submit]`).first().click()]);
        await afterNavigation(act);
      }
      for (const sel of values.follow) {
        settled = false;
        await Promise.all([page.waitForNavigation(), page.locator(sel).first().click()]);
        await afterNavigation(sel);
      }
      // The query as a user reads it: parameters decoded ("+" and %XX alike).
      const u = new URL(page.url());
      const url = `${u.pathname}?${[...u.searchParams].map(([k, v]) => `${k}=${v}`).join("&")}`;
      for (const want of values["url-has"]) {
        if (!url.includes(want)) problems.push(`${where}: the URL ${url} does not hold ${JSON.stringify(want)}`);
      }
      if (values["tab-to"]) {
        let reached = false;
        for (let i = 0; i < 200 && !reached; i++) {
          await page.keyboard.press("Tab");
          reached = await page.evaluate((sel) => document.activeElement?.matches(sel) ?? false, values["tab-to"]);
        }
        if (!reached) problems.push(`${where}: Tab never reached ${values["tab-to"]}`);
        for (const key of values.press) await page.keyboard.press(key);
      }
      for (const step of values.step) {
        const colon = step.indexOf(":");
        const verb = step.slice(0, colon);
        const arg = step.slice(colon + 1);
        const split = arg.indexOf("=>");
        const sel = split >= 0 ? arg.slice(0, split) : arg;
        const rest = split >= 0 ? arg.slice(split + 2) : "";
        try {
          if (verb === "set") {
            await page
              .locator(sel)
              .first()
              .evaluate((e, v) => {
                e.value = v;
                e.dispatchEvent(new globalThis.Event("input", { bubbles: true }));
                e.dispatchEvent(new globalThis.Event("change", { bubbles: true }));
              }, rest);
          } else if (verb === "click") {
            await page.locator(sel).first().click();
          } else if (verb === "wait") {
            await page.waitForFunction(([s, t]) => document.querySelector(s)?.textContent?.includes(t) ?? false, [sel, rest], {
              timeout: 20000,
            });
          } else if (verb === "rows") {
            const want = rest.split("|");
            await page.waitForFunction(
              ([s, w]) => {
                const got = [...document.querySelectorAll(s)].map((e) => e.textContent ?? "");
                return got.length === w.length && got.every((t, i) => t.includes(w[i]));
              },
              [sel, want],
              { timeout: 20000 },
            );
          } else if (verb === "hidden") {
            await page.waitForFunction((s) => [...document.querySelectorAll(s)].every((e) => e.checkVisibility() === false), sel, {
              timeout: 20000,
            });
          } else if (verb === "shot") {
            await page.screenshot({ path: join(values.out, `${arg}-${theme}.png`) });
          } else {
            problems.push(`${where}: unknown step ${step}`);
          }
        } catch (e) {
          const seen = sel
            ? await page
                .locator(sel)
                .allInnerTexts()
                .catch(() => [])
            : [];
          problems.push(`${where}: step ${step} failed (${String(e).split("\n")[0]}); ${sel} shows ${JSON.stringify(seen.slice(0, 8))}`);
          break;
        }
      }
      let visible = null;
      if (values["count-visible"]) {
        visible = await page.evaluate((sel) => {
          const inside = (r, box) =>
            r.top >= box.top - 0.5 && r.bottom <= box.bottom + 0.5 && r.left >= box.left - 0.5 && r.right <= box.right + 0.5;
          const view = { top: 0, left: 0, bottom: window.innerHeight, right: window.innerWidth };
          let n = 0;
          for (const e of document.querySelectorAll(sel)) {
            const r = e.getBoundingClientRect();
            if (r.height === 0 || !inside(r, view)) continue;
            let box = e.parentElement;
            let ok = true;
            while (box && box !== document.body) {
              const st = getComputedStyle(box);
              if (/(auto|scroll|hidden)/.test(st.overflowY) && !inside(r, box.getBoundingClientRect())) ok = false;
              box = box.parentElement;
            }
            if (ok) n += 1;
          }
          return n;
        }, values["count-visible"]);
      }
      if (values.axe) {
        // Evaluated through the debugging protocol, which the page's CSP does not govern.
        await page.evaluate(axeSource);
        const found = await page.evaluate(async () => {
          const r = await globalThis.axe.run(document, { resultTypes: ["violations"] });
          return r.violations
            .filter((v) => v.impact === "serious" || v.impact === "critical")
            .map(
              (v) =>
                `${v.impact} ${v.id}: ${v.help} (${v.nodes.length}: ${v.nodes
                  .slice(0, 3)
                  .map((n) => n.target.join(" "))
                  .join(", ")})`,
            );
        });
        for (const f of found) problems.push(`${where}: axe: ${f}`);
      }
      const text = await page.locator("body").innerText();
      for (const want of values.expect) {
        if (!text.includes(want)) problems.push(`${where}: "${want}" not shown`);
      }
      for (const pair of values["expect-in"]) {
        const at = pair.indexOf("=>");
        const sel = pair.slice(0, at);
        const want = pair.slice(at + 2);
        const loc = page.locator(sel).first();
        const got = (await loc.count()) > 0 ? await loc.innerText() : null;
        if (got === null) problems.push(`${where}: nothing matches ${sel}`);
        else if (!got.includes(want)) problems.push(`${where}: ${sel} shows ${JSON.stringify(got)}, not ${JSON.stringify(want)}`);
      }
      for (const pair of values["expect-all"]) {
        const at = pair.indexOf("=>");
        const sel = pair.slice(0, at);
        const want = pair.slice(at + 2);
        const texts = await page.locator(sel).allInnerTexts();
        const wrong = texts.filter((t) => !t.includes(want));
        if (texts.length === 0) problems.push(`${where}: nothing matches ${sel}`);
        else if (wrong.length > 0)
          problems.push(
            `${where}: ${wrong.length} of ${texts.length} ${sel} do not show ${JSON.stringify(want)}, e.g. ${JSON.stringify(wrong[0])}`,
          );
      }
      for (const pair of values["absent-text"]) {
        const at = pair.indexOf("=>");
        const sel = pair.slice(0, at);
        const want = pair.slice(at + 2);
        const texts = await page.locator(sel).allInnerTexts();
        const found = texts.filter((t) => t.includes(want));
        if (found.length > 0)
          problems.push(`${where}: ${found.length} ${sel} show ${JSON.stringify(want)}, e.g. ${JSON.stringify(found[0])}`);
      }
      for (const sel of values["absent-selector"]) {
        const n = await page.locator(sel).count();
        if (n > 0) problems.push(`${where}: ${n} element(s) matching ${sel}: injected?`);
      }
      const fonts = {};
      if (values["fonts-for"].length > 0) {
        const cdp = await page.context().newCDPSession(page);
        await cdp.send("DOM.enable");
        await cdp.send("CSS.enable");
        await cdp.send("DOM.getDocument", { depth: -1 });
        for (const text of values["fonts-for"]) {
          const { searchId, resultCount } = await cdp.send("DOM.performSearch", { query: text });
          const { nodeIds } =
            resultCount > 0 ? await cdp.send("DOM.getSearchResults", { searchId, fromIndex: 0, toIndex: resultCount }) : { nodeIds: [] };
          fonts[text] = [];
          for (const nodeId of nodeIds) {
            // The element holding the text (a search gives text nodes).
            const { object } = await cdp.send("DOM.resolveNode", { nodeId });
            const parent = await cdp.send("Runtime.callFunctionOn", {
              objectId: object.objectId,
              functionDeclaration: "function () { return this.nodeType === 3 ? this.parentElement : this; }",
            });
            const target = parent.result.objectId
              ? (await cdp.send("DOM.requestNode", { objectId: parent.result.objectId })).nodeId
              : undefined;
            if (target === undefined) continue;
            const { fonts: used } = await cdp.send("CSS.getPlatformFontsForNode", { nodeId: target });
            fonts[text].push(...used.map((f) => ({ familyName: f.familyName, glyphCount: f.glyphCount })));
          }
          if (fonts[text].length === 0) problems.push(`${where}: "${text}" is not on the page`);
        }
        await cdp.detach();
      }
      for (const pair of values.download) {
        const at = pair.indexOf("=>");
        const [download] = await Promise.all([page.waitForEvent("download"), page.locator(pair.slice(0, at)).first().click()]);
        await download.saveAs(pair.slice(at + 2));
      }
      const applied = await page.evaluate(() => document.documentElement.dataset.theme);
      if (applied !== theme) problems.push(`${where}: theme ${applied ?? "none"} applied`);
      const name = path.replace(/[^a-z0-9]+/gi, "_").replace(/^_+|_+$/g, "") || "live";
      const shot = join(values.out, `${name}-${theme}${values.viewport === "1920x1080" ? "" : `-${values.viewport}`}.png`);
      await page.screenshot({ path: shot, fullPage: values.viewport === "1920x1080" });
      report.pages.push({ path, theme, ready_ms: readyMs, screenshot: shot, visible, fonts });
      report.problems.push(...problems);
      await ctx.close();
    }
  }
} finally {
  await browser.close();
}
// Exit once the report is written: a report over 64 KiB on a pipe is written in parts.
process.stdout.write(`${JSON.stringify(report, null, 2)}\n`, () => process.exit(report.problems.length === 0 ? 0 : 1));
