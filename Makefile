# The two commands of the README:
#   make demo   run the whole chain in one process (no external service needed)
#   make test   install what the tests need on a fresh machine, then run every test
GOPATH_BIN := $(shell go env GOPATH)/bin
INFLUXD    := $(GOPATH_BIN)/influxd
APT_PKGS   := mosquitto socat python3-pymodbus prometheus-alertmanager chromium fonts-noto-cjk poppler-utils fonts-droid-fallback fonts-dejavu-core
SUDO       := $(shell [ "$$(id -u)" = 0 ] || echo sudo)

.PHONY: demo test test-deps build bench

demo:
	go run ./cmd/aqualoop demo

build:
	go build ./...

test: test-deps
	PATH="$(GOPATH_BIN):$$PATH" go test -count=1 -timeout 30m ./...

# Real services, as ARCHITECTURE.md prescribes: Mosquitto and the pymodbus RTU slave from Debian,
# InfluxDB 1.8.10 built from source with go install (about 2.5 minutes the first time, cached after).
test-deps:
	@missing=""; \
	for p in $(APT_PKGS); do dpkg -s $$p >/dev/null 2>&1 || missing="$$missing $$p"; done; \
	if [ -n "$$missing" ]; then \
		echo "installing$$missing from apt"; \
		$(SUDO) apt-get update -qq && DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y -qq $$missing >/dev/null; \
	fi
	@[ -x "$(INFLUXD)" ] || { echo "installing influxd 1.8.10 with go install"; go install github.com/influxdata/influxdb/cmd/influxd@v1.8.10; }

bench:
	PATH="$(GOPATH_BIN):$$PATH" go test -run '^$$' -bench . -benchmem ./...
