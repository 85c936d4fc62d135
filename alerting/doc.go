// Package alerting raises, keeps and hands on alerts about a water platform's sites: meter
// health (stale, stuck, offline edge, bad quality, reverse steps, spikes, resets, coverage), leaks
// (imbalance, node residual, night flow, CUSUM and EWMA change detection, bursts), overuse
// (withdrawal plans, quotas, daily limits) and compliance (reuse rate, closure, verification,
// metering rate).
//
// Rules come from YAML rules files (RulesFile) on top of built-in defaults. Figure rules run on
// the engine's snapshots in event time (the site's clock), so a replay raises the same alerts;
// liveness rules (stale meter, edge offline, stuck totalizer, bad quality) run on the platform's
// clock. An alert follows the lifecycle of Prometheus and Alertmanager with ThingsBoard's
// acknowledgement on top: pending (for:) → firing → acknowledged → resolved, with a clear threshold
// apart from the fire threshold so a value wobbling at the limit does not flap. Silences mute by
// label matchers; inhibition mutes the alerts a root cause explains (an offline edge its meters'
// stale alerts, a faulty meter the leak alerts computed from it). Alerts, silences and the
// emergency-response trail (assignee, close-out note) live in the platform's state database.
//
// The package hands alerts on through Options.Notify with Alertmanager's semantics: every state
// change, and still-firing alerts again every Resend; the notifier pipeline groups and dedupes.
package alerting
