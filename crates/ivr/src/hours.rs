//! Business hours and holidays, in the clinic's time zone.
//!
//! Hours are weekly ranges of local wall-clock time (`08:00`–`18:00`,
//! the close exclusive); holidays are whole local dates on which the clinic
//! is closed. Both are read in the clinic's IANA time zone from jiff's
//! bundled database, so a daylight-saving change moves the UTC instants of
//! opening and closing, never the local times, and the answer does not
//! depend on the host's zoneinfo.

use std::collections::BTreeMap;
use std::fmt;

use jiff::Timestamp;
use jiff::civil::{Date, Weekday};
use jiff::tz::TimeZone;

/// Minutes since local midnight, `0..=1440`.
pub(crate) type Minute = u16;

/// One weekly opening range on one weekday: `[open, close)` in minutes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct OpeningRange {
    open: Minute,
    close: Minute,
}

impl OpeningRange {
    pub(crate) fn new(open: Minute, close: Minute) -> Self {
        Self { open, close }
    }

    /// Opening time as minutes since local midnight.
    pub fn open_minute(&self) -> u16 {
        self.open
    }

    /// Closing time (exclusive) as minutes since local midnight; 1440 is `24:00`.
    pub fn close_minute(&self) -> u16 {
        self.close
    }

    pub(crate) fn overlaps(&self, other: &OpeningRange) -> bool {
        self.open < other.close && other.open < self.close
    }

    fn contains(&self, minute: Minute) -> bool {
        self.open <= minute && minute < self.close
    }
}

impl fmt::Display for OpeningRange {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{:02}:{:02}-{:02}:{:02}",
            self.open / 60,
            self.open % 60,
            self.close / 60,
            self.close % 60
        )
    }
}

/// Whether the clinic is open at an instant, and why not.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum OpenState {
    /// Within business hours, or the clinic declares no hours (always open).
    Open,
    /// A declared holiday (a whole local date).
    Holiday {
        /// The local date.
        date: Date,
        /// The holiday's name, when the dialplan gives one.
        name: Option<String>,
    },
    /// Outside every weekly range for that local day.
    OutsideHours,
}

impl OpenState {
    /// True when calls take the in-hours path.
    pub fn is_open(&self) -> bool {
        matches!(self, OpenState::Open)
    }
}

impl fmt::Display for OpenState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            OpenState::Open => f.write_str("open"),
            OpenState::Holiday {
                date,
                name: Some(name),
            } => write!(f, "closed: holiday {date} ({name})"),
            OpenState::Holiday { date, name: None } => write!(f, "closed: holiday {date}"),
            OpenState::OutsideHours => f.write_str("closed: outside business hours"),
        }
    }
}

/// The clinic's weekly hours and holidays.
#[derive(Debug, Clone)]
pub struct BusinessHours {
    time_zone: TimeZone,
    /// Index 0 is Monday.
    weekly: [Vec<OpeningRange>; 7],
    holidays: BTreeMap<Date, Option<String>>,
}

impl BusinessHours {
    pub(crate) fn new(
        time_zone: TimeZone,
        weekly: [Vec<OpeningRange>; 7],
        holidays: BTreeMap<Date, Option<String>>,
    ) -> Self {
        Self {
            time_zone,
            weekly,
            holidays,
        }
    }

    /// The same clinic open every hour of every day, holidays included
    /// (`frontdesk demo --open`): its time zone stays.
    pub fn open_all_hours(&self) -> Self {
        Self {
            time_zone: self.time_zone.clone(),
            weekly: Default::default(),
            holidays: BTreeMap::new(),
        }
    }

    /// True when the dialplan declares no weekly hours: always open
    /// (holidays still close it).
    pub fn is_always_open(&self) -> bool {
        self.weekly.iter().all(Vec::is_empty)
    }

    /// The ranges for a weekday, in order.
    pub fn ranges(&self, day: Weekday) -> &[OpeningRange] {
        &self.weekly[weekday_index(day)]
    }

    /// The declared holidays, by local date.
    pub fn holidays(&self) -> &BTreeMap<Date, Option<String>> {
        &self.holidays
    }

    /// Whether the clinic is open at `at`, judged on the clinic's local clock.
    pub fn state_at(&self, at: Timestamp) -> OpenState {
        let local = at.to_zoned_datetime(self.time_zone.clone());
        let date = local.date();
        if let Some(name) = self.holidays.get(&date) {
            return OpenState::Holiday {
                date,
                name: name.clone(),
            };
        }
        if self.is_always_open() {
            return OpenState::Open;
        }
        let time = local.time();
        // hour() is 0..=23 and minute() 0..=59, so this fits a u16.
        let minute = (time.hour() as u16) * 60 + time.minute() as u16;
        if self.weekly[weekday_index(local.weekday())]
            .iter()
            .any(|range| range.contains(minute))
        {
            OpenState::Open
        } else {
            OpenState::OutsideHours
        }
    }
}

/// Monday = 0 … Sunday = 6.
pub(crate) fn weekday_index(day: Weekday) -> usize {
    // to_monday_zero_offset() is 0..=6 by construction.
    day.to_monday_zero_offset() as usize
}

/// Parses a weekday name: `monday` or `mon`, any case.
pub(crate) fn parse_weekday(text: &str) -> Option<Weekday> {
    let day = match text.to_ascii_lowercase().as_str() {
        "monday" | "mon" => Weekday::Monday,
        "tuesday" | "tue" => Weekday::Tuesday,
        "wednesday" | "wed" => Weekday::Wednesday,
        "thursday" | "thu" => Weekday::Thursday,
        "friday" | "fri" => Weekday::Friday,
        "saturday" | "sat" => Weekday::Saturday,
        "sunday" | "sun" => Weekday::Sunday,
        _ => return None,
    };
    Some(day)
}

/// Parses `HH:MM` (24-hour clock; `24:00` allowed as a closing time).
pub(crate) fn parse_clock(text: &str) -> Option<Minute> {
    let (hour, minute) = text.split_once(':')?;
    if hour.len() != 2 || minute.len() != 2 {
        return None;
    }
    let hour: u16 = hour.parse().ok()?;
    let minute: u16 = minute.parse().ok()?;
    if minute >= 60 || hour > 24 || (hour == 24 && minute != 0) {
        return None;
    }
    Some(hour * 60 + minute)
}

#[cfg(test)]
mod tests {
    use super::*;
    use jiff::civil::date;

    fn chicago() -> TimeZone {
        jiff::tz::TimeZoneDatabase::bundled()
            .get("America/Chicago")
            .unwrap()
    }

    fn weekdays_8_to_18() -> BusinessHours {
        let mut weekly: [Vec<OpeningRange>; 7] = Default::default();
        for day in weekly.iter_mut().take(5) {
            day.push(OpeningRange::new(8 * 60, 18 * 60));
        }
        let mut holidays = BTreeMap::new();
        holidays.insert(date(2026, 12, 25), Some("Christmas Day".to_string()));
        BusinessHours::new(chicago(), weekly, holidays)
    }

    #[test]
    fn clock_parsing() {
        assert_eq!(parse_clock("08:00"), Some(480));
        assert_eq!(parse_clock("24:00"), Some(1440));
        assert_eq!(parse_clock("24:01"), None);
        assert_eq!(parse_clock("8:00"), None);
        assert_eq!(parse_clock("08:60"), None);
        assert_eq!(parse_weekday("Sat"), Some(Weekday::Saturday));
        assert_eq!(parse_weekday("someday"), None);
    }

    #[test]
    fn open_and_close_edges_are_local_and_close_is_exclusive() {
        let hours = weekdays_8_to_18();
        // Wednesday 2026-07-15 08:00 CDT = 13:00Z.
        let at = |s: &str| s.parse::<Timestamp>().unwrap();
        assert_eq!(
            hours.state_at(at("2026-07-15T12:59:59Z")),
            OpenState::OutsideHours
        );
        assert_eq!(hours.state_at(at("2026-07-15T13:00:00Z")), OpenState::Open);
        assert_eq!(hours.state_at(at("2026-07-15T22:59:59Z")), OpenState::Open);
        assert_eq!(
            hours.state_at(at("2026-07-15T23:00:00Z")),
            OpenState::OutsideHours
        );
    }

    #[test]
    fn holidays_close_the_whole_local_day() {
        let hours = weekdays_8_to_18();
        // 2026-12-25 10:00 CST is 16:00Z; 2026-12-26 01:00Z is still the 25th locally.
        let state = hours.state_at("2026-12-25T16:00:00Z".parse().unwrap());
        assert_eq!(
            state.to_string(),
            "closed: holiday 2026-12-25 (Christmas Day)"
        );
        assert!(
            !hours
                .state_at("2026-12-26T01:00:00Z".parse().unwrap())
                .is_open()
        );
    }

    #[test]
    fn overlap() {
        let a = OpeningRange::new(480, 1080);
        assert!(a.overlaps(&OpeningRange::new(1000, 1200)));
        assert!(!a.overlaps(&OpeningRange::new(1080, 1200)));
        assert_eq!(a.to_string(), "08:00-18:00");
    }
}
