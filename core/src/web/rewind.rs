//! `/_mispdash/rewind` and `/_mispdash/rewind.csv`: the live view as it was, read from the
//! rewind stream (`keys::REWIND`, written by the dispatcher; see [`crate::rewind`]).
//!
//! A window (`from`, `to`, epoch seconds) answers the live rows and map points handled in it,
//! newest first, in the shapes the live page already renders (`/_logs` rows, `/_maps`
//! points), each with its stream id and time. What is shown passes the same tests as the live
//! views: the live log's filters (the `filters` cookie, and the page's own `f` parameters) and,
//! with access control on, MISP's rules for the signed-in user (the facts the dispatcher
//! recorded with each entry). The CSV export is a window's rows, oldest first, as text.
//!
//! Reads are bounded: an answer holds at most [`MAX_LIMIT`] rows and points (the CSV
//! [`CSV_MAX_ROWS`]), and looks at no more than [`SCAN_MAX`] rows and points (the CSV
//! [`CSV_SCAN_MAX`]); `more` (the CSV's `X-Mispdash-Complete: false`) says when the window
//! holds more than was looked at.

use super::error::WebError;
use super::live::{Filters, LazyLog, LogFormat, Lookup};
use super::params::Params;
use super::state::AppState;
use crate::acl::{Audience, Policy, Viewer};
use crate::keys;
use crate::rewind::{EntryId, Stored};
use serde_json::{Map, Value};

/// Rows (and points) a JSON answer holds by default: what the live log shows.
pub const DEFAULT_LIMIT: usize = 300;
/// The most rows (and points) one JSON answer holds.
pub const MAX_LIMIT: usize = 1000;
/// The most rows and points one JSON answer reads from the stream.
pub const SCAN_MAX: usize = 200_000;
/// The most rows one CSV export holds (about 15 MB of text).
pub const CSV_MAX_ROWS: usize = 50_000;
/// The most rows and points one CSV export reads from the stream.
pub const CSV_SCAN_MAX: usize = 1_000_000;
/// Entries read per round trip: with [`crate::rewind::MAX_PAIRS`] rows or points each, at most
/// 10,000 of them (a few MB).
const PAGE: usize = 200;
/// The most page filters (`f`) one request may give.
const MAX_PAGE_FILTERS: usize = 20;

/// Why a window cannot be answered; turned into an HTTP answer at the edge
/// (`From<WindowError> for WebError`).
#[derive(Debug, thiserror::Error)]
pub enum WindowError {
    /// `[mispdash] rewind_hours = 0`: nothing is kept.
    #[error("rewinding is off on this dashboard ([mispdash] rewind_hours = 0)")]
    Off,
    /// A parameter we do not accept; the text names it.
    #[error("{0}")]
    BadWindow(String),
    #[error(transparent)]
    Redis(#[from] redis::RedisError),
    /// Redis cannot be reached (down, restarting): the caller may retry.
    #[error("{0}")]
    Unavailable(String),
    /// The stream answered something that is not a stream (another program's key).
    #[error("the rewind stream cannot be read: {0}")]
    Unreadable(String),
}

impl From<WindowError> for WebError {
    fn from(e: WindowError) -> Self {
        match e {
            WindowError::Off => WebError::Refused {
                status: axum::http::StatusCode::NOT_FOUND,
                reason: e.to_string(),
            },
            WindowError::BadWindow(m) => WebError::BadRequest(m),
            WindowError::Redis(r) => WebError::from(r),
            WindowError::Unavailable(m) => WebError::Unavailable(m),
            WindowError::Unreadable(m) => WebError::Internal(format!("rewind stream: {m}")),
        }
    }
}

/// One of the page's filters (`f=<path>~<eq|ne|has>~<value>`, the live page's URL format).
#[derive(Debug, Clone, PartialEq)]
pub struct PageFilter {
    path: Vec<String>,
    dotted: String,
    op: FilterOp,
    value: String,
}

#[derive(Debug, Clone, Copy, PartialEq)]
enum FilterOp {
    Eq,
    Ne,
    Has,
}

impl PageFilter {
    pub fn parse(s: &str) -> Result<PageFilter, WindowError> {
        let mut parts = s.splitn(3, '~');
        let (Some(path), Some(op), Some(value)) = (parts.next(), parts.next(), parts.next()) else {
            return Err(WindowError::BadWindow(format!(
                "f={s:?}: a filter is <path>~<eq|ne|has>~<value>"
            )));
        };
        let op = match op {
            "eq" => FilterOp::Eq,
            "ne" => FilterOp::Ne,
            "has" => FilterOp::Has,
            other => {
                return Err(WindowError::BadWindow(format!(
                    "f: unknown operator {other:?} (eq, ne, has)"
                )))
            }
        };
        if path.is_empty() || value.is_empty() {
            return Err(WindowError::BadWindow(format!(
                "f={s:?}: a filter names a path and a value"
            )));
        }
        Ok(PageFilter {
            path: path.split('.').map(str::to_string).collect(),
            dotted: path.to_string(),
            op,
            value: value.to_string(),
        })
    }
}

/// The text a cell shows (as the page's `cellText`): a tag list by its tags' names, a string
/// as it is, anything else as JSON.
pub fn cell_text(v: &Value) -> String {
    match v {
        Value::Null => String::new(),
        Value::String(s) => s.clone(),
        Value::Object(m) if m.contains_key("name") => {
            let list: Value = match m.get("data") {
                Some(Value::String(s)) => serde_json::from_str(s).unwrap_or(Value::Null),
                Some(other) => other.clone(),
                None => Value::Null,
            };
            match list {
                Value::Array(tags) => tags
                    .iter()
                    .map(|t| t.get("name").and_then(Value::as_str).unwrap_or(""))
                    .collect::<Vec<_>>()
                    .join(", "),
                _ => String::new(),
            }
        }
        other => other.to_string(),
    }
}

/// Who the answer is for: with access control on, the viewer and MISP's settings.
pub struct Access<'a> {
    pub viewer: &'a Viewer,
    pub policy: &'a Policy,
    /// Who may see a row whose entry carries no facts (written while the dispatcher did not
    /// record them): decided from its content, as the live log decides.
    pub fallback: &'a (dyn Fn(&str, &Policy) -> Audience + Sync),
}

/// What one answer keeps of the entries it is offered, newest first.
pub struct Selection<'a> {
    fmt: &'a LogFormat,
    /// The paths each column shows, for `has` filters (the page tests a column's text).
    columns: Vec<Vec<String>>,
    filters: &'a Filters,
    page_filters: &'a [PageFilter],
    access: Option<Access<'a>>,
    rows_max: usize,
    points_max: usize,
    /// Points older than this (milliseconds) are not kept.
    points_from_ms: u64,
    pub rows: Vec<Value>,
    pub points: Vec<Value>,
    pub scanned: usize,
    /// Rows kept so far, including those a caller took out of `rows` while scanning (the CSV
    /// writes each page's rows and drops them, so that an export's memory is one page's).
    pub kept_rows: usize,
}

impl<'a> Selection<'a> {
    pub fn new(
        fmt: &'a LogFormat,
        filters: &'a Filters,
        page_filters: &'a [PageFilter],
        access: Option<Access<'a>>,
    ) -> Selection<'a> {
        Selection {
            fmt,
            columns: fmt
                .header()
                .iter()
                .map(|h| h.split(" | ").map(str::to_string).collect())
                .collect(),
            filters,
            page_filters,
            access,
            rows_max: DEFAULT_LIMIT,
            points_max: DEFAULT_LIMIT,
            points_from_ms: 0,
            rows: Vec::new(),
            points: Vec::new(),
            scanned: 0,
            kept_rows: 0,
        }
    }

    /// At most `rows` rows and `points` points, none older than `points_from_ms`.
    pub fn bounded(mut self, rows: usize, points: usize, points_from_ms: u64) -> Self {
        self.rows_max = rows;
        self.points_max = points;
        self.points_from_ms = points_from_ms;
        self
    }

    /// Whether nothing more is wanted from entries older than `id`.
    pub fn full(&self, id: EntryId) -> bool {
        self.kept_rows >= self.rows_max
            && (self.points.len() >= self.points_max || id.ms < self.points_from_ms)
    }

    /// Looks at one entry (entries come newest first, or oldest first for the CSV).
    pub fn offer(&mut self, id: EntryId, field: &str, value: &str) {
        self.scanned += 1;
        match Stored::parse(field, value) {
            Some(Stored::Row(r)) if self.kept_rows < self.rows_max => {
                let text = r.log.get();
                let log = LazyLog::parse(text);
                if !self.filters.is_empty() && !self.filters.pass(&log) {
                    return;
                }
                if let Some(a) = &self.access {
                    let audience = match &r.facts {
                        Some(f) => Audience::decide(f, a.policy),
                        None => (a.fallback)(text, a.policy),
                    };
                    if !audience.admits(a.viewer) {
                        return;
                    }
                }
                let row = self.fmt.row(&log);
                if !self.page_filters.iter().all(|f| self.passes(f, &log, &row)) {
                    return;
                }
                let mut e = Map::new();
                e.insert("id".into(), Value::String(id.to_string()));
                e.insert("at".into(), Value::from(id.epoch()));
                e.insert("log".into(), row);
                e.insert("name".into(), Value::String(r.name));
                e.insert("zmqName".into(), r.zmq_name);
                self.rows.push(Value::Object(e));
                self.kept_rows += 1;
            }
            Some(Stored::Point(p))
                if self.points.len() < self.points_max && id.ms >= self.points_from_ms =>
            {
                if let Some(a) = &self.access {
                    let seen = a.viewer.site_admin
                        || p.facts
                            .as_ref()
                            .is_some_and(|f| Audience::decide(f, a.policy).admits(a.viewer));
                    if !seen {
                        return;
                    }
                }
                let mut e = Map::new();
                e.insert("id".into(), Value::String(id.to_string()));
                e.insert("at".into(), Value::from(id.epoch()));
                e.insert("point".into(), p.point);
                self.points.push(Value::Object(e));
            }
            _ => {}
        }
    }

    /// A page filter: `eq` and `ne` as the `filters` cookie tests a path; `has` as the page
    /// tests the text of the column that shows the path (case-insensitive), or the path's own
    /// value when no column shows it.
    fn passes(&self, f: &PageFilter, log: &impl Lookup, row: &Value) -> bool {
        match f.op {
            FilterOp::Eq | FilterOp::Ne => {
                let want = match f.op {
                    FilterOp::Ne => format!("!{}", f.value),
                    _ => f.value.clone(),
                };
                let mut m = Map::new();
                m.insert(f.dotted.clone(), Value::String(want));
                Filters::from_json(&Value::Object(m).to_string()).pass(log)
            }
            FilterOp::Has => {
                let text = match self.columns.iter().position(|c| c.contains(&f.dotted)) {
                    Some(i) => row.get(i.to_string()).map(cell_text).unwrap_or_default(),
                    None => log.at(&f.path).map(|v| cell_text(&v)).unwrap_or_default(),
                };
                text.to_lowercase().contains(&f.value.to_lowercase())
            }
        }
    }
}

/// A window of the stream, in milliseconds, both ends included.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Window {
    pub from_ms: u64,
    pub to_ms: u64,
}

/// Epoch seconds as a parameter gives them (fractions allowed).
fn seconds(p: &Params, name: &str) -> Result<Option<f64>, WindowError> {
    match p.get(name) {
        None | Some("") => Ok(None),
        Some(v) => v
            .trim()
            .parse::<f64>()
            .ok()
            .filter(|t| t.is_finite() && *t >= 0.0 && *t < 1e12)
            .map(Some)
            .ok_or_else(|| WindowError::BadWindow(format!("{name}={v:?} is not epoch seconds"))),
    }
}

/// A count parameter from 0 to `max`.
fn count(p: &Params, name: &str, default: usize, max: usize) -> Result<usize, WindowError> {
    match p.get(name) {
        None | Some("") => Ok(default),
        Some(v) => v
            .trim()
            .parse::<usize>()
            .ok()
            .filter(|n| *n <= max)
            .ok_or_else(|| {
                WindowError::BadWindow(format!("{name}={v:?}: a whole number from 0 to {max}"))
            }),
    }
}

/// `from` and `to` (epoch seconds; by default the kept hours up to now).
pub fn window(p: &Params, now: f64, hours: u32) -> Result<Window, WindowError> {
    let to = seconds(p, "to")?.unwrap_or(now);
    let from = seconds(p, "from")?.unwrap_or((to - f64::from(hours) * 3600.0).max(0.0));
    if from > to {
        return Err(WindowError::BadWindow(format!(
            "from={from} is after to={to}"
        )));
    }
    Ok(Window {
        from_ms: (from * 1000.0).ceil() as u64,
        to_ms: (to * 1000.0).floor() as u64,
    })
}

/// The page filters of a request (`f`, repeated).
pub fn page_filters(p: &Params) -> Result<Vec<PageFilter>, WindowError> {
    let filters: Vec<PageFilter> = p
        .get_all("f")
        .map(PageFilter::parse)
        .collect::<Result<_, _>>()?;
    if filters.len() > MAX_PAGE_FILTERS {
        return Err(WindowError::BadWindow(format!(
            "at most {MAX_PAGE_FILTERS} filters"
        )));
    }
    Ok(filters)
}

type Page = Vec<(String, Vec<String>)>;

/// Reads `w` a page at a time, newest first (`newest_first`) or oldest first, offering each
/// row and point to `sel` until it is full or `scan_max` were offered; returns whether entries of
/// the window were left unread.
async fn scan(
    c: &mut redis::aio::ConnectionManager,
    w: Window,
    newest_first: bool,
    scan_max: usize,
    sel: &mut Selection<'_>,
    after_page: &mut (dyn FnMut(&mut Selection<'_>) + Send),
) -> Result<bool, WindowError> {
    let mut bound: Option<String> = None;
    loop {
        let (cmd, first, last) = match (newest_first, &bound) {
            (true, None) => ("XREVRANGE", w.to_ms.to_string(), w.from_ms.to_string()),
            (true, Some(b)) => ("XREVRANGE", format!("({b}"), w.from_ms.to_string()),
            (false, None) => ("XRANGE", w.from_ms.to_string(), w.to_ms.to_string()),
            (false, Some(b)) => ("XRANGE", format!("({b}"), w.to_ms.to_string()),
        };
        let page: Page = redis::cmd(cmd)
            .arg(keys::REWIND)
            .arg(first)
            .arg(last)
            .arg("COUNT")
            .arg(PAGE)
            .query_async(c)
            .await
            .map_err(read_error)?;
        let n = page.len();
        let mut stop = false;
        for (id, fields) in page {
            let Some(entry) = EntryId::parse(&id) else {
                continue;
            };
            if newest_first && sel.full(entry) {
                stop = true;
                break;
            }
            // An entry's pairs are oldest first; offered in the scan's order.
            let pairs = fields.chunks_exact(2).enumerate();
            let pairs: Box<dyn Iterator<Item = _>> = if newest_first {
                Box::new(pairs.rev())
            } else {
                Box::new(pairs)
            };
            for (part, pair) in pairs {
                if newest_first && sel.full(entry) {
                    stop = true;
                    break;
                }
                sel.offer(entry.part(part), &pair[0], &pair[1]);
                if (!newest_first && sel.kept_rows >= sel.rows_max) || sel.scanned >= scan_max {
                    stop = true;
                    break;
                }
            }
            if stop {
                break;
            }
            bound = Some(id);
        }
        after_page(sel);
        if stop {
            return Ok(true);
        }
        if n < PAGE {
            return Ok(false);
        }
    }
}

/// A failed read of the stream: a key of another type (or entries of another shape) is
/// unreadable, anything else is Redis's.
fn read_error(e: redis::RedisError) -> WindowError {
    match e.kind() {
        redis::ErrorKind::TypeError => WindowError::Unreadable(e.to_string()),
        _ if e.code() == Some("WRONGTYPE") => WindowError::Unreadable(e.to_string()),
        _ => WindowError::Redis(e),
    }
}

/// The shared connection to the statistics database.
async fn connect(st: &AppState) -> Result<redis::aio::ConnectionManager, WindowError> {
    st.data.conn().await.map_err(|e| match e {
        WebError::Unavailable(m) => WindowError::Unavailable(m),
        other => WindowError::Unavailable(other.to_string()),
    })
}

/// Who an answer is for, from the request's viewer (`None`: everything).
fn access<'a>(
    st: &'a AppState,
    viewer: Option<&'a Viewer>,
    fallback: &'a (dyn Fn(&str, &Policy) -> Audience + Sync),
) -> Option<Access<'a>> {
    match (viewer, st.acl.as_ref()) {
        (Some(viewer), Some(policy)) => Some(Access {
            viewer,
            policy,
            fallback,
        }),
        _ => None,
    }
}

/// `/_mispdash/rewind?from=&to=&limit=&points=&points_from=&f=…`: the rows and points of a
/// window, newest first (see the module's documentation).
pub async fn window_json(
    st: &AppState,
    p: &Params,
    filters: &Filters,
    viewer: Option<&Viewer>,
) -> Result<Value, WindowError> {
    let hours = st.cfg.rewind.hours;
    if hours == 0 {
        return Err(WindowError::Off);
    }
    let now = st.clock.now_f64();
    let w = window(p, now, hours)?;
    let limit = count(p, "limit", DEFAULT_LIMIT, MAX_LIMIT)?;
    let points = count(p, "points", limit, MAX_LIMIT)?;
    let points_from_ms = match seconds(p, "points_from")? {
        Some(t) => ((t * 1000.0).ceil() as u64).max(w.from_ms),
        None => w.from_ms,
    };
    let page_filters = page_filters(p)?;
    let known = &st.hub.live.known_events;
    let fallback = |text: &str, policy: &Policy| known.audience(text, policy);
    let mut sel = Selection::new(
        &st.cfg.log_format,
        filters,
        &page_filters,
        access(st, viewer, &fallback),
    )
    .bounded(limit, points, points_from_ms);
    let mut c = connect(st).await?;
    // A page that asks only where the kept past begins (`limit=0&points=0`, every few
    // minutes) reads no entry of the window: whether it holds any is one `XREVRANGE … COUNT 1`.
    let more = if limit == 0 && points == 0 {
        let newest: Page = redis::cmd("XREVRANGE")
            .arg(keys::REWIND)
            .arg(w.to_ms)
            .arg(w.from_ms)
            .arg("COUNT")
            .arg(1)
            .query_async(&mut c)
            .await
            .map_err(read_error)?;
        !newest.is_empty()
    } else {
        scan(&mut c, w, true, SCAN_MAX, &mut sel, &mut |_| {}).await?
    };
    let oldest: Vec<(String, Vec<String>)> = redis::cmd("XRANGE")
        .arg(keys::REWIND)
        .arg("-")
        .arg("+")
        .arg("COUNT")
        .arg(1)
        .query_async(&mut c)
        .await
        .unwrap_or_default();
    let oldest = oldest
        .first()
        .and_then(|(id, _)| EntryId::parse(id))
        .map(|id| id.epoch());
    Ok(serde_json::json!({
        "from": w.from_ms as f64 / 1000.0,
        "to": w.to_ms as f64 / 1000.0,
        "now": now,
        "hours": hours,
        "oldest": oldest,
        "rows": sel.rows,
        "points": sel.points,
        "more": more,
    }))
}

/// A cell as the export writes it: one a spreadsheet would run as a formula (`=`, `+`, `-`,
/// `@`, tab, carriage return first) gets a `'` first, as the pages' exports do (papaparse's
/// `escapeFormulae`); the values come from MISP. The `csv` writer quotes what needs it.
fn defused(s: String) -> String {
    if s.starts_with(['=', '+', '-', '@', '\t', '\r']) {
        format!("'{s}")
    } else {
        s
    }
}

/// A window's rows as CSV, oldest first, and whether it holds the whole window.
pub struct Csv {
    pub text: String,
    pub complete: bool,
    pub rows: usize,
}

/// `/_mispdash/rewind.csv?from=&to=&f=…`: a window's rows as CSV text, oldest first: when
/// (the server's zone, ISO 8601), epoch seconds, feed, kind, then the live log's columns as
/// its cells read (tags by name).
pub async fn window_csv(
    st: &AppState,
    p: &Params,
    filters: &Filters,
    viewer: Option<&Viewer>,
) -> Result<Csv, WindowError> {
    let hours = st.cfg.rewind.hours;
    if hours == 0 {
        return Err(WindowError::Off);
    }
    let w = window(p, st.clock.now_f64(), hours)?;
    let page_filters = page_filters(p)?;
    let known = &st.hub.live.known_events;
    let fallback = |text: &str, policy: &Policy| known.audience(text, policy);
    let mut sel = Selection::new(
        &st.cfg.log_format,
        filters,
        &page_filters,
        access(st, viewer, &fallback),
    )
    .bounded(CSV_MAX_ROWS, 0, u64::MAX);
    let mut c = connect(st).await?;
    let fmt = &st.cfg.log_format;
    let mut out = CsvText::new(fmt);
    let more = scan(&mut c, w, false, CSV_SCAN_MAX, &mut sel, &mut |sel| {
        for r in sel.rows.drain(..) {
            out.row(&r);
        }
    })
    .await?;
    Ok(Csv {
        rows: sel.kept_rows,
        text: out.finish(),
        complete: !more,
    })
}

/// A CSV export being written: the header, then rows as they are selected (`csv` quotes what
/// needs it; [`defused`] keeps a spreadsheet from running a cell).
struct CsvText {
    out: csv::Writer<Vec<u8>>,
    columns: usize,
}

impl CsvText {
    fn new(fmt: &LogFormat) -> CsvText {
        let mut out = csv::WriterBuilder::new()
            .terminator(csv::Terminator::CRLF)
            .from_writer(Vec::with_capacity(64 * 1024));
        let mut header = vec![
            "time".to_string(),
            "epoch".into(),
            "feed".into(),
            "kind".into(),
        ];
        header.extend(fmt.header());
        let columns = header.len() - 4;
        // Writing to memory fails only on a broken writer, which `Vec` is not.
        let _ = out.write_record(&header);
        CsvText { out, columns }
    }

    /// One selected row (its `at`, `zmqName`, `name` and `log`).
    fn row(&mut self, r: &Value) {
        let at = r.get("at").and_then(Value::as_f64).unwrap_or(0.0);
        let when = crate::clock::local_datetime(at)
            .map(|d| d.format("%Y-%m-%dT%H:%M:%S%.3f%:z").to_string())
            .unwrap_or_default();
        let kind = match r.get("name").and_then(Value::as_str) {
            Some("ObjectAttribute") => "object",
            _ => "attribute",
        };
        let mut cells = vec![
            when,
            format!("{at:.3}"),
            r.get("zmqName").map(cell_text).unwrap_or_default(),
            kind.to_string(),
        ];
        let log = r.get("log");
        for i in 0..self.columns {
            cells.push(
                log.and_then(|l| l.get(i.to_string()))
                    .map(cell_text)
                    .unwrap_or_default(),
            );
        }
        let _ = self.out.write_record(cells.into_iter().map(defused));
    }

    fn finish(self) -> String {
        let bytes = self.out.into_inner().unwrap_or_default();
        String::from_utf8(bytes).unwrap_or_default()
    }
}

/// The CSV text of selected rows (their `at`, `zmqName`, `name` and `log`), oldest first.
pub fn csv_of(fmt: &LogFormat, rows: &[Value]) -> String {
    let mut out = CsvText::new(fmt);
    for r in rows {
        out.row(r);
    }
    out.finish()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::acl::{EventFacts, Facts, ItemFacts};
    use serde_json::json;

    fn fmt() -> LogFormat {
        let order: Value =
            serde_json::from_str(crate::config::DEFAULT_FIELDNAME_ORDER).expect("default");
        LogFormat::new(&order, "||")
    }

    fn facts(org: u64, distribution: u8) -> Facts {
        Facts {
            event: EventFacts {
                id: Some(org * 100),
                org_id: Some(org),
                distribution: Some(distribution),
                sharing_group_id: None,
                published: Some(true),
            },
            attribute: Some(ItemFacts {
                distribution: Some(5),
                sharing_group_id: None,
            }),
            ..Default::default()
        }
    }

    /// A row entry as the dispatcher writes it.
    fn row(value: &str, kind: &str, f: Option<Facts>) -> String {
        let log = json!({"Event": {"id": "7"}, "Attribute": {"timestamp": "1795175000",
            "category": "Network activity", "type": kind, "value": value, "comment": "c",
            "Tag": [{"name": "tlp:green", "colour": "#33ff00"}]}});
        let facts = f.map(|f| serde_json::to_string(&f).expect("facts"));
        crate::rewind::row_entry("Attribute", "misp1", &log, facts.as_deref())
    }

    fn point(value: &str, f: Option<Facts>) -> String {
        let facts = f.map(|f| serde_json::to_string(&f).expect("facts"));
        crate::rewind::point_entry(
            &format!(
                r#"{{"coord": {{"lat": 49.5, "lon": 6.0}}, "categ": "Network activity", "value": "{value}"}}"#
            ),
            facts.as_deref(),
        )
    }

    fn id(ms: u64, seq: u64) -> EntryId {
        EntryId { ms, seq, part: 0 }
    }

    fn values(rows: &[Value]) -> Vec<String> {
        rows.iter()
            .map(|r| {
                r.get("log")
                    .and_then(|l| l.get("5"))
                    .and_then(Value::as_str)
                    .unwrap_or("")
                    .to_string()
            })
            .collect()
    }

    #[test]
    fn a_window_keeps_the_newest_rows_up_to_its_limit_and_the_points_of_its_span() {
        let f = fmt();
        let none = Filters::default();
        let mut sel = Selection::new(&f, &none, &[], None).bounded(2, 5, 2_000);
        // Newest first, as XREVRANGE gives them.
        let entries = [
            (id(3_000, 1), "row", row("c", "ip-dst", None)),
            (id(3_000, 0), "point", point("c", None)),
            (id(2_500, 0), "row", row("b", "ip-dst", None)),
            (id(2_000, 0), "point", point("b", None)),
            (id(1_500, 0), "point", point("a", None)),
            (id(1_000, 0), "row", row("a", "ip-dst", None)),
        ];
        let mut stopped_at = None;
        for (i, field, value) in &entries {
            if sel.full(*i) {
                stopped_at = Some(*i);
                break;
            }
            sel.offer(*i, field, value);
        }
        assert_eq!(values(&sel.rows), vec!["c||c", "b||c"]);
        assert_eq!(sel.points.len(), 2, "the points from 2.000 s on");
        assert_eq!(stopped_at, Some(id(1_500, 0)), "nothing older was wanted");
        let first = &sel.rows[0];
        assert_eq!(first["id"], json!("3000-1"));
        assert_eq!(first["at"], json!(3.0));
        assert_eq!(first["name"], json!("Attribute"));
        assert_eq!(first["zmqName"], json!("misp1"));
        assert_eq!(
            first["log"],
            json!({"0": "2026-11-20 11:43:20", "1": "7",
                "2": {"name": "Tag", "data": "[{\"name\": \"tlp:green\", \"colour\": \"#33ff00\"}]"},
                "3": "Network activity", "4": "ip-dst", "5": "c||c"}),
            "the row /_logs gives"
        );
        assert_eq!(sel.points[1]["point"]["value"], json!("b"));
    }

    #[test]
    fn filters_of_the_cookie_and_of_the_page_apply() {
        let f = fmt();
        let cookie = Filters::from_json(r#"{"Attribute.type": "!url"}"#);
        let page = vec![
            PageFilter::parse("Attribute.value~has~EXAMPLE").expect("filter"),
            PageFilter::parse("Attribute.category~eq~Network activity").expect("filter"),
        ];
        let mut sel = Selection::new(&f, &cookie, &page, None).bounded(10, 10, 0);
        for (i, (v, t)) in [
            ("www.example.org", "domain"),
            ("example.com/x", "url"),
            ("other.org", "domain"),
            ("c", "ip-dst"),
        ]
        .iter()
        .enumerate()
        {
            sel.offer(id(1_000, i as u64), "row", &row(v, t, None));
        }
        // "contains" reads the column's whole text: the comment is in the value's column.
        sel.offer(id(1_000, 9), "row", &row("x", "domain", None));
        assert_eq!(values(&sel.rows), vec!["www.example.org||c"]);
        let tag = PageFilter::parse("Attribute.Tag~has~GREEN").expect("filter");
        let none = Filters::default();
        let mut sel =
            Selection::new(&f, &none, std::slice::from_ref(&tag), None).bounded(10, 10, 0);
        sel.offer(id(1, 0), "row", &row("v", "domain", None));
        assert_eq!(sel.rows.len(), 1, "tags by name");
        for bad in ["x", "a~is~b", "~eq~b", "a~eq~"] {
            assert!(PageFilter::parse(bad).is_err(), "{bad}");
        }
    }

    /// With access control, a user gets the rows and points MISP would show them: their
    /// organisation's, others' by distribution; a site admin everything; a point without facts
    /// only site admins; a row without facts as its content says (here: the fallback).
    #[test]
    fn access_control_applies_to_rewound_rows_and_points() {
        let f = fmt();
        let none = Filters::default();
        let policy = Policy::default();
        let fallback = |_: &str, _: &Policy| Audience::admins_only();
        let entries = [
            (
                id(9, 0),
                "row",
                row("org1-only", "domain", Some(facts(1, 0))),
            ),
            (
                id(8, 0),
                "row",
                row("org2-only", "domain", Some(facts(2, 0))),
            ),
            (
                id(7, 0),
                "row",
                row("community", "domain", Some(facts(2, 1))),
            ),
            (id(6, 0), "row", row("unknown", "domain", None)),
            (id(5, 0), "point", point("p-org1", Some(facts(1, 0)))),
            (id(4, 0), "point", point("p-org2", Some(facts(2, 0)))),
            (id(3, 0), "point", point("p-unknown", None)),
        ];
        let seen = |v: Viewer| {
            let mut sel = Selection::new(
                &f,
                &none,
                &[],
                Some(Access {
                    viewer: &v,
                    policy: &policy,
                    fallback: &fallback,
                }),
            )
            .bounded(10, 10, 0);
            for (i, field, value) in &entries {
                sel.offer(*i, field, value);
            }
            let points: Vec<String> = sel
                .points
                .iter()
                .map(|p| p["point"]["value"].as_str().unwrap_or("").to_string())
                .collect();
            (values(&sel.rows), points)
        };
        let user = |org: u64, admin: bool| Viewer {
            org_id: org,
            site_admin: admin,
            sharing_groups: Default::default(),
        };
        assert_eq!(
            seen(user(1, false)),
            (
                vec!["org1-only||c".to_string(), "community||c".into()],
                vec!["p-org1".to_string()]
            )
        );
        assert_eq!(
            seen(user(2, false)),
            (
                vec!["org2-only||c".to_string(), "community||c".into()],
                vec!["p-org2".to_string()]
            )
        );
        let (rows, points) = seen(user(3, true));
        assert_eq!((rows.len(), points.len()), (4, 3), "a site admin sees all");
    }

    #[test]
    fn windows_default_to_the_kept_hours_and_refuse_nonsense() {
        let p = |q: &str| Params::parse(Some(q)).expect("params");
        let w = window(&p(""), 100_000.5, 24).expect("window");
        assert_eq!(
            w,
            Window {
                from_ms: 13_600_500,
                to_ms: 100_000_500
            }
        );
        let w = window(&p("from=10&to=20.0015"), 0.0, 24).expect("window");
        assert_eq!(
            w,
            Window {
                from_ms: 10_000,
                to_ms: 20_001
            }
        );
        for bad in ["from=30&to=20", "to=soon", "from=-1", "to=inf", "to=NaN"] {
            assert!(
                matches!(window(&p(bad), 50.0, 24), Err(WindowError::BadWindow(_))),
                "{bad}"
            );
        }
        assert!(count(&p("limit=1001"), "limit", 300, MAX_LIMIT).is_err());
        assert_eq!(count(&p("limit=5"), "limit", 300, MAX_LIMIT).ok(), Some(5));
    }

    #[test]
    fn csv_is_text_with_formulas_neutralised() {
        let f = fmt();
        let none = Filters::default();
        let mut sel = Selection::new(&f, &none, &[], None).bounded(10, 0, u64::MAX);
        sel.offer(
            id(1_795_176_000_000, 0),
            "row",
            &row("=cmd|' /C calc'!A0", "text", None),
        );
        sel.offer(
            id(1_795_176_000_500, 0),
            "row",
            &row("<b>x</b>, \"y\"", "text", None),
        );
        let text = csv_of(&f, &sel.rows);
        let lines: Vec<&str> = text.split("\r\n").collect();
        assert_eq!(
            lines[0],
            "time,epoch,feed,kind,Attribute.timestamp,Event.id,Attribute.Tag,Attribute.category,Attribute.type,Attribute.value | Attribute.comment"
        );
        assert!(
            lines[1].ends_with(",misp1,attribute,2026-11-20 11:43:20,7,tlp:green,Network activity,text,'=cmd|' /C calc'!A0||c"),
            "{}",
            lines[1]
        );
        assert!(lines[1].contains(",1795176000.000,"), "{}", lines[1]);
        assert!(
            lines[2].ends_with(",\"<b>x</b>, \"\"y\"\"||c\""),
            "{}",
            lines[2]
        );
        assert_eq!(lines.len(), 4, "a last line break");
        // Read back as a spreadsheet would: every record whole, no cell starting a formula.
        let mut reader = csv::Reader::from_reader(text.as_bytes());
        let cells: Vec<Vec<String>> = reader
            .records()
            .map(|r| {
                r.expect("a CSV record")
                    .iter()
                    .map(str::to_string)
                    .collect()
            })
            .collect();
        assert_eq!(cells.len(), 2);
        assert_eq!(cells[0][9], "'=cmd|' /C calc'!A0||c");
        assert_eq!(cells[1][9], "<b>x</b>, \"y\"||c");
    }
}
