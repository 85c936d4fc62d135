// Package deploy holds no code: its folder carries the production files (systemd units, the
// Mosquitto and InfluxDB configurations, the Grafana dashboard), and its tests run each of them
// against the real server or the code it describes, so a deployment file cannot drift from the
// binaries.
package deploy
