//! A small 5-field cron parser and matcher (`min hour dom mon dow`), evaluated on local wall-clock
//! minutes.
//!
//! Each field is `*` or a comma-separated list of `n`, `a-b`, `*/s`, `a-b/s` or `a/s` (from `a` to
//! the field's maximum in steps of `s`). Months accept `jan`..`dec`, days of the week `sun`..`sat`
//! (0 and 7 are both Sunday). As in Vixie cron, when both day-of-month and day-of-week are
//! restricted (neither starts with `*`) a day matches if either matches. The aliases `@yearly`
//! (`@annually`), `@monthly`, `@weekly`, `@daily` (`@midnight`) and `@hourly` are accepted.

use chrono::{Datelike, NaiveDateTime, Timelike};

/// A parsed cron expression.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CronSchedule {
    minutes: u64,
    hours: u64,
    days_of_month: u64,
    months: u64,
    days_of_week: u64,
    dom_star: bool,
    dow_star: bool,
}

const MONTHS: [&str; 12] = ["jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec"];
const DAYS: [&str; 7] = ["sun", "mon", "tue", "wed", "thu", "fri", "sat"];

struct Field {
    name: &'static str,
    min: u32,
    max: u32,
    names: &'static [&'static str],
    /// First name's value (jan = 1, sun = 0).
    names_base: u32,
}

const FIELDS: [Field; 5] = [
    Field { name: "minute", min: 0, max: 59, names: &[], names_base: 0 },
    Field { name: "hour", min: 0, max: 23, names: &[], names_base: 0 },
    Field { name: "day of month", min: 1, max: 31, names: &[], names_base: 0 },
    Field { name: "month", min: 1, max: 12, names: &MONTHS, names_base: 1 },
    Field { name: "day of week", min: 0, max: 7, names: &DAYS, names_base: 0 },
];

impl CronSchedule {
    /// Parses an expression; the error says which field is wrong and why.
    pub fn parse(expr: &str) -> Result<CronSchedule, String> {
        let expr = expr.trim();
        let expanded = match expr.to_ascii_lowercase().as_str() {
            "@yearly" | "@annually" => "0 0 1 1 *".to_owned(),
            "@monthly" => "0 0 1 * *".to_owned(),
            "@weekly" => "0 0 * * 0".to_owned(),
            "@daily" | "@midnight" => "0 0 * * *".to_owned(),
            "@hourly" => "0 * * * *".to_owned(),
            s if s.starts_with('@') => return Err(format!("unknown alias {expr:?}")),
            _ => expr.to_owned(),
        };
        let parts: Vec<&str> = expanded.split_whitespace().collect();
        if parts.len() != 5 {
            return Err(format!("expected 5 fields (min hour dom mon dow), got {}", parts.len()));
        }
        let mut sets = [0u64; 5];
        for (i, (part, field)) in parts.iter().zip(FIELDS.iter()).enumerate() {
            sets[i] = parse_field(part, field).map_err(|e| format!("{} field {part:?}: {e}", field.name))?;
        }
        // Sunday is both 0 and 7.
        let mut dow = sets[4];
        if dow & (1 << 7) != 0 {
            dow = (dow & !(1 << 7)) | 1;
        }
        Ok(CronSchedule {
            minutes: sets[0],
            hours: sets[1],
            days_of_month: sets[2],
            months: sets[3],
            days_of_week: dow,
            dom_star: parts[2].starts_with('*'),
            dow_star: parts[4].starts_with('*'),
        })
    }

    /// Whether the local wall-clock minute containing `t` matches (seconds are ignored).
    pub fn matches(&self, t: NaiveDateTime) -> bool {
        let bit = |set: u64, v: u32| v < 64 && set & (1u64 << v) != 0;
        if !bit(self.minutes, t.minute()) || !bit(self.hours, t.hour()) || !bit(self.months, t.month()) {
            return false;
        }
        let dom = bit(self.days_of_month, t.day());
        let dow = bit(self.days_of_week, t.weekday().num_days_from_sunday());
        if self.dom_star || self.dow_star { dom && dow } else { dom || dow }
    }
}

fn parse_value(s: &str, field: &Field) -> Result<u32, String> {
    let lower = s.to_ascii_lowercase();
    if let Some(i) = field.names.iter().position(|n| *n == lower) {
        return Ok(i as u32 + field.names_base);
    }
    let v: u32 = s.parse().map_err(|_| format!("{s:?} is not a number"))?;
    if v < field.min || v > field.max {
        return Err(format!("{v} is outside {}-{}", field.min, field.max));
    }
    Ok(v)
}

fn parse_field(s: &str, field: &Field) -> Result<u64, String> {
    if s.is_empty() {
        return Err("empty".to_owned());
    }
    let mut set = 0u64;
    for item in s.split(',') {
        if item.is_empty() {
            return Err("empty list item".to_owned());
        }
        let (range, step) = match item.split_once('/') {
            Some((r, st)) => {
                let step: u32 = st.parse().map_err(|_| format!("step {st:?} is not a number"))?;
                if step == 0 || step > field.max {
                    return Err(format!("step {step} is outside 1-{}", field.max));
                }
                (r, Some(step))
            }
            None => (item, None),
        };
        let (lo, hi) = if range == "*" {
            (field.min, field.max)
        } else if let Some((a, b)) = range.split_once('-') {
            let (a, b) = (parse_value(a, field)?, parse_value(b, field)?);
            if a > b {
                return Err(format!("range {a}-{b} is reversed"));
            }
            (a, b)
        } else {
            let a = parse_value(range, field)?;
            // `a/s` runs to the maximum; a bare `a` is just `a`.
            if step.is_some() { (a, field.max) } else { (a, a) }
        };
        let step = step.unwrap_or(1);
        let mut v = lo;
        while v <= hi {
            set |= 1u64 << v;
            v += step;
        }
    }
    Ok(set)
}
