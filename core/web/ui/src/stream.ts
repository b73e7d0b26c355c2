// The one live stream of a page: every topic it needs on one connection
// (`/_mispdash/stream`), which browsers' six connections per host allow beside the page's own
// requests and a second tab. It keeps going through every kind of interruption: a network
// drop, a server restart, a proxy that answers 502/503 while the server is away (which makes a
// bare EventSource give up for good), a proxy that cuts idle streams, a stream that goes
// silent. Each time it reconnects after a backoff with jitter (a hundred wall screens must not
// stampede a server that restarts), resuming after the last event of each topic it saw; when
// the server cannot resume (a new process), it sends its newest events as a snapshot, which
// the page aligns with what it shows. What is happening is said on the page: the header's
// light, and each live panel's note ("reconnecting in 4 s", "stream lost since 14:02").

import { el } from "./dom";
import type { LightState, Shell } from "./shell";
import type { ServerClock } from "./time";

export type Topic = "live" | "map" | "contributors" | "awards";

export interface StreamHandlers {
  /** One event of a topic, as the server wrote it (JSON text). */
  event(topic: Topic, data: string): void;
  /** The server could not resume the topic (a new page, or another server process): its
   * newest events, oldest first (none for contributors and awards, whose pages read their
   * lists again). `first` is true on the page's first connection. */
  snapshot(topic: Topic, events: unknown[], first: boolean): void;
  /** The stream is back after an interruption (the page's historical panels may be stale). */
  back?(): void;
}

interface Hello {
  boot: number;
  keepalive: number;
  now: number;
  topics: Record<string, { resumed: boolean; last: number }>;
}

/** The first wait before reconnecting, and the longest, in seconds. */
const FIRST_WAIT_S = 1;
const LONGEST_WAIT_S = 15;
/** After this long without a working stream, the page says the stream is lost. */
const LOST_AFTER_S = 30;

/** How long to wait before the `failures`-th attempt: doubling up to a ceiling, each wait
 * drawn in its upper half ("equal jitter"), so that many clients spread out. */
export function backoffSeconds(failures: number, random: number): number {
  const ceiling = Math.min(LONGEST_WAIT_S, FIRST_WAIT_S * 2 ** Math.max(0, failures - 1));
  return ceiling / 2 + (ceiling / 2) * random;
}

/** The stream's path, resuming after the last ids seen. */
export function streamPath(topics: readonly Topic[], since: ReadonlyMap<Topic, number>): string {
  const q = new URLSearchParams({ topics: topics.join(",") });
  for (const t of topics) {
    const id = since.get(t);
    if (id !== undefined) q.set(t, String(id));
  }
  return `/_mispdash/stream?${q.toString()}`;
}

type State = { kind: "connecting" } | { kind: "live" } | { kind: "waiting"; retryAt: number; downSince: number };

export class LiveStream {
  private es: EventSource | null = null;
  private readonly since = new Map<Topic, number>();
  private failures = 0;
  /** Whether a hello came before, and whether the current connection is the page's first. */
  private helloSeen = false;
  private firstConnection = true;
  /** The loss was announced (once per outage). */
  private saidLost = false;
  private state: State = { kind: "connecting" };
  private watchdog = 0;
  private retry = 0;
  private readonly notes: HTMLElement[] = [];
  /** A silent stream is given up after this long (from the server's keep-alive). */
  private silenceMs = 45_000;

  constructor(
    private readonly topics: readonly Topic[],
    private readonly handlers: StreamHandlers,
    private readonly shell: Shell,
    private readonly clock: ServerClock,
  ) {
    window.setInterval(() => this.show(false), 1000);
  }

  /** A note for a live panel's title: empty while the stream is live. */
  note(): HTMLElement {
    const n = el("span", { class: "stream-note", "aria-live": "off" });
    this.notes.push(n);
    this.show(false);
    return n;
  }

  start(): void {
    this.connect();
  }

  private connect(): void {
    this.es?.close();
    const es = new EventSource(streamPath(this.topics, this.since));
    this.es = es;
    const alive = (): void => this.feedWatchdog();
    es.addEventListener("hello", (m) => {
      alive();
      this.hello(m.data as string);
    });
    es.addEventListener("snapshot", (m) => {
      alive();
      this.snapshot(m.data as string);
    });
    es.addEventListener("ping", alive);
    for (const t of this.topics) {
      es.addEventListener(t, (m) => {
        alive();
        const id = Number(m.lastEventId);
        if (Number.isFinite(id) && m.lastEventId !== "") this.since.set(t, id);
        try {
          this.handlers.event(t, m.data as string);
        } catch (e) {
          // One bad event must not stop the stream.
          console.warn(`live stream: a ${t} event was skipped`, e);
        }
      });
    }
    // Every failure is handled here, the same way: a bare EventSource retries network errors
    // on its own but gives up for good on an error answer, without backoff or a word.
    es.onerror = () => this.failed();
    this.feedWatchdog();
  }

  private hello(data: string): void {
    let h: Hello;
    try {
      h = JSON.parse(data) as Hello;
    } catch {
      this.failed();
      return;
    }
    if (Number.isFinite(h.keepalive) && h.keepalive > 0) this.silenceMs = Math.max(20_000, h.keepalive * 2500);
    for (const t of this.topics) {
      const info = h.topics[t];
      // A topic that did not resume starts again from where the server is; its snapshot
      // follows.
      if (info && !info.resumed) this.since.set(t, info.last);
    }
    const wasDown = this.state.kind === "waiting";
    this.firstConnection = !this.helloSeen;
    this.helloSeen = true;
    this.saidLost = false;
    this.failures = 0;
    this.state = { kind: "live" };
    this.show(wasDown);
    if (wasDown) this.handlers.back?.();
  }

  private snapshot(data: string): void {
    let s: { topic?: unknown; events?: unknown };
    try {
      s = JSON.parse(data) as typeof s;
    } catch {
      return;
    }
    const t = this.topics.find((x) => x === s.topic);
    if (!t) return;
    this.handlers.snapshot(t, Array.isArray(s.events) ? s.events : [], this.firstConnection);
  }

  private feedWatchdog(): void {
    window.clearTimeout(this.watchdog);
    this.watchdog = window.setTimeout(() => this.failed(), this.silenceMs);
  }

  private failed(): void {
    this.es?.close();
    this.es = null;
    window.clearTimeout(this.watchdog);
    window.clearTimeout(this.retry);
    this.failures += 1;
    const now = Date.now();
    const downSince = this.state.kind === "waiting" ? this.state.downSince : now;
    const wait = backoffSeconds(this.failures, Math.random());
    this.state = { kind: "waiting", retryAt: now + wait * 1000, downSince };
    this.show(this.failures === 1);
    this.retry = window.setTimeout(() => this.connect(), wait * 1000);
  }

  /** Updates the header's light and the panels' notes; `announce` says the change. */
  private show(announce: boolean): void {
    const s = this.state;
    let light: LightState = "ok";
    let text = "stream live";
    let note = "";
    let words: string | null = null;
    if (s.kind === "connecting") {
      light = "quiet";
      text = "stream connecting";
      note = "connecting…";
    } else if (s.kind === "waiting") {
      const inS = Math.max(0, Math.ceil((s.retryAt - Date.now()) / 1000));
      const downS = (Date.now() - s.downSince) / 1000;
      const retry = inS === 0 ? "reconnecting…" : `reconnecting in ${inS} s`;
      const lostSince = this.clock.clockTime(this.clock.now() - downS);
      if (downS >= LOST_AFTER_S) {
        light = "down";
        text = `stream lost since ${lostSince}, ${retry}`;
        if (!this.saidLost) {
          this.saidLost = true;
          announce = true;
          words = `The live stream is lost since ${lostSince}; the page keeps trying to reconnect.`;
        }
      } else {
        light = "quiet";
        text = `stream interrupted, ${retry}`;
        words = "The live stream was interrupted; the page is reconnecting.";
      }
      note = text;
    } else {
      words = "The live stream is back.";
    }
    this.shell.streamLight(light, text, announce ? words : null);
    for (const n of this.notes) {
      n.textContent = note;
      n.dataset.state = light;
    }
  }
}
