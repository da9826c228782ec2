//! Prometheus metrics in the text exposition format, written by hand: requests by route, method
//! and status; a latency histogram per route; check decisions; store failures.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use allowly_core::model::CheckResponse;
use allowly_core::policy::Decision;
use parking_lot::Mutex;

/// Upper bounds (seconds) of the latency buckets.
const BUCKETS: [f64; 14] = [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.02, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0];

#[derive(Default)]
struct Histogram {
    counts: [u64; BUCKETS.len()],
    count: u64,
    sum: f64,
}

impl Histogram {
    fn observe(&mut self, seconds: f64) {
        for (bound, count) in BUCKETS.iter().zip(self.counts.iter_mut()) {
            if seconds <= *bound {
                *count += 1;
            }
        }
        self.count += 1;
        self.sum += seconds;
    }
}

pub struct Metrics {
    started: Instant,
    decisions: [AtomicU64; 4],
    store_errors: AtomicU64,
    in_flight: AtomicI64,
    requests: Mutex<BTreeMap<(&'static str, &'static str, u16), u64>>,
    latency: Mutex<BTreeMap<&'static str, Histogram>>,
}

impl Default for Metrics {
    fn default() -> Metrics {
        Metrics {
            started: Instant::now(),
            decisions: Default::default(),
            store_errors: AtomicU64::new(0),
            in_flight: AtomicI64::new(0),
            requests: Mutex::new(BTreeMap::new()),
            latency: Mutex::new(BTreeMap::new()),
        }
    }
}

const DECISIONS: [Decision; 4] = [Decision::Allow, Decision::Deny, Decision::Confirm, Decision::Escalate];

impl Metrics {
    pub fn request_started(&self) {
        self.in_flight.fetch_add(1, Ordering::Relaxed);
    }

    pub fn request_finished(
        &self,
        route: &'static str,
        method: &'static str,
        status: u16,
        elapsed: Duration,
        store_failure: bool,
    ) {
        self.in_flight.fetch_sub(1, Ordering::Relaxed);
        if store_failure {
            self.store_errors.fetch_add(1, Ordering::Relaxed);
        }
        *self.requests.lock().entry((route, method, status)).or_insert(0) += 1;
        self.latency.lock().entry(route).or_default().observe(elapsed.as_secs_f64());
    }

    /// Counts one decision per action of an answered check.
    pub fn count_decisions(&self, response: &CheckResponse) {
        for (_, result) in response.results.iter() {
            if let Some(i) = DECISIONS.iter().position(|d| *d == result.decision) {
                self.decisions[i].fetch_add(1, Ordering::Relaxed);
            }
        }
    }

    /// The metrics as Prometheus text; `connections` is (open now, refused so far), `check_groups`
    /// (transactions that decided checks, checks they decided).
    pub fn render(&self, open_workspaces: usize, connections: (usize, usize), check_groups: (u64, u64)) -> String {
        let mut out = String::with_capacity(4096);
        let _ =
            writeln!(out, "# HELP allowly_http_requests_total HTTP requests answered, by route, method and status.");
        let _ = writeln!(out, "# TYPE allowly_http_requests_total counter");
        for ((route, method, status), count) in self.requests.lock().iter() {
            let _ = writeln!(
                out,
                "allowly_http_requests_total{{route=\"{route}\",method=\"{method}\",status=\"{status}\"}} {count}"
            );
        }
        let _ = writeln!(out, "# HELP allowly_http_request_duration_seconds Time to answer a request, by route.");
        let _ = writeln!(out, "# TYPE allowly_http_request_duration_seconds histogram");
        for (route, histogram) in self.latency.lock().iter() {
            for (bound, count) in BUCKETS.iter().zip(histogram.counts.iter()) {
                let _ = writeln!(
                    out,
                    "allowly_http_request_duration_seconds_bucket{{route=\"{route}\",le=\"{bound}\"}} {count}"
                );
            }
            let _ = writeln!(
                out,
                "allowly_http_request_duration_seconds_bucket{{route=\"{route}\",le=\"+Inf\"}} {}",
                histogram.count
            );
            let _ = writeln!(out, "allowly_http_request_duration_seconds_sum{{route=\"{route}\"}} {}", histogram.sum);
            let _ =
                writeln!(out, "allowly_http_request_duration_seconds_count{{route=\"{route}\"}} {}", histogram.count);
        }
        let _ = writeln!(out, "# HELP allowly_check_decisions_total Decisions of answered checks, one per action.");
        let _ = writeln!(out, "# TYPE allowly_check_decisions_total counter");
        for (decision, count) in DECISIONS.iter().zip(self.decisions.iter()) {
            let _ = writeln!(
                out,
                "allowly_check_decisions_total{{decision=\"{}\"}} {}",
                decision.as_str(),
                count.load(Ordering::Relaxed)
            );
        }
        let _ = writeln!(
            out,
            "# HELP allowly_check_groups_total Transactions that decided checks (several share one under load)."
        );
        let _ = writeln!(out, "# TYPE allowly_check_groups_total counter");
        let _ = writeln!(out, "allowly_check_groups_total {}", check_groups.0);
        let _ = writeln!(
            out,
            "# HELP allowly_checks_decided_total Checks decided (divided by the groups: checks per commit)."
        );
        let _ = writeln!(out, "# TYPE allowly_checks_decided_total counter");
        let _ = writeln!(out, "allowly_checks_decided_total {}", check_groups.1);
        let _ =
            writeln!(out, "# HELP allowly_store_errors_total Requests that failed because the store did not answer.");
        let _ = writeln!(out, "# TYPE allowly_store_errors_total counter");
        let _ = writeln!(out, "allowly_store_errors_total {}", self.store_errors.load(Ordering::Relaxed));
        let _ = writeln!(out, "# HELP allowly_http_requests_in_flight Requests being answered now.");
        let _ = writeln!(out, "# TYPE allowly_http_requests_in_flight gauge");
        let _ = writeln!(out, "allowly_http_requests_in_flight {}", self.in_flight.load(Ordering::Relaxed));
        let _ = writeln!(out, "# HELP allowly_workspaces_open Workspaces with an open engine.");
        let _ = writeln!(out, "# TYPE allowly_workspaces_open gauge");
        let _ = writeln!(out, "allowly_workspaces_open {open_workspaces}");
        let _ = writeln!(out, "# HELP allowly_connections_open Client connections open now.");
        let _ = writeln!(out, "# TYPE allowly_connections_open gauge");
        let _ = writeln!(out, "allowly_connections_open {}", connections.0);
        let _ = writeln!(
            out,
            "# HELP allowly_connections_refused_total Connections closed at once: their address had too many open."
        );
        let _ = writeln!(out, "# TYPE allowly_connections_refused_total counter");
        let _ = writeln!(out, "allowly_connections_refused_total {}", connections.1);
        let _ = writeln!(out, "# HELP allowly_uptime_seconds Seconds since the server started.");
        let _ = writeln!(out, "# TYPE allowly_uptime_seconds gauge");
        let _ = writeln!(out, "allowly_uptime_seconds {}", self.started.elapsed().as_secs());
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_cumulative_buckets() {
        let metrics = Metrics::default();
        metrics.request_started();
        metrics.request_finished("/v1/check", "POST", 200, Duration::from_micros(700), false);
        metrics.request_started();
        metrics.request_finished("/v1/check", "POST", 503, Duration::from_millis(30), true);
        let text = metrics.render(1, (3, 0), (2, 5));
        assert!(text.contains("allowly_http_requests_total{route=\"/v1/check\",method=\"POST\",status=\"200\"} 1"));
        assert!(text.contains("allowly_http_request_duration_seconds_bucket{route=\"/v1/check\",le=\"0.001\"} 1"));
        assert!(text.contains("allowly_http_request_duration_seconds_bucket{route=\"/v1/check\",le=\"0.05\"} 2"));
        assert!(text.contains("allowly_http_request_duration_seconds_count{route=\"/v1/check\"} 2"));
        assert!(text.contains("allowly_store_errors_total 1"));
        assert!(text.contains("allowly_http_requests_in_flight 0"));
    }
}
