//! `ranking.cfg`: points, rank titles, requirement thresholds, trophies.
//!
//! The original always reads it from its own source tree; mispdash has built-in defaults equal
//! to the shipped file and reads a file only when `[mispdash] ranking_cfg` names one, so that an
//! installation that tuned its points keeps them.

use super::{ini::Ini, ConfigError};
use std::collections::BTreeMap;
use std::path::Path;

/// The gamification parameters.
#[derive(Debug, Clone, PartialEq)]
pub struct Ranking {
    pub default_pnts_per_contribution: i64,
    /// Points per normalised category (`network_activity` …).
    pub pnts_per_contribution: BTreeMap<String, i64>,
    /// `[HonorTrophyCateg] categ`, in order; also the datatable's categories.
    pub categories: Vec<String>,
    pub rank_multiplier: f64,
    pub level_max: u32,
    /// Titles of ranks 1..=16.
    pub rank_titles: Vec<String>,
    /// Points required by requirements 1..=16.
    pub requirement_points: Vec<i64>,
    pub heavily_count: i64,
    pub recent_days: i64,
    pub regularly_days: i64,
    /// Descriptions of honor badges 1..=N.
    pub badges: Vec<String>,
    /// `[TrophyDifficulty] trophyMapping`, as given (percentages per trophy level).
    pub trophy_mapping: Vec<f64>,
    /// Titles of trophy levels 0..=N.
    pub trophy_titles: Vec<String>,
}

const CATEGORIES: [&str; 16] = [
    "internal_reference",
    "targeting_data",
    "antivirus_detection",
    "payload_delivery",
    "artifacts_dropped",
    "payload_installation",
    "persistence_mechanism",
    "network_activity",
    "payload_type",
    "attribution",
    "external_analysis",
    "financial_fraud",
    "support_Tool",
    "social_network",
    "person",
    "other",
];

const RANK_TITLES: [&str; 16] = [
    "Ensign",
    "Junior Lieutenant",
    "Second Lieutenant",
    "Lieutenant",
    "Senior Lieutenant",
    "Captain",
    "Senior Captain",
    "Major",
    "Lieutenant Colonel",
    "Colonel",
    "Senior Colonel",
    "Major General",
    "Lieutenant General",
    "General",
    "Marshal",
    "Grand General",
];

const TROPHY_TITLES: [&str; 13] = [
    "No trophy",
    "Novice",
    "Beginner",
    "Intermediate",
    "Competent",
    "Experienced",
    "Talented",
    "Skilled",
    "Advanced",
    "Expert",
    "Pro",
    "Master",
    "Grand Master",
];

impl Default for Ranking {
    fn default() -> Self {
        let mut pnts: BTreeMap<String, i64> = BTreeMap::new();
        for c in ["payload_delivery", "artifacts_dropped", "network_activity"] {
            pnts.insert(c.into(), 1);
        }
        let mut r = Ranking {
            default_pnts_per_contribution: 1,
            pnts_per_contribution: pnts,
            categories: CATEGORIES.iter().map(|s| s.to_string()).collect(),
            rank_multiplier: 2.0,
            level_max: 16,
            rank_titles: RANK_TITLES.iter().map(|s| s.to_string()).collect(),
            requirement_points: vec![
                2, 4, 8, 16, 32, 64, 128, 256, 512, 1024, 2048, 4096, 8192, 16384, 0, 0,
            ],
            heavily_count: 10,
            recent_days: 31,
            regularly_days: 7,
            badges: vec![
                "Has made a pull request to MISP".into(),
                "Has donated to MISP".into(),
                "Has shared content upvoted by the community".into(),
                "Has shared valuable content".into(),
                "Has shared lots of valuable content".into(),
            ],
            trophy_mapping: vec![2.0, 9.0, 9.0, 10.0, 10.0, 16.0, 16.0, 10.0, 10.0, 4.0, 4.0],
            trophy_titles: TROPHY_TITLES.iter().map(|s| s.to_string()).collect(),
        };
        r.fill_default_points();
        r
    }
}

impl Ranking {
    /// Every datatable category without explicit points gets the default, as the original does.
    fn fill_default_points(&mut self) {
        for c in &self.categories {
            self.pnts_per_contribution
                .entry(c.clone())
                .or_insert(self.default_pnts_per_contribution);
        }
    }

    /// Reads a `ranking.cfg`; options it lacks keep the built-in defaults.
    pub fn load(path: &Path) -> Result<Ranking, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|e| ConfigError::Unreadable {
            file: path.to_path_buf(),
            reason: e.to_string(),
        })?;
        let ini = Ini::parse(&text).map_err(|reason| ConfigError::Syntax {
            file: path.to_path_buf(),
            reason,
        })?;
        let err = |section: &str, option: &str, reason: String| ConfigError::Value {
            file: path.to_path_buf(),
            section: section.into(),
            option: option.into(),
            reason,
        };
        let mut r = Ranking::default();
        let json =
            |section: &str, option: &str| -> Result<Option<serde_json::Value>, ConfigError> {
                match ini.get(section, option) {
                    None => Ok(None),
                    Some(v) => serde_json::from_str(&v)
                        .map(Some)
                        .map_err(|e| err(section, option, format!("not valid JSON: {e}"))),
                }
            };
        if let Some(v) = json("monthlyRanking", "default_pnts_per_contribution")? {
            r.default_pnts_per_contribution = v.as_i64().ok_or_else(|| {
                err(
                    "monthlyRanking",
                    "default_pnts_per_contribution",
                    "must be an integer".into(),
                )
            })?;
        }
        if let Some(v) = json("HonorTrophyCateg", "categ")? {
            r.categories = serde_json::from_value(v).map_err(|e| {
                err(
                    "HonorTrophyCateg",
                    "categ",
                    format!("must be a list of names: {e}"),
                )
            })?;
        }
        if let Some(v) = json("monthlyRanking", "pnts_per_contribution")? {
            let pairs: Vec<(String, i64)> = serde_json::from_value(v).map_err(|e| {
                err(
                    "monthlyRanking",
                    "pnts_per_contribution",
                    format!("must be a list of [category, points] pairs: {e}"),
                )
            })?;
            r.pnts_per_contribution = pairs.into_iter().collect();
        }
        r.fill_default_points();
        if let Some(v) = ini.get("monthlyRanking", "rankMultiplier") {
            r.rank_multiplier = v.parse::<f64>().ok().filter(|f| *f > 1.0).ok_or_else(|| {
                err(
                    "monthlyRanking",
                    "rankMultiplier",
                    "must be a number above 1".into(),
                )
            })?;
        }
        if let Some(v) = ini.get("monthlyRanking", "levelMax") {
            r.level_max = v.parse().map_err(|_| {
                err(
                    "monthlyRanking",
                    "levelMax",
                    "must be a whole number".into(),
                )
            })?;
        }
        let numbered = |section: &str| -> Option<Vec<String>> {
            let (_, options) = ini
                .sections()
                .into_iter()
                .find(|(s, _)| s.eq_ignore_ascii_case(section))?;
            let mut items: Vec<(i64, String)> = options
                .iter()
                .filter_map(|o| Some((o.parse::<i64>().ok()?, ini.get(section, o)?)))
                .collect();
            items.sort_by_key(|(i, _)| *i);
            Some(items.into_iter().map(|(_, v)| v).collect())
        };
        if let Some(t) = numbered("rankTitle") {
            r.rank_titles = t;
        }
        if let Some(p) = numbered("rankRequirementsPnts") {
            r.requirement_points = p
                .iter()
                .map(|v| v.parse::<i64>())
                .collect::<Result<_, _>>()
                .map_err(|_| {
                    err(
                        "rankRequirementsPnts",
                        "*",
                        "every value must be an integer".into(),
                    )
                })?;
        }
        if let Some(b) = numbered("HonorBadge") {
            r.badges = b;
        }
        if let Some(t) = numbered("HonorTrophy") {
            r.trophy_titles = t;
        }
        if let Some(v) = json("TrophyDifficulty", "trophyMapping")? {
            r.trophy_mapping = serde_json::from_value(v).map_err(|e| {
                err(
                    "TrophyDifficulty",
                    "trophyMapping",
                    format!("must be a list of numbers: {e}"),
                )
            })?;
        }
        for (opt, slot) in [
            ("heavilyCount", &mut r.heavily_count),
            ("recentDays", &mut r.recent_days),
            ("regularlyDays", &mut r.regularly_days),
        ] {
            if let Some(v) = ini.get("rankRequirementsMisc", opt) {
                *slot = v.parse().map_err(|_| {
                    err("rankRequirementsMisc", opt, "must be a whole number".into())
                })?;
            }
        }
        Ok(r)
    }

    /// Points a contribution in a normalised category is worth (before the sighting multiplier).
    pub fn points_for(&self, categ_norm: &str) -> i64 {
        self.pnts_per_contribution
            .get(categ_norm)
            .copied()
            .unwrap_or(self.default_pnts_per_contribution)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_give_every_category_one_point() {
        let r = Ranking::default();
        assert_eq!(r.categories.len(), 16);
        assert_eq!(r.points_for("support_Tool"), 1);
        assert_eq!(r.points_for("unknown"), 1);
        assert_eq!(r.rank_titles[15], "Grand General");
    }
}
