//! `mispdash give-honors`: argument parsing and the interactive dialogue; the work is in
//! `mispdash_core::contrib::honors`.

use anyhow::Context;
use clap::Args;
use mispdash_core::clock::Clock;
use mispdash_core::config::Config;
use mispdash_core::contrib::honors::{self, Honors, Standing};
use mispdash_core::contrib::Channels;
use mispdash_core::redis_util::RedisTarget;
use mispdash_core::store::ops::DbNumbers;
use std::io::IsTerminal;
use std::path::Path;

#[derive(Args, Debug)]
pub struct GiveHonorsArgs {
    /// The organisation (its name as MISP shows it).
    pub org: Option<String>,
    /// Mark requirement N (1-16) as fulfilled, without expiry. Repeatable.
    #[arg(long = "grant-requirement", value_name = "N")]
    pub grant_requirements: Vec<usize>,
    /// Remove requirement N. Repeatable.
    #[arg(long = "revoke-requirement", value_name = "N")]
    pub revoke_requirements: Vec<usize>,
    /// Give honor badge N (see ranking.cfg [HonorBadge]). Repeatable.
    #[arg(long = "grant-badge", value_name = "N")]
    pub grant_badges: Vec<usize>,
    /// Take honor badge N away. Repeatable.
    #[arg(long = "revoke-badge", value_name = "N")]
    pub revoke_badges: Vec<usize>,
    /// Add trophy points in a category, e.g. network_activity=5 (negative removes). Repeatable.
    #[arg(long = "trophy", value_name = "CATEGORY=POINTS", value_parser = parse_trophy)]
    pub trophy_points: Vec<(String, f64)>,
    /// Ask what to change, showing the organisation's current honors.
    #[arg(long, short = 'i')]
    pub interactive: bool,
}

fn parse_trophy(s: &str) -> Result<(String, f64), String> {
    let (c, p) = s
        .split_once('=')
        .ok_or_else(|| format!("{s:?}: expected CATEGORY=POINTS"))?;
    let pts: f64 = p
        .trim()
        .parse()
        .ok()
        .filter(|f: &f64| f.is_finite())
        .ok_or_else(|| format!("{p:?} is not a number of points"))?;
    Ok((c.trim().to_string(), pts))
}

fn print_standing(org: &str, s: &Standing, ranking: &mispdash_core::config::Ranking) {
    println!("{org}: {} points", s.points);
    println!("Requirements:");
    for (i, done) in s.requirements.iter().enumerate() {
        let title = ranking.rank_titles.get(i).map(String::as_str).unwrap_or("");
        let pts = ranking.requirement_points.get(i).copied().unwrap_or(0);
        println!(
            "  [{}] {:>2} {title} ({pts} points)",
            if *done { "x" } else { " " },
            i + 1
        );
    }
    println!("Badges:");
    for (i, held) in s.badges.iter().enumerate() {
        let text = ranking.badges.get(i).map(String::as_str).unwrap_or("");
        println!("  [{}] {} {text}", if *held { "x" } else { " " }, i + 1);
    }
    println!("Trophies:");
    if s.trophies.is_empty() {
        println!("  none");
    }
    for (c, rank, pts) in &s.trophies {
        let title = ranking
            .trophy_titles
            .get(*rank as usize)
            .map(String::as_str)
            .unwrap_or("");
        println!("  {c}: {title} (level {rank}, {pts} points)");
    }
}

/// Asks what to change, one list at a time; toggles what is selected.
fn ask(
    org: &str,
    s: &Standing,
    ranking: &mispdash_core::config::Ranking,
) -> anyhow::Result<Honors> {
    use dialoguer::{Input, MultiSelect};
    print_standing(org, s, ranking);
    let mut h = Honors::default();
    let reqs: Vec<String> = (1..=s.requirements.len())
        .map(|i| {
            format!(
                "requirement {i} ({})",
                ranking
                    .rank_titles
                    .get(i - 1)
                    .map(String::as_str)
                    .unwrap_or("")
            )
        })
        .collect();
    let picked = MultiSelect::new()
        .with_prompt("Requirements to toggle (space selects, enter confirms)")
        .items(&reqs)
        .interact()?;
    for i in picked {
        if s.requirements[i] {
            h.revoke_requirements.push(i + 1);
        } else {
            h.grant_requirements.push(i + 1);
        }
    }
    let badges: Vec<String> = ranking
        .badges
        .iter()
        .enumerate()
        .map(|(i, b)| format!("badge {}: {b}", i + 1))
        .collect();
    let picked = MultiSelect::new()
        .with_prompt("Badges to toggle")
        .items(&badges)
        .interact()?;
    for i in picked {
        if s.badges.get(i).copied().unwrap_or(false) {
            h.revoke_badges.push(i + 1);
        } else {
            h.grant_badges.push(i + 1);
        }
    }
    let picked = MultiSelect::new()
        .with_prompt("Trophy categories to give points in")
        .items(&ranking.categories)
        .interact()?;
    for i in picked {
        let pts: f64 = Input::new()
            .with_prompt(format!(
                "Points to add in {} (negative removes)",
                ranking.categories[i]
            ))
            .interact_text()?;
        h.trophy_points.push((ranking.categories[i].clone(), pts));
    }
    Ok(h)
}

pub fn give_honors(config: Option<&Path>, a: &GiveHonorsArgs, clock: Clock) -> anyhow::Result<()> {
    let (cfg, _): (Config, bool) = crate::load_config(config)?;
    let ranking = mispdash_core::app::load_ranking(&cfg)?;
    let target = RedisTarget::from_config(&cfg.redis);
    let mut conn = target
        .connect(cfg.redis.list_db)
        .with_context(|| format!("cannot reach Redis at {target}"))?;
    let dbs = DbNumbers {
        data: cfg.redis.data_db,
        list: cfg.redis.list_db,
    };
    let channels = Channels {
        last_contributor: cfg.redis.channel_last_contributor.clone(),
        last_awards: cfg.redis.channel_last_awards.clone(),
    };
    let interactive_ok = std::io::stdin().is_terminal();
    let org = match &a.org {
        Some(o) => o.clone(),
        None if interactive_ok => dialoguer::Input::<String>::new()
            .with_prompt("Organisation")
            .interact_text()?,
        None => anyhow::bail!(
            "name the organisation (stdin is not a terminal, so it cannot be asked for)"
        ),
    };
    let mut h = Honors {
        grant_requirements: a.grant_requirements.clone(),
        revoke_requirements: a.revoke_requirements.clone(),
        grant_badges: a.grant_badges.clone(),
        revoke_badges: a.revoke_badges.clone(),
        trophy_points: a.trophy_points.clone(),
    };
    if a.interactive || h.is_empty() {
        if !interactive_ok {
            let s = honors::standing(&mut conn, dbs, &ranking, &channels, &org)?;
            print_standing(&org, &s, &ranking);
            anyhow::bail!("nothing to change: give --grant-requirement/--grant-badge/--trophy flags, or run in a terminal for the interactive mode");
        }
        let s = honors::standing(&mut conn, dbs, &ranking, &channels, &org)?;
        h = ask(&org, &s, &ranking)?;
    }
    let awards = honors::give(
        &mut conn,
        dbs,
        &ranking,
        cfg.contrib.scoring,
        &channels,
        &org,
        &h,
        clock.now_epoch(),
        &clock.today(),
    )?;
    let s = honors::standing(&mut conn, dbs, &ranking, &channels, &org)?;
    print_standing(&org, &s, &ranking);
    if awards.is_empty() {
        println!("No new award.");
    }
    for a in awards {
        println!("Award: {}", mispdash_core::pyjson::to_string(&a));
    }
    Ok(())
}
