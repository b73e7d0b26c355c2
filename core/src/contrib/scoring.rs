//! The pure arithmetic of gamification: requirement grants, contribution status, trophy ranks
//! and awards (spec `ingest.md` §4.4–4.6), in both scoring modes.

use crate::config::{Ranking, Scoring};
use crate::rules::ContribKind;

/// Seconds in a day; requirement and counter TTLs are whole days.
pub const DAY: i64 = 86_400;

/// What the requirement conditions look at for one contribution.
#[derive(Debug, Clone, Copy)]
pub struct Facts {
    pub kind: ContribKind,
    /// Lifetime points after this contribution.
    pub total: i64,
    pub is_labeled: bool,
    pub attr_week: i64,
    pub sight_week: i64,
    pub event_week: i64,
    pub event_month: i64,
}

/// The requirements (1-based) this contribution grants, each with its TTL in seconds, in
/// ascending order.
///
/// Compatible mode evaluates the original's conditions exactly as its operator precedence
/// makes them: requirement 3 on any discussion whatever the points, 2 on an `Object` whatever
/// the points, 4 and 5 never (the original compares "now" with "now"), object attributes never.
/// Corrected mode applies each condition as written in `ranking.cfg`'s descriptions.
pub fn grants(r: &Ranking, mode: Scoring, f: &Facts) -> Vec<(usize, i64)> {
    use ContribKind::*;
    let p = |i: usize| r.requirement_points.get(i - 1).copied().unwrap_or(i64::MAX);
    let heavily = r.heavily_count;
    let year = 365 * DAY;
    let recent = r.recent_days * DAY;
    let regular = r.regularly_days * DAY;
    let t = f.total;
    // Corrected: an object's attributes are attributes.
    let is_attr = match mode {
        Scoring::Compatible => f.kind == Attribute,
        Scoring::Corrected => matches!(f.kind, Attribute | ObjectAttribute),
    };
    let sighting = f.kind == Sighting;
    let event = f.kind == Event;
    let discussion = f.kind == Discussion;
    // A contribution handled now is recent; the original's test can never be true.
    let is_recent = mode == Scoring::Corrected;
    let mut out = Vec::new();
    let mut grant = |i: usize, cond: bool, ttl: i64| {
        if cond {
            out.push((i, ttl));
        }
    };
    grant(1, t >= p(1) && sighting, year);
    match mode {
        Scoring::Compatible => {
            // `(t >= P2 and type == Attribute) or type == Object`; no handler sends "Object".
            grant(2, t >= p(2) && is_attr, year);
            // `(t >= P3 and type == Proposal) or type == Discussion`.
            grant(3, discussion, year);
        }
        Scoring::Corrected => {
            grant(2, t >= p(2) && is_attr, year);
            grant(3, t >= p(3) && discussion, year);
        }
    }
    grant(4, t >= p(4) && sighting && is_recent, recent);
    // 5 needs a proposal, which MISP's feed never announces.
    grant(6, t >= p(6) && event, year);
    grant(7, t >= p(7) && event && f.event_month >= 1, recent);
    grant(8, t >= p(8) && event && f.event_week >= 1, regular);
    grant(9, t >= p(9) && event && f.is_labeled, regular);
    grant(
        10,
        t >= p(10) && sighting && f.sight_week > heavily,
        regular,
    );
    grant(11, t >= p(11) && is_attr && f.attr_week > heavily, regular);
    // 12 needs proposals too.
    grant(13, t >= p(13) && event && f.event_week > heavily, regular);
    grant(
        14,
        t >= p(14) && event && f.event_week > heavily && f.is_labeled,
        regular,
    );
    out
}

/// The original's "contribution status": 1 for a fulfilled requirement, 0 for an unfulfilled
/// one at or below the rank (the number of fulfilled ones), -1 above it.
pub fn status(fulfilled: &[bool]) -> (usize, Vec<i8>) {
    let rank = fulfilled.iter().filter(|f| **f).count();
    let st = fulfilled
        .iter()
        .enumerate()
        .map(|(i, f)| {
            if *f {
                1
            } else if i < rank {
                0
            } else {
                -1
            }
        })
        .collect();
    (rank, st)
}

/// Requirement awards between two states.
///
/// Compatible: every level whose status rose, except the level equal to the new rank (so a
/// first requirement is announced only when its number differs from 1, and unfulfilled levels
/// that moved from -1 to 0 are announced too). Corrected: exactly the newly fulfilled ones.
pub fn status_awards(mode: Scoring, old: &[bool], new: &[bool]) -> Vec<usize> {
    match mode {
        Scoring::Compatible => {
            let (_, old_st) = status(old);
            let (rank, new_st) = status(new);
            (1..=new_st.len())
                .filter(|i| old_st.get(i - 1).copied().unwrap_or(-1) < new_st[i - 1] && *i != rank)
                .collect()
        }
        Scoring::Corrected => (1..=new.len())
            .filter(|i| new[i - 1] && !old.get(i - 1).copied().unwrap_or(false))
            .collect(),
    }
}

/// The original's `posToRank`: position `pos` (0 = leader) among `n` organisations, mapped
/// through the cumulative trophy percentages. The ratio is computed as `pos / n * 100` in IEEE
/// doubles, in that order, because the boundaries depend on it (56/100*100 > 56).
pub fn pos_to_rank(pos: usize, n: usize, cumulative: &[f64]) -> usize {
    let ratio = pos as f64 / n as f64 * 100.0;
    for i in 0..cumulative.len().saturating_sub(1) {
        if cumulative[i] < ratio && ratio <= cumulative[i + 1] {
            return i + 1;
        }
    }
    0
}

/// `[0, m1, m1+m2, ...]` of `[TrophyDifficulty] trophyMapping`.
pub fn cumulative(mapping: &[f64]) -> Vec<f64> {
    let mut out = vec![0.0];
    let mut acc = 0.0;
    for m in mapping {
        acc += m;
        out.push(acc);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn facts(kind: ContribKind, total: i64) -> Facts {
        Facts {
            kind,
            total,
            is_labeled: false,
            attr_week: 1,
            sight_week: 1,
            event_week: 1,
            event_month: 1,
        }
    }

    #[test]
    fn trophy_boundaries_follow_ieee_order() {
        let cum = cumulative(&Ranking::default().trophy_mapping);
        assert_eq!(
            cum,
            vec![0.0, 2.0, 11.0, 20.0, 30.0, 40.0, 56.0, 72.0, 82.0, 92.0, 96.0, 100.0]
        );
        assert_eq!(pos_to_rank(0, 5, &cum), 0, "the leader");
        assert_eq!(pos_to_rank(1, 2, &cum), 6, "50% -> (40, 56]");
        assert_eq!(
            pos_to_rank(56, 100, &cum),
            7,
            "56/100*100 = 56.00000000000001"
        );
        assert_eq!(pos_to_rank(99, 100, &cum), 11);
    }

    #[test]
    fn compatible_grants_reproduce_the_precedence_quirks() {
        let r = Ranking::default();
        let g = |k, t| grants(&r, Scoring::Compatible, &facts(k, t));
        assert_eq!(
            g(ContribKind::Discussion, 1),
            vec![(3, 365 * DAY)],
            "any discussion"
        );
        assert_eq!(g(ContribKind::Sighting, 2), vec![(1, 365 * DAY)]);
        assert!(
            g(ContribKind::Sighting, 100).iter().all(|(i, _)| *i != 4),
            "4 unreachable"
        );
        assert!(
            g(ContribKind::ObjectAttribute, 5000).is_empty(),
            "object attributes meet nothing"
        );
        let ev = g(ContribKind::Event, 300);
        assert_eq!(
            ev.iter().map(|(i, _)| *i).collect::<Vec<_>>(),
            vec![6, 7, 8]
        );
        assert_eq!(ev[1].1, 31 * DAY);
        assert_eq!(ev[2].1, 7 * DAY);
    }

    #[test]
    fn corrected_grants_apply_the_written_conditions() {
        let r = Ranking::default();
        let g = |k, t| grants(&r, Scoring::Corrected, &facts(k, t));
        assert!(g(ContribKind::Discussion, 1).is_empty(), "needs 8 points");
        assert_eq!(g(ContribKind::Discussion, 8), vec![(3, 365 * DAY)]);
        assert_eq!(g(ContribKind::ObjectAttribute, 4), vec![(2, 365 * DAY)]);
        assert!(g(ContribKind::Sighting, 16).iter().any(|(i, _)| *i == 4));
    }

    #[test]
    fn status_awards_in_both_modes() {
        // An org with no requirement receives requirement 1: rank 1, so compatible mode
        // announces nothing (the spec's first sighting); corrected announces 1.
        let old = vec![false; 16];
        let mut new = old.clone();
        new[0] = true;
        assert!(status_awards(Scoring::Compatible, &old, &new).is_empty());
        assert_eq!(status_awards(Scoring::Corrected, &old, &new), vec![1]);
        // First discussion: requirement 3, rank 1 -> compatible announces 3.
        let mut disc = old.clone();
        disc[2] = true;
        assert_eq!(status_awards(Scoring::Compatible, &old, &disc), vec![3]);
        // 6, 7 and 8 at once (rank 3): compatible announces 1, 2, 6, 7, 8 (spec 4.5).
        let mut ev = old.clone();
        for i in [5, 6, 7] {
            ev[i] = true;
        }
        assert_eq!(
            status_awards(Scoring::Compatible, &old, &ev),
            vec![1, 2, 6, 7, 8]
        );
        assert_eq!(status_awards(Scoring::Corrected, &old, &ev), vec![6, 7, 8]);
    }
}
