//! Counts of DynamoDB requests and the capacity units they consumed, as DynamoDB
//! reports them (`ReturnConsumedCapacity`), so benchmarks can print cost per operation.

use std::sync::atomic::{AtomicU64, Ordering};

use aws_sdk_dynamodb::types::ConsumedCapacity;

#[derive(Debug, Default)]
pub struct Usage {
    requests: AtomicU64,
    /// Capacity units in thousandths, so they add up atomically.
    read_milli: AtomicU64,
    write_milli: AtomicU64,
    estimated: AtomicU64,
}

/// Usage at one moment; subtract two to get the cost of what happened between.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct UsageSnapshot {
    pub requests: u64,
    pub read_units: f64,
    pub write_units: f64,
}

/// Which side of the capacity a request consumes.
#[derive(Debug, Clone, Copy)]
pub enum Side {
    Read,
    Write,
}

impl Usage {
    /// One request and what it consumed. A side's own figure is preferred; the total
    /// stands in when only that is reported.
    pub fn record(&self, side: Side, consumed: &[ConsumedCapacity]) {
        self.requests.fetch_add(1, Ordering::Relaxed);
        let units: f64 = consumed
            .iter()
            .map(|c| {
                let own = match side {
                    Side::Read => c.read_capacity_units,
                    Side::Write => c.write_capacity_units,
                };
                own.or(c.capacity_units).unwrap_or(0.0)
            })
            .sum();
        let milli = (units * 1000.0).round() as u64;
        match side {
            Side::Read => self.read_milli.fetch_add(milli, Ordering::Relaxed),
            Side::Write => self.write_milli.fetch_add(milli, Ordering::Relaxed),
        };
    }

    /// Write units worked out from item sizes, for a request whose consumption the
    /// service did not report (emulators report none for transactions).
    pub fn record_estimate(&self, write_units: f64) {
        self.requests.fetch_add(1, Ordering::Relaxed);
        self.write_milli.fetch_add((write_units * 1000.0).round() as u64, Ordering::Relaxed);
        self.estimated.fetch_add(1, Ordering::Relaxed);
    }

    /// How many requests were charged by estimate rather than by DynamoDB's report.
    pub fn estimated(&self) -> u64 {
        self.estimated.load(Ordering::Relaxed)
    }

    pub fn snapshot(&self) -> UsageSnapshot {
        UsageSnapshot {
            requests: self.requests.load(Ordering::Relaxed),
            read_units: self.read_milli.load(Ordering::Relaxed) as f64 / 1000.0,
            write_units: self.write_milli.load(Ordering::Relaxed) as f64 / 1000.0,
        }
    }
}

impl std::ops::Sub for UsageSnapshot {
    type Output = UsageSnapshot;

    fn sub(self, before: UsageSnapshot) -> UsageSnapshot {
        UsageSnapshot {
            requests: self.requests - before.requests,
            read_units: self.read_units - before.read_units,
            write_units: self.write_units - before.write_units,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sides_add_up_and_fall_back_to_the_total() {
        let u = Usage::default();
        u.record(Side::Read, &[ConsumedCapacity::builder().read_capacity_units(0.5).capacity_units(9.0).build()]);
        let before = u.snapshot();
        u.record(Side::Write, &[ConsumedCapacity::builder().capacity_units(2.0).build()]);
        u.record(Side::Write, &[]);
        let d = u.snapshot() - before;
        assert_eq!(before, UsageSnapshot { requests: 1, read_units: 0.5, write_units: 0.0 });
        assert_eq!(d, UsageSnapshot { requests: 2, read_units: 0.0, write_units: 2.0 });
    }
}
