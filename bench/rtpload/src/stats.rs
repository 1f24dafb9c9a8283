//! A fixed-size histogram of microseconds, and what Linux tells about CPU
//! time and UDP drops.

use std::fmt::Write;

/// Counts of values in 1 µs buckets up to `LIMIT_US`, and one bucket above.
#[derive(Clone)]
pub struct Histogram {
    buckets: Vec<u32>,
    count: u64,
    max: u64,
    sum: u64,
}

const LIMIT_US: usize = 1_000_000;

impl Histogram {
    pub fn new() -> Histogram {
        Histogram {
            buckets: vec![0; LIMIT_US + 1],
            count: 0,
            max: 0,
            sum: 0,
        }
    }

    pub fn record(&mut self, micros: u64) {
        self.buckets[(micros as usize).min(LIMIT_US)] += 1;
        self.count += 1;
        self.sum += micros;
        self.max = self.max.max(micros);
    }

    pub fn merge(&mut self, other: &Histogram) {
        for (mine, theirs) in self.buckets.iter_mut().zip(&other.buckets) {
            *mine += theirs;
        }
        self.count += other.count;
        self.sum += other.sum;
        self.max = self.max.max(other.max);
    }

    /// The smallest value with at least `q` of the samples at or below it.
    pub fn quantile(&self, q: f64) -> u64 {
        if self.count == 0 {
            return 0;
        }
        let rank = ((self.count as f64) * q).ceil().max(1.0) as u64;
        let mut seen = 0u64;
        for (value, n) in self.buckets.iter().enumerate() {
            seen += u64::from(*n);
            if seen >= rank {
                return if value == LIMIT_US { self.max } else { value as u64 };
            }
        }
        self.max
    }

    /// `{"n":..,"mean":..,"p50":..,"p90":..,"p99":..,"p999":..,"max":..}` in µs.
    pub fn json(&self) -> String {
        let mut out = String::new();
        let mean = if self.count == 0 {
            0.0
        } else {
            self.sum as f64 / self.count as f64
        };
        let _ = write!(
            out,
            "{{\"n\":{},\"mean\":{:.1},\"p50\":{},\"p90\":{},\"p99\":{},\"p999\":{},\"max\":{}}}",
            self.count,
            mean,
            self.quantile(0.5),
            self.quantile(0.9),
            self.quantile(0.99),
            self.quantile(0.999),
            self.max
        );
        out
    }
}

/// utime + stime of a process (all its threads), in clock ticks.
pub fn process_ticks(pid: u32) -> Option<u64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let (_, rest) = stat.rsplit_once(')')?;
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let user: u64 = fields.get(11)?.parse().ok()?;
    let system: u64 = fields.get(12)?.parse().ok()?;
    Some(user + system)
}

/// Clock ticks per second (USER_HZ); 100 on every Linux we run on.
pub const TICKS_PER_SECOND: f64 = 100.0;

/// UDP `RcvbufErrors` and `SndbufErrors` of the whole machine.
pub fn udp_buffer_errors() -> (u64, u64) {
    let Ok(snmp) = std::fs::read_to_string("/proc/net/snmp") else {
        return (0, 0);
    };
    let lines: Vec<&str> = snmp.lines().filter(|l| l.starts_with("Udp:")).collect();
    if lines.len() < 2 {
        return (0, 0);
    }
    let names: Vec<&str> = lines[0].split_whitespace().collect();
    let values: Vec<&str> = lines[1].split_whitespace().collect();
    let get = |name: &str| {
        names
            .iter()
            .position(|n| *n == name)
            .and_then(|i| values.get(i)?.parse().ok())
            .unwrap_or(0)
    };
    (get("RcvbufErrors"), get("SndbufErrors"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quantiles() {
        let mut h = Histogram::new();
        for v in 1..=100 {
            h.record(v);
        }
        assert_eq!(h.quantile(0.5), 50);
        assert_eq!(h.quantile(0.99), 99);
        assert_eq!(h.quantile(1.0), 100);
        h.record(5_000_000);
        assert_eq!(h.quantile(1.0), 5_000_000);
    }
}
