//! When a session runs: daily or weekly windows in a time zone (QuickFIX's StartTime,
//! EndTime, StartDay, EndDay, Weekdays and TimeZone). Outside its window an initiator does
//! not connect and an acceptor refuses the Logon; a window's end logs the session out; the
//! first use of a new window starts the sequence numbers over.

use jiff::civil::{Date, Time, Weekday};
use jiff::tz::TimeZone;

use crate::codec::Timestamp;

/// A session's windows.
#[derive(Debug, Clone)]
pub struct Schedule {
    start: Time,
    end: Time,
    /// A weekly window's first and last days; `None`: a window every (chosen) day.
    days: Option<(Weekday, Weekday)>,
    /// A daily window opens only on these days (empty: every day).
    weekdays: Vec<Weekday>,
    zone: TimeZone,
}

/// Where a moment falls in a [`Schedule`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Window {
    /// Inside the window that opened at `start` and closes at `end`.
    Open {
        /// When this window opened.
        start: Timestamp,
        /// When it closes.
        end: Timestamp,
    },
    /// Between windows; the next opens at `next`.
    Closed {
        /// When the next window opens.
        next: Timestamp,
    },
}

/// A schedule setting that does not read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{setting}: {problem}")]
pub struct ScheduleError {
    setting: &'static str,
    problem: String,
}

fn error(setting: &'static str, problem: impl ToString) -> ScheduleError {
    ScheduleError { setting, problem: problem.to_string() }
}

/// Reads a day as QuickFIX writes it: `Mon`, `monday`, `Tu` ...
fn weekday(setting: &'static str, text: &str) -> Result<Weekday, ScheduleError> {
    use Weekday::*;
    let lower = text.trim().to_ascii_lowercase();
    let days = [
        ("monday", Monday),
        ("tuesday", Tuesday),
        ("wednesday", Wednesday),
        ("thursday", Thursday),
        ("friday", Friday),
        ("saturday", Saturday),
        ("sunday", Sunday),
    ];
    let mut found = days.iter().filter(|(name, _)| lower.len() >= 2 && name.starts_with(&lower));
    match (found.next(), found.next()) {
        (Some(&(_, day)), None) => Ok(day),
        _ => Err(error(setting, format!("{text:?} is not a day of the week"))),
    }
}

fn time(setting: &'static str, text: &str) -> Result<Time, ScheduleError> {
    text.trim().parse().map_err(|e| error(setting, format!("{text:?}: {e}")))
}

impl Schedule {
    /// A window every day from `start` to `end` (local times in `zone`; an `end` at or before
    /// `start` closes the next day, so equal times make a 24-hour session that starts over
    /// daily).
    pub fn daily(start: Time, end: Time, zone: TimeZone) -> Schedule {
        Schedule { start, end, days: None, weekdays: Vec::new(), zone }
    }

    /// One window a week, from `start` on `start_day` to `end` on `end_day`.
    pub fn weekly(start_day: Weekday, start: Time, end_day: Weekday, end: Time, zone: TimeZone) -> Schedule {
        Schedule { start, end, days: Some((start_day, end_day)), weekdays: Vec::new(), zone }
    }

    /// A daily schedule that opens only on `days` (QuickFIX's Weekdays).
    pub fn on(mut self, days: &[Weekday]) -> Schedule {
        self.weekdays = days.to_vec();
        self
    }

    /// A schedule from QuickFIX-style settings: `start_time` and `end_time` as `HH:MM:SS`,
    /// optional `start_day`/`end_day` (a weekly window) or `weekdays` (the days a daily window
    /// opens), and an IANA `time_zone` (`None`: UTC).
    pub fn from_settings(
        start_time: &str,
        end_time: &str,
        start_day: Option<&str>,
        end_day: Option<&str>,
        weekdays: &[String],
        time_zone: Option<&str>,
    ) -> Result<Schedule, ScheduleError> {
        let start = time("start_time", start_time)?;
        let end = time("end_time", end_time)?;
        let zone = match time_zone {
            None => TimeZone::UTC,
            Some(name) => TimeZone::get(name).map_err(|e| error("time_zone", e))?,
        };
        match (start_day, end_day) {
            (Some(s), Some(e)) if weekdays.is_empty() => {
                Ok(Schedule::weekly(weekday("start_day", s)?, start, weekday("end_day", e)?, end, zone))
            }
            (None, None) => {
                let days = weekdays.iter().map(|d| weekday("weekdays", d)).collect::<Result<Vec<_>, _>>()?;
                Ok(Schedule::daily(start, end, zone).on(&days))
            }
            (Some(_), Some(_)) => Err(error("weekdays", "goes with a daily window, not start_day/end_day")),
            _ => Err(error("start_day", "start_day and end_day go together")),
        }
    }

    /// Where `at` falls.
    pub fn window(&self, at: Timestamp) -> Window {
        let at = jiff_time(at);
        let today = self.zone.to_datetime(at).date();
        // The latest opening at or before `at` (a week and a day back covers every schedule).
        let start = (0..=8)
            .filter_map(|back| today.checked_sub(jiff::Span::new().days(back)).ok())
            .filter(|&day| self.opens_on(day))
            .map(|day| self.at(day, self.start))
            .find(|&open| open <= at);
        if let Some(start) = start {
            let end = self.closing_after(start);
            if at < end {
                return Window::Open { start: ours(start), end: ours(end) };
            }
        }
        let next = (0..=8)
            .filter_map(|ahead| today.checked_add(jiff::Span::new().days(ahead)).ok())
            .filter(|&day| self.opens_on(day))
            .map(|day| self.at(day, self.start))
            .find(|&open| open > at)
            .expect("a schedule opens within a week");
        Window::Closed { next: ours(next) }
    }

    fn opens_on(&self, day: Date) -> bool {
        match self.days {
            Some((start_day, _)) => day.weekday() == start_day,
            None => self.weekdays.is_empty() || self.weekdays.contains(&day.weekday()),
        }
    }

    /// The window opened at `start` closes at the first `end` after it (on the end day, for a
    /// weekly window).
    fn closing_after(&self, start: jiff::Timestamp) -> jiff::Timestamp {
        let first = self.zone.to_datetime(start).date();
        (0..=7)
            .filter_map(|ahead| first.checked_add(jiff::Span::new().days(ahead)).ok())
            .filter(|day| self.days.is_none_or(|(_, end_day)| day.weekday() == end_day))
            .map(|day| self.at(day, self.end))
            .find(|&close| close > start)
            .expect("a window closes within a week")
    }

    /// `time` on `day` in the schedule's zone (a time skipped by a DST change is taken as
    /// the one after the gap, a repeated time as the first).
    fn at(&self, day: Date, time: Time) -> jiff::Timestamp {
        self.zone
            .to_ambiguous_zoned_datetime(day.to_datetime(time))
            .compatible()
            .map_or(jiff::Timestamp::MAX, |z| z.timestamp())
    }
}

fn jiff_time(t: Timestamp) -> jiff::Timestamp {
    jiff::Timestamp::from_nanosecond(i128::from(t.0)).unwrap_or(jiff::Timestamp::MAX)
}

fn ours(t: jiff::Timestamp) -> Timestamp {
    Timestamp(u64::try_from(t.as_nanosecond()).unwrap_or(0))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn utc(text: &str) -> Timestamp {
        ours(text.parse().unwrap())
    }

    fn hms(text: &str) -> Time {
        text.parse().unwrap()
    }

    #[test]
    fn a_daily_window_opens_and_closes_each_day() {
        let s = Schedule::daily(hms("08:00"), hms("17:00"), TimeZone::UTC);
        assert_eq!(
            s.window(utc("2026-12-07T12:00:00Z")),
            Window::Open { start: utc("2026-12-07T08:00:00Z"), end: utc("2026-12-07T17:00:00Z") }
        );
        assert_eq!(
            s.window(utc("2026-12-07T17:00:00Z")),
            Window::Closed { next: utc("2026-12-08T08:00:00Z") }
        );
        assert_eq!(
            s.window(utc("2026-12-07T07:59:59Z")),
            Window::Closed { next: utc("2026-12-07T08:00:00Z") }
        );
    }

    #[test]
    fn a_window_across_midnight_and_a_24_hour_one() {
        let night = Schedule::daily(hms("22:00"), hms("06:00"), TimeZone::UTC);
        assert_eq!(
            night.window(utc("2026-12-08T02:00:00Z")),
            Window::Open { start: utc("2026-12-07T22:00:00Z"), end: utc("2026-12-08T06:00:00Z") }
        );
        let always = Schedule::daily(hms("17:00"), hms("17:00"), TimeZone::UTC);
        assert_eq!(
            always.window(utc("2026-12-07T17:00:00Z")),
            Window::Open { start: utc("2026-12-07T17:00:00Z"), end: utc("2026-12-08T17:00:00Z") }
        );
    }

    #[test]
    fn a_weekly_window_in_new_york_follows_daylight_saving() {
        let zone = TimeZone::get("America/New_York").unwrap();
        let s = Schedule::weekly(Weekday::Sunday, hms("17:00"), Weekday::Friday, hms("17:00"), zone);
        // 2026-11-01 is the Sunday DST ends: 17:00 EST is 22:00 UTC; the Friday after too.
        assert_eq!(
            s.window(utc("2026-11-04T12:00:00Z")),
            Window::Open { start: utc("2026-11-01T22:00:00Z"), end: utc("2026-11-06T22:00:00Z") }
        );
        // The weekend: closed until Sunday 17:00 EST.
        assert_eq!(
            s.window(utc("2026-11-07T12:00:00Z")),
            Window::Closed { next: utc("2026-11-08T22:00:00Z") }
        );
        // Before the change (EDT, UTC-4) the same local times are an hour earlier in UTC.
        assert_eq!(
            s.window(utc("2026-10-28T12:00:00Z")),
            Window::Open { start: utc("2026-10-25T21:00:00Z"), end: utc("2026-10-30T21:00:00Z") }
        );
    }

    #[test]
    fn weekdays_limit_a_daily_window() {
        let s =
            Schedule::from_settings("08:00:00", "17:00:00", None, None, &["Mon".into(), "Wed".into()], None)
                .unwrap();
        // 2026-12-08 is a Tuesday.
        assert_eq!(
            s.window(utc("2026-12-08T12:00:00Z")),
            Window::Closed { next: utc("2026-12-09T08:00:00Z") }
        );
        assert!(matches!(s.window(utc("2026-12-07T12:00:00Z")), Window::Open { .. }));
    }

    #[test]
    fn bad_settings_name_the_setting() {
        let e = Schedule::from_settings("25:00:00", "17:00:00", None, None, &[], None).unwrap_err();
        assert!(e.to_string().starts_with("start_time:"), "{e}");
        let e = Schedule::from_settings("08:00:00", "17:00:00", Some("Mon"), None, &[], None).unwrap_err();
        assert!(e.to_string().starts_with("start_day:"), "{e}");
        let e = Schedule::from_settings("08:00:00", "17:00:00", Some("Mo"), Some("Funday"), &[], None)
            .unwrap_err();
        assert!(e.to_string().starts_with("end_day:"), "{e}");
        let e = Schedule::from_settings("08:00", "17:00", None, None, &[], Some("Mars/Olympus")).unwrap_err();
        assert!(e.to_string().starts_with("time_zone:"), "{e}");
    }
}
