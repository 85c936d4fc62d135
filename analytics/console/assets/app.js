// aqualoop operators' console. Hand-written, no library: a hash router, one fetch helper that
// knows the auth contract, one formatter (site time zone, m³, %), hand-drawn SVG for the water
// balance diagram, the trends and the plan burn-downs, and an EventSource for live updates.
"use strict";
(function () {
  const CAT = window.AQ_CATALOGUE;
  const CHINA_ZONES = ["Asia/Shanghai", "Asia/Chongqing", "Asia/Chungking", "Asia/Harbin", "Asia/Urumqi", "Asia/Kashgar", "PRC", "Asia/Hong_Kong", "Asia/Macau"];
  const MIN_REFRESH = 5000; // ms between two refetches of the open page on live events
  const LOW_COVERAGE = 0.9; // below it a figure is shown as provisional, never as a confident number
  const PAGES = ["overview", "balance", "trends", "meters", "plans", "alerts", "park", "reports"];

  const S = {
    lang: null, sites: [], site: null, model: null, tz: "UTC",
    page: "overview", period: "day", custom: null, step: "hour", meter: null,
    alerts: null, // null unknown, false unavailable (404), true available
    pack: null, // the evidence-pack page's choice: { kind, month, year, from, to }
    es: null, liveSeq: 0, live: null, opened: false, render: 0, lastRender: 0, plans: null,
  };

  // ---------- strings ----------
  function t(key, args) {
    let s = (CAT[S.lang] && CAT[S.lang][key]) || CAT.en[key] || key;
    if (args) for (const k in args) s = s.split("{" + k + "}").join(args[k]);
    return s;
  }
  function esc(v) {
    return String(v == null ? "" : v).replace(/[&<>"']/g, (c) => ({ "&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&#39;" })[c]);
  }

  // ---------- formatting: the one place numbers and times become text ----------
  const F = {
    nf(d) { return new Intl.NumberFormat(S.lang === "en" ? "en-US" : "zh-CN", { minimumFractionDigits: d, maximumFractionDigits: d }); },
    // Volumes are rounded for display only: 2 decimals below 10 m³, 1 below 1 000, none above.
    volDigits(v) { const a = Math.abs(v); return a < 10 ? 2 : a < 1000 ? 1 : 0; },
    num(v, d) { return v == null || !isFinite(v) ? t("common.none") : F.nf(d).format(v); },
    vol(v) { return v == null || !isFinite(v) ? t("common.none") : F.num(v, F.volDigits(v)) + " m³"; },
    flow(v) { return v == null || !isFinite(v) ? t("common.none") : F.num(v, Math.abs(v) < 100 ? 1 : 0) + " m³/h"; },
    // Rates arrive as ratios at full precision; reuse rates need two decimals to compare with a
    // benchmark like 98.07 %, the others one.
    pct(x, d) { return x == null || !isFinite(x) ? t("common.none") : F.num(x * 100, d == null ? 1 : d) + " %"; },
    dt(d, opts) { return new Intl.DateTimeFormat(S.lang === "en" ? "en-GB" : "zh-CN", Object.assign({ timeZone: S.tz, hour12: false }, opts)).format(new Date(d)); },
    // One clock format in both languages: the site's wall time, 2026-03-03 10:20.
    time(d) { return F.local(d).replace("T", " "); },
    date(d) { return F.local(d).slice(0, 10); },
    clock(d) { return F.dt(d, { hour: "2-digit", minute: "2-digit", second: "2-digit" }); },
    zone() {
      let off = "";
      try {
        const p = new Intl.DateTimeFormat("en-US", { timeZone: S.tz, timeZoneName: "shortOffset" }).formatToParts(new Date());
        off = (p.find((x) => x.type === "timeZoneName") || {}).value || "";
      } catch (e) { /* an old browser without shortOffset shows the zone name alone */ }
      return S.tz + (off ? " (" + off.replace("GMT", "UTC") + ")" : "");
    },
    age(sec) {
      if (sec < 90) return t("age.s", { n: Math.max(0, Math.round(sec)) });
      if (sec < 5400) return t("age.m", { n: Math.round(sec / 60) });
      if (sec < 172800) return t("age.h", { n: Math.round(sec / 3600) });
      return t("age.d", { n: Math.round(sec / 86400) });
    },
    // Local wall time of the site as the API's ParseTime reads it (no offset: the site's zone).
    local(d) {
      const p = {};
      new Intl.DateTimeFormat("en-GB", { timeZone: S.tz, year: "numeric", month: "2-digit", day: "2-digit", hour: "2-digit", minute: "2-digit", hour12: false })
        .formatToParts(new Date(d)).forEach((x) => { p[x.type] = x.value; });
      return p.year + "-" + p.month + "-" + p.day + "T" + (p.hour === "24" ? "00" : p.hour) + ":" + p.minute;
    },
  };

  // ---------- API with the auth contract ----------
  class HTTPError extends Error { constructor(status, msg) { super(msg); this.status = status; } }
  function cookie(name) {
    const m = document.cookie.match(new RegExp("(?:^|; )" + name + "=([^;]*)"));
    return m ? decodeURIComponent(m[1]) : "";
  }
  async function api(path, opts) {
    opts = opts || {};
    const init = { method: opts.method || "GET", credentials: "same-origin", headers: { Accept: "application/json" } };
    if (init.method !== "GET") {
      init.headers["Content-Type"] = "application/json";
      init.headers["X-CSRF-Token"] = cookie("aqualoop_csrf");
      init.body = JSON.stringify(opts.body || {});
    }
    const res = await fetch(path, init);
    if (res.status === 401 && !opts.noLogin) {
      showLogin();
      throw new HTTPError(401, "unauthorized");
    }
    let body = null;
    try { body = await res.json(); } catch (e) { body = null; }
    // Errors are {"error": {"code", "message", "field"}} (analytics/api/problem, alerting).
    const e = body && body.error;
    if (!res.ok) throw new HTTPError(res.status, (e && (e.message || (typeof e === "string" ? e : ""))) || res.statusText);
    return body;
  }
  function showLogin() { document.getElementById("login").hidden = false; setTimeout(() => document.getElementById("login-token").focus(), 0); }
  async function login(token) {
    const err = document.getElementById("login-err");
    err.hidden = true;
    try {
      const who = await api("/api/v1/session", { method: "POST", body: { token: token }, noLogin: true });
      document.getElementById("login").hidden = true;
      showUser(Object.assign({ via: "session" }, who));
      return true;
    } catch (e) {
      err.textContent = t("login.failed");
      err.hidden = false;
      return false;
    }
  }

  // whoami shows who is signed in and the sign-out button, which only a browser session has
  // (a bearer token, a proxy's user or an open platform has nothing to end).
  async function whoami() {
    try { showUser(await api("/api/v1/session", { noLogin: true })); } catch (e) { showUser(null); }
  }
  function showUser(who) {
    const b = $("#logout");
    b.hidden = !(who && who.via === "session");
    b.title = who && who.name ? who.name + " (" + who.role + ")" : "";
  }
  async function logout() {
    try { await api("/api/v1/session", { method: "DELETE", noLogin: true }); } catch (e) { /* the cookies go with the reload either way */ }
    if (S.es) { S.es.close(); S.es = null; }
    location.reload(); // forget what was shown; the reload asks for a token again
  }

  // ---------- small helpers ----------
  const $ = (sel, el) => (el || document).querySelector(sel);
  function min(xs) { return xs.length ? Math.min.apply(null, xs) : 0; }
  function sum(xs) { return xs.reduce((a, b) => a + b, 0); }
  function covOf(flows, pred) { return min(flows.filter(pred).map((f) => f.coverage)); }
  function nodeName(id) { const n = S.model && S.model.nodes.find((x) => x.id === id); return n ? n.name || n.id : id; }
  function meterName(id) { const m = S.model && S.model.meters.find((x) => x.id === id); return m && m.name ? m.name : id; }
  function covBar(c) {
    return '<div class="cov"><span>' + esc(t("common.coverage", { v: F.pct(c, 0) })) + '</span><span class="track"><span class="fill" style="width:' + Math.round(Math.max(0, Math.min(1, c)) * 100) + '%"></span></span></div>';
  }
  function periodQuery() {
    if (S.period === "custom" && S.custom) return "from=" + encodeURIComponent(S.custom.from) + "&to=" + encodeURIComponent(S.custom.to);
    return "period=" + (S.period === "custom" ? "day" : S.period);
  }
  function periodBar(onChange) {
    const ps = ["hour", "day", "month", "custom"];
    const now = S.model ? S.model.now : new Date().toISOString();
    const c = S.custom || { from: F.local(new Date(new Date(now).getTime() - 86400000)), to: F.local(now) };
    let h = '<div class="bar"><div class="seg" role="group">' + ps.map((p) => '<button type="button" data-period="' + p + '" class="' + (S.period === p ? "on" : "") + '">' + esc(t("period." + p)) + "</button>").join("") + "</div>";
    if (S.period === "custom") {
      h += '<form class="custom" id="custom"><label>' + esc(t("period.from")) + ' <input type="datetime-local" name="from" value="' + esc(c.from) + '" required></label><label>' + esc(t("period.to")) + ' <input type="datetime-local" name="to" value="' + esc(c.to) + '" required></label><button class="btn small">' + esc(t("period.apply")) + "</button></form>";
    }
    h += '<span class="muted" id="span"></span></div>';
    return { html: h, bind(el) {
      el.querySelectorAll("[data-period]").forEach((b) => b.addEventListener("click", () => { S.period = b.dataset.period; if (S.period === "custom" && !S.custom) S.custom = c; onChange(); }));
      const f = el.querySelector("#custom");
      if (f) f.addEventListener("submit", (e) => { e.preventDefault(); S.custom = { from: f.from.value, to: f.to.value }; onChange(); });
    } };
  }
  function showSpan(el, from, to) { const s = el.querySelector("#span"); if (s) s.textContent = t("period.span", { from: F.time(from), to: F.time(to) }); }

  // ---------- chrome: header, tabs, language ----------
  function chooseLang() {
    const saved = localStorage.getItem("aqualoop.lang");
    if (saved && CAT[saved]) return saved;
    if (CHINA_ZONES.includes(S.tz)) return "zh-CN";
    return (navigator.language || "").toLowerCase().startsWith("zh") ? "zh-CN" : "en";
  }
  function applyChrome() {
    document.documentElement.lang = S.lang;
    document.title = t("app.title");
    document.querySelectorAll("[data-t]").forEach((el) => { el.textContent = t(el.dataset.t); });
    const lb = $("#lang");
    lb.textContent = t("lang.switch");
    lb.title = t("lang.switch.title");
    $("#zone").textContent = t("zone.label") + " " + F.zone();
    const tabs = $("#tabs");
    tabs.innerHTML = PAGES.map((p) => '<a href="#/' + p + "/" + encodeURIComponent(S.site || "") + '" data-page="' + p + '"' + (p === "alerts" && S.alerts === false ? " hidden" : "") + (p === "park" && S.model && !S.model.park ? " hidden" : "") + ' class="' + (p === S.page ? "on" : "") + '">' + esc(t("nav." + p)) + "</a>").join("");
    updateLive();
  }
  function updateLive() {
    const el = $("#live");
    el.dataset.state = S.es ? (S.es.readyState === 1 ? "on" : "retry") : "off";
    $("#live-text").textContent = S.es && S.es.readyState !== 1 ? t("live.reconnecting") : S.live ? t("live.updated", { t: F.clock(S.live.at) }) : t("live.waiting");
  }

  // ---------- live updates ----------
  let refreshTimer = null, retryTimer = null;
  function connectLive() {
    if (S.es) S.es.close();
    clearTimeout(retryTimer);
    const es = new EventSource("/api/v1/events?site=" + encodeURIComponent(S.site));
    S.es = es;
    es.addEventListener("open", () => {
      // After a server restart or a dropped connection the page may have missed changes: fetch again.
      if (S.opened) scheduleRefresh(0);
      S.opened = true;
      updateLive();
    });
    es.addEventListener("error", () => {
      // EventSource retries by itself after a network error, but gives up for good on an HTTP
      // error (a 503 while the platform stops, a 401): then retry here.
      if (es.readyState === 2 && S.es === es) retryTimer = setTimeout(connectLive, 3000);
      updateLive();
    });
    es.addEventListener("snapshot", (e) => {
      let ev;
      try { ev = JSON.parse(e.data); } catch (err) { return; }
      if (ev.site !== S.site) return;
      const first = !S.live;
      S.live = ev;
      S.liveSeq++;
      document.body.dataset.liveSeq = String(S.liveSeq);
      document.body.dataset.liveAt = ev.at;
      updateLive();
      if (!first) scheduleRefresh(400);
    });
  }
  function scheduleRefresh(ms) {
    // The evidence-pack page shows no live figures; a refresh would only clear its messages.
    if (S.page === "reports") return;
    // Pages showing a past custom period do not change with new data.
    if (S.period === "custom" && (S.page === "overview" || S.page === "balance")) return;
    // In the demo (60× time) and on a busy site snapshots come every few seconds: refetch the
    // open page at most every 5 s; the header shows every event at once.
    ms = Math.max(ms, MIN_REFRESH - (Date.now() - S.lastRender));
    if (refreshTimer) return;
    refreshTimer = setTimeout(() => { refreshTimer = null; render(true); }, ms);
  }

  // ---------- router ----------
  function parseHash() {
    const parts = location.hash.replace(/^#\/?/, "").split("/");
    const page = PAGES.includes(parts[0]) ? parts[0] : "overview";
    const site = parts[1] ? decodeURIComponent(parts[1]) : null;
    return { page, site };
  }
  async function route() {
    const r = parseHash();
    const site = r.site && S.sites.some((s) => s.id === r.site) ? r.site : S.site || (S.sites[0] && S.sites[0].id);
    if (!site) { $("#main").innerHTML = '<div class="card">' + esc(t("common.nodata")) + "</div>"; return; }
    if (site !== S.site || !S.model) {
      S.site = site;
      localStorage.setItem("aqualoop.site", site);
      S.model = await api("/api/v1/sites/" + encodeURIComponent(site) + "/model");
      S.tz = S.model.timezone || "UTC";
      S.live = null;
      S.opened = false;
      if (!S.lang) S.lang = chooseLang();
      $("#site").value = site;
      connectLive();
    }
    S.page = r.page;
    if ("#/" + S.page + "/" + encodeURIComponent(S.site) !== location.hash) history.replaceState(null, "", "#/" + S.page + "/" + encodeURIComponent(S.site));
    applyChrome();
    render(false);
  }

  async function render(refresh) {
    const main = $("#main");
    const id = ++S.render;
    S.lastRender = Date.now();
    document.body.dataset.ready = "";
    if (!refresh) main.innerHTML = '<p class="muted">' + esc(t("common.loading")) + "</p>";
    try {
      await PAGE[S.page](main, id, refresh);
    } catch (e) {
      if (id !== S.render) return;
      if (e.status === 401) { main.innerHTML = ""; return; }
      main.innerHTML = '<div class="card err">' + esc(t("common.error", { msg: e.message })) + "</div>";
    }
    if (id === S.render) document.body.dataset.ready = S.page;
  }
  // stale reports whether a newer render started while this one awaited the API.
  const stale = (id) => id !== S.render;
  function site() { return "/api/v1/sites/" + encodeURIComponent(S.site); }

  // ---------- pages ----------
  const PAGE = {};

  PAGE.overview = async function (main, id, refresh) {
    const q = periodQuery();
    // Plans move slowly and cost the most to compute: a live refresh reuses them for a minute.
    const cached = refresh && S.plans && S.plans.site === S.site && Date.now() - S.plans.time < 60000;
    const [ind, bal, plans] = await Promise.all([api(site() + "/indicators?" + q), api(site() + "/balance?" + q), cached ? S.plans.data : api(site() + "/plans")]);
    if (stale(id)) return;
    if (!cached) S.plans = { site: S.site, time: Date.now(), data: plans };
    const pb = periodBar(() => render(false));
    const m = S.model;
    const flows = ind.flows || [];
    const declared = ind.declared === "reuse_rate_with_vu" ? ind.indicators.reuse_rate_with_vu : ind.indicators.reuse_rate;
    const reusedKinds = ["circulating", "cascade", "condensate", "wastewater_reuse"];
    const yearPlan = plans.find((p) => p.period === "year" && !p.source);
    const bench = m.benchmark;
    const R = declared.value;
    const tiles = [
      { key: "r", label: t("tile.r"), value: F.pct(R, 2), raw: R, cov: declared.coverage,
        status: R == null || !bench ? "" : R >= bench.reuse_rate ? "ok" : "warn",
        bench: bench ? t("tile.benchmark", { v: F.pct(bench.reuse_rate, 1), sector: bench.sector, year: bench.year }) + (R != null ? " · " + t(R >= bench.reuse_rate ? "tile.above" : "tile.below") : "") : t("tile.nobenchmark") },
      { key: "intake", label: t("tile.intake"), value: F.vol(ind.volumes.vi), raw: ind.volumes.vi, cov: covOf(flows, (f) => f.kind === "intake"),
        status: yearPlan ? (yearPlan.projected_over ? "bad" : yearPlan.crossed.length ? "warn" : "ok") : "",
        bench: yearPlan ? t("tile.plan", { used: F.pct(yearPlan.used_fraction, 1), proj: F.vol(yearPlan.projected) }) : t("tile.noplan") },
      { key: "reuse", label: t("tile.reuse"), value: F.vol(ind.volumes.vr), raw: ind.volumes.vr, cov: covOf(flows, (f) => reusedKinds.includes(f.kind)),
        bench: t("tile.rc", { v: F.pct(ind.indicators.indirect_cooling_rate.value, 2) }) },
      { key: "discharge", label: t("tile.discharge"), value: F.vol(ind.volumes.vd), raw: ind.volumes.vd, cov: covOf(flows, (f) => f.kind === "discharge"),
        bench: t("tile.kd", { v: F.pct(ind.indicators.discharge_rate.value, 1) }) },
      { key: "leakage", label: t("tile.leakage"), value: F.pct(ind.indicators.leakage_rate.value, 1), raw: ind.indicators.leakage_rate.value, cov: ind.indicators.leakage_rate.coverage,
        status: ind.indicators.leakage_rate.value == null ? "" : Math.abs(ind.indicators.leakage_rate.value) > m.balance.imbalance_alarm ? "bad" : Math.abs(ind.indicators.leakage_rate.value) > m.balance.imbalance_warn ? "warn" : "ok",
        extra: t("tile.vl", { v: F.vol(ind.volumes.vl) }), bench: t("tile.leakwarn", { v: F.pct(m.balance.imbalance_warn, 0) }) },
      { key: "closure", label: t("tile.closure"), value: F.pct(bal.site_balance.closure_error, 1), raw: bal.site_balance.closure_error, cov: bal.coverage,
        status: bal.site_balance.closure_ok ? "ok" : "bad",
        extra: t(bal.site_balance.closure_ok ? "tile.closure.ok" : "tile.closure.fail"), bench: t("tile.closure.limit", { v: F.pct(bal.site_balance.closure_threshold, 0) }) },
    ];
    let h = "<h1>" + esc(m.name) + '</h1><p class="sub">' + esc(t("nav.overview")) + "</p>" + pb.html + '<div class="grid six">';
    for (const x of tiles) {
      const low = x.cov < LOW_COVERAGE;
      h += '<section class="tile ' + (low ? "low" : x.status || "") + '" data-tile="' + x.key + '" data-value="' + esc(x.raw == null ? "" : x.raw) + '" data-coverage="' + esc(x.cov) + '">';
      h += '<div class="label">' + esc(x.label) + "</div>";
      if (low) {
        h += '<div class="value">' + esc(x.cov === 0 ? t("common.nodata") : t("common.lowcov", { v: F.pct(x.cov, 0) })) + "</div>";
        if (x.cov > 0) h += '<div class="meta">' + esc(t("common.provisional", { v: x.value })) + "</div>";
      } else {
        h += '<div class="value">' + esc(x.value) + "</div>";
        if (x.extra) h += '<div class="meta">' + esc(x.extra) + "</div>";
      }
      h += '<div class="meta">' + covBar(x.cov) + "</div>";
      h += '<div class="bench">' + esc(x.bench) + "</div></section>";
    }
    h += "</div>";
    // Every GB/T 7119 indicator with its formula and coverage.
    const keys = ["reuse_rate", "reuse_rate_with_vu", "indirect_cooling_rate", "direct_cooling_rate", "condensate_rate", "wastewater_reuse_rate", "leakage_rate", "discharge_rate", "consumption_rate", "non_conventional_rate"];
    h += '<div class="two wide-left"><section class="card"><h2>' + esc(t("ind.title")) + '</h2><div class="scroll"><table><thead><tr><th>' + esc(t("common.name")) + '</th><th class="num">' + esc(t("common.value")) + '</th><th class="hide-phone">' + esc(t("ind.formula")) + '</th><th class="num">' + esc(t("ind.coverage")) + "</th></tr></thead><tbody>";
    for (const k of keys) {
      const v = ind.indicators[k];
      if (!v) continue;
      h += '<tr><td class="name">' + esc(t("ind." + k)) + (v.declared ? ' <span class="pill">' + esc(t("ind.declared")) + "</span>" : "") + '</td><td class="num">' + esc(F.pct(v.value, k.startsWith("reuse") ? 2 : 1)) + '</td><td class="muted wrap hide-phone">' + esc(v.formula) + '</td><td class="num">' + esc(F.pct(v.coverage, 0)) + "</td></tr>";
    }
    h += '</tbody></table></div></section><section class="card"><h2>' + esc(t("vol.title")) + '</h2><div class="scroll"><table><tbody>';
    for (const k of ["vi", "vu", "vr", "vcy", "vs", "vt", "vco", "vd", "vl"]) h += "<tr><td>" + esc(t("vol." + k)) + ' <span class="muted">V<sub>' + k.slice(1) + '</sub></span></td><td class="num">' + esc(F.vol(ind.volumes[k])) + "</td></tr>";
    h += "</tbody></table></div></section></div>";
    main.innerHTML = h;
    pb.bind(main);
    showSpan(main, ind.from, ind.to);
  };

  // ----- the water balance diagram -----
  const KIND_COLOUR = { intake: "#2563eb", non_conventional: "#0891b2", internal: "#64748b", cascade: "#7c3aed", condensate: "#db2777",
    wastewater_reuse: "#16a34a", circulating: "#0d9488", discharge: "#92400e", consumption: "#d97706", supplied: "#4f46e5", transfer: "#64748b" };
  function residualClass(n) {
    if (n.type !== "unit" || n.closure == null) return "na";
    const a = Math.abs(n.closure), m = S.model.balance;
    return a > m.imbalance_alarm ? "alarm" : a > m.imbalance_warn ? "warn" : "ok";
  }
  const RES_FILL = { ok: "#16a34a", warn: "#f59e0b", alarm: "#dc2626", na: "#475569" };

  // wrap splits a label into at most two lines of about maxPx at 12 px (CJK glyphs are about
  // twice as wide as Latin ones); the second line ends in an ellipsis when the name is longer.
  function wrap(text, maxPx) {
    const w = (str) => sum(Array.from(str).map((c) => (c.charCodeAt(0) > 0x2e80 ? 12 : 6.6)));
    const cjk = /[\u2e80-\u9fff]/.test(text);
    const words = cjk ? Array.from(text) : text.split(" ");
    const sep = cjk ? "" : " ";
    const lines = [""];
    for (const word of words) {
      const cur = lines[lines.length - 1];
      const next = cur ? cur + sep + word : word;
      if (w(next) <= maxPx || !cur) lines[lines.length - 1] = next;
      else lines.push(word);
    }
    if (lines.length > 2) {
      let l2 = lines[1];
      while (l2.length > 1 && w(l2 + "…") > maxPx) l2 = l2.slice(0, -1);
      return [lines[0], l2 + "…"];
    }
    return lines;
  }

  function sankey(bal) {
    const nodes = bal.nodes.map((n) => Object.assign({}, n));
    const byId = {};
    nodes.forEach((n) => { byId[n.id] = n; n.ins = []; n.outs = []; });
    const loops = bal.flows.filter((f) => f.from === f.to);
    const links = bal.flows.filter((f) => f.from !== f.to && byId[f.from] && byId[f.to]).map((f) => Object.assign({}, f));
    links.forEach((l) => { byId[l.from].outs.push(l); byId[l.to].ins.push(l); });
    // Back edges of cycles (a reuse plant feeding an earlier unit) are found by depth-first search
    // from the sources and drawn under the diagram; the rest is layered by longest path.
    const state = {};
    function dfs(id) {
      state[id] = 1;
      for (const l of byId[id].outs) {
        if (state[l.to] === 1) l.back = true;
        else if (!state[l.to]) dfs(l.to);
      }
      state[id] = 2;
    }
    nodes.filter((n) => n.type === "source").forEach((n) => { if (!state[n.id]) dfs(n.id); });
    nodes.forEach((n) => { if (!state[n.id]) dfs(n.id); });
    const col = {};
    const indeg = {};
    nodes.forEach((n) => { col[n.id] = 0; indeg[n.id] = n.ins.filter((l) => !l.back).length; });
    const queue = nodes.filter((n) => indeg[n.id] === 0).map((n) => n.id);
    while (queue.length) {
      const id = queue.shift();
      for (const l of byId[id].outs) {
        if (l.back) continue;
        col[l.to] = Math.max(col[l.to], col[id] + 1);
        if (--indeg[l.to] === 0) queue.push(l.to);
      }
    }
    let maxCol = 0;
    nodes.forEach((n) => { if (n.type !== "sink") maxCol = Math.max(maxCol, col[n.id]); });
    nodes.forEach((n) => { if (n.type === "sink") col[n.id] = maxCol + 1; });
    const ncol = maxCol + 2;
    const val = (n) => Math.max(sum(n.ins.map((l) => Math.abs(l.volume))), sum(n.outs.map((l) => Math.abs(l.volume))));
    const columns = [];
    for (let c = 0; c < ncol; c++) columns.push(nodes.filter((n) => col[n.id] === c));
    const W = 1400, nodeW = 14, padTop = 12, gap = 18, H = 520, minH = 8;
    const spacing = (W - 40 - nodeW) / Math.max(1, ncol - 1);
    const colX = (c) => 20 + c * spacing;
    // Names go above their node, wrapped to the column's width; the residual line under them.
    nodes.forEach((n) => {
      n.lines = wrap(n.name || n.id, spacing - 22);
      n.labelH = n.lines.length * 14 + (n.type === "unit" ? 13 : 0) + 6;
    });
    let k = Infinity;
    columns.forEach((cs) => {
      const total = sum(cs.map(val));
      const fixed = sum(cs.map((n) => n.labelH)) + gap * (cs.length - 1);
      if (total > 0) k = Math.min(k, Math.max(60, H - fixed) / total);
    });
    if (!isFinite(k)) k = 0;
    // Order each column by where its inflows come from, so bands cross as little as they can.
    let height = 0;
    columns.forEach((cs, c) => {
      if (c > 0) cs.sort((a, b) => bary(a) - bary(b));
      let y = padTop;
      cs.forEach((n) => { y += n.labelH; n.x = colX(c); n.y = y; n.h = Math.max(minH, val(n) * k); y += n.h + gap; });
      height = Math.max(height, y);
    });
    function bary(n) {
      const ins = n.ins.filter((l) => !l.back && byId[l.from].y != null);
      if (!ins.length) return 1e9;
      return sum(ins.map((l) => byId[l.from].y + byId[l.from].h / 2)) / ins.length;
    }
    const width = (l) => Math.max(1.5, Math.abs(l.volume) * k);
    nodes.forEach((n) => {
      n.outs.sort((a, b) => (byId[a.to].y || 0) - (byId[b.to].y || 0));
      n.ins.sort((a, b) => (byId[a.from].y || 0) - (byId[b.from].y || 0));
      let y = n.y; n.outs.forEach((l) => { l.sy = y + width(l) / 2; y += width(l); });
      y = n.y; n.ins.forEach((l) => { l.ty = y + width(l) / 2; y += width(l); });
    });
    const backs = links.filter((l) => l.back);
    const svgH = height + (backs.length ? backs.length * 22 + 24 : 0) + 8;
    let s = '<svg class="sankey" viewBox="0 0 ' + W + " " + svgH + '" role="img" aria-label="' + esc(t("bal.title")) + '">';
    let b = 0;
    for (const l of links) {
      const a = byId[l.from], z = byId[l.to];
      const x0 = a.x + nodeW, x1 = z.x, w = width(l);
      let d, lx, ly;
      if (l.back) {
        const yb = height + 14 + (b++) * 22;
        d = "M" + x0 + " " + l.sy + " C" + (x0 + 60) + " " + l.sy + " " + (x0 + 60) + " " + yb + " " + (x0 - 10) + " " + yb + " L" + (x1 + 10) + " " + yb + " C" + (x1 - 60) + " " + yb + " " + (x1 - 60) + " " + l.ty + " " + x1 + " " + l.ty;
        lx = (x0 + x1) / 2; ly = yb - w / 2 - 4;
      } else {
        const mx = (x0 + x1) / 2;
        d = "M" + x0 + " " + l.sy + " C" + mx + " " + l.sy + " " + mx + " " + l.ty + " " + x1 + " " + l.ty;
        // The label sits half a column after the source, so a band that spans several columns
        // does not put its label on a node it passes.
        const want = Math.min(mx, x0 + (spacing - nodeW) / 2);
        const bez = (a, b, c, e, u) => (1 - u) ** 3 * a + 3 * (1 - u) ** 2 * u * b + 3 * (1 - u) * u * u * c + u ** 3 * e;
        let lo = 0, hi = 1;
        for (let i = 0; i < 20; i++) { const u = (lo + hi) / 2; if (bez(x0, mx, mx, x1, u) < want) lo = u; else hi = u; }
        lx = want; ly = bez(l.sy, l.sy, l.ty, l.ty, lo) + 4;
      }
      const tip = t("kind." + l.kind) + " · " + nodeName(l.from) + " → " + nodeName(l.to) + " · " + F.vol(l.volume) + " · " + (l.meter ? t("bal.meter", { m: meterName(l.meter) + " (" + l.meter + ")" }) : t("bal.derived")) + " · " + t("common.coverage", { v: F.pct(l.coverage, 0) });
      s += '<g class="flow" data-flow="' + esc(l.id) + '" data-volume="' + esc(l.volume) + '" data-from="' + esc(l.from) + '" data-to="' + esc(l.to) + '"><title>' + esc(tip) + "</title>";
      s += '<path d="' + d + '" stroke="' + (KIND_COLOUR[l.kind] || "#64748b") + '" stroke-width="' + w.toFixed(2) + '"' + (l.derived ? ' class="derived"' : "") + "></path>";
      s += '<text class="flow-label vol" x="' + lx.toFixed(1) + '" y="' + ly.toFixed(1) + '" text-anchor="middle">' + esc(F.vol(l.volume)) + "</text></g>";
    }
    for (const n of nodes) {
      const rc = residualClass(n);
      const last = col[n.id] === ncol - 1;
      const tx = last ? n.x + nodeW : n.x, anchor = last ? "end" : "start";
      s += '<g class="node" data-node="' + esc(n.id) + '" data-residual="' + esc(n.residual) + '" data-status="' + rc + '">';
      s += "<title>" + esc((n.name || n.id) + " · " + t("bal.in") + " " + F.vol(n.in) + " · " + t("bal.out") + " " + F.vol(n.out) + (n.type === "unit" ? " · " + t("bal.residual") + " " + F.vol(n.residual) : "")) + "</title>";
      s += '<rect x="' + n.x + '" y="' + n.y.toFixed(1) + '" width="' + nodeW + '" height="' + n.h.toFixed(1) + '" rx="3" fill="' + RES_FILL[rc] + '"></rect>';
      const top = n.y - n.labelH + 14;
      s += '<text class="node-name" x="' + tx + '" y="' + top.toFixed(1) + '" text-anchor="' + anchor + '">' + n.lines.map((ln, i) => '<tspan x="' + tx + '" dy="' + (i ? 14 : 0) + '">' + esc(ln) + "</tspan>").join("") + "</text>";
      if (n.type === "unit") s += '<text class="node-res" x="' + tx + '" y="' + (n.y - 6).toFixed(1) + '" text-anchor="' + anchor + '" fill="' + (rc === "na" || rc === "ok" ? "#475569" : RES_FILL[rc]) + '">' + esc(t("bal.residual") + " " + F.vol(n.residual) + (n.closure != null ? " · " + F.pct(n.closure, 1) : "")) + "</text>";
      const lp = loops.filter((f) => f.from === n.id);
      lp.forEach((f, i) => {
        s += '<g class="flow loop" data-flow="' + esc(f.id) + '" data-volume="' + esc(f.volume) + '" data-from="' + esc(f.from) + '" data-to="' + esc(f.to) + '"><title>' + esc(t("kind." + f.kind) + " · " + F.vol(f.volume)) + "</title>";
        const y = n.y + n.h + 14 + i * 14;
        s += '<text class="flow-label" x="' + n.x + '" y="' + y.toFixed(1) + '" fill="' + KIND_COLOUR.circulating + '">↻ ' + esc(t("bal.loop", { v: "" })) + '<tspan class="vol">' + esc(F.vol(f.volume)) + "</tspan></text></g>";
      });
      s += "</g>";
    }
    s += "</svg>";
    const kinds = Array.from(new Set(bal.flows.map((f) => f.kind)));
    let lg = '<div class="legend">' + kinds.map((k) => '<span><i style="background:' + (KIND_COLOUR[k] || "#64748b") + '"></i>' + esc(t("kind." + k)) + "</span>").join("");
    lg += ["ok", "warn", "alarm"].map((r) => '<span><i class="box" style="background:' + RES_FILL[r] + '"></i>' + esc(t("bal." + r)) + "</span>").join("");
    lg += '<span><i style="background:#64748b;opacity:.3"></i>' + esc(t("bal.derived")) + "</span></div>";
    return s + lg;
  }

  PAGE.balance = async function (main, id) {
    const bal = await api(site() + "/balance?" + periodQuery());
    if (stale(id)) return;
    const pb = periodBar(() => render(false));
    const w = bal.site_balance;
    let h = "<h1>" + esc(t("bal.title")) + '</h1><p class="sub">' + esc(S.model.name) + "</p>" + pb.html;
    h += '<section class="card"><div class="sankey-wrap" id="sankey">' + sankey(bal) + '</div><p class="muted">' + esc(t("bal.whole", { vi: F.vol(w.vi + w.vu), vco: F.vol(w.vco), vd: F.vol(w.vd), vl: F.vol(w.vl) })) + " · " + esc(t("common.coverage", { v: F.pct(bal.coverage, 0) })) + "</p></section>";
    h += '<section class="card"><h2>' + esc(t("bal.nodes")) + '</h2><div class="scroll"><table><thead><tr><th>' + esc(t("common.name")) + '</th><th class="num">' + esc(t("bal.in")) + '</th><th class="num">' + esc(t("bal.out")) + '</th><th class="num">' + esc(t("bal.consumption")) + '</th><th class="num">' + esc(t("bal.residual")) + '</th><th class="num">' + esc(t("bal.closure")) + "</th></tr></thead><tbody>";
    for (const n of bal.nodes.filter((x) => x.type === "unit")) {
      const rc = residualClass(n);
      h += "<tr><td>" + esc(n.name || n.id) + '</td><td class="num">' + esc(F.vol(n.in)) + '</td><td class="num">' + esc(F.vol(n.out)) + '</td><td class="num">' + esc(F.vol(n.consumption)) + '</td><td class="num">' + esc(F.vol(n.residual)) + '</td><td class="num"><span class="pill ' + (rc === "alarm" ? "bad" : rc) + '">' + esc(F.pct(n.closure, 1)) + "</span></td></tr>";
    }
    h += "</tbody></table></div></section>";
    main.innerHTML = h;
    pb.bind(main);
    showSpan(main, bal.from, bal.to);
  };

  // ----- charts -----
  function niceTicks(lo, hi, n) {
    if (hi === lo) { hi = lo + 1; }
    const raw = (hi - lo) / n, mag = Math.pow(10, Math.floor(Math.log10(raw))), f = raw / mag;
    const step = (f <= 1 ? 1 : f <= 2 ? 2 : f <= 5 ? 5 : 10) * mag;
    const out = [];
    const first = Math.floor(lo / step), last = Math.ceil(hi / step - 1e-9);
    for (let i = first; i <= last; i++) out.push(+(i * step).toPrecision(12));
    if (out.length < 2) out.push(out[0] + step);
    return out;
  }
  // chart draws bars and lines over steps: series [{name, values, colour, type, fmt}], one y axis.
  function chart(labels, series, yfmt, opts) {
    opts = opts || {};
    const W = 760, H = 240, L = 64, R = 12, T = 14, B = 30;
    const all = [].concat.apply([], series.map((s) => s.values.filter((v) => v != null && isFinite(v))));
    let lo = opts.min != null ? opts.min : Math.min(0, min(all)), hi = all.length ? Math.max.apply(null, all) : 1;
    if (opts.max != null) hi = Math.max(hi, opts.max);
    if (opts.fit && all.length) { lo = Math.min.apply(null, all); const pad = (hi - lo) * 0.15 || Math.abs(hi) * 0.01 || 1; lo -= pad; hi += pad; }
    const ticks = niceTicks(lo, hi, 4);
    lo = ticks[0]; hi = ticks[ticks.length - 1];
    const n = labels.length, cw = (W - L - R) / Math.max(1, n);
    const X = (i) => L + cw * i + cw / 2, Y = (v) => T + (H - T - B) * (1 - (v - lo) / (hi - lo || 1));
    let s = '<svg viewBox="0 0 ' + W + " " + H + '" role="img">';
    for (const v of ticks) s += '<line x1="' + L + '" x2="' + (W - R) + '" y1="' + Y(v).toFixed(1) + '" y2="' + Y(v).toFixed(1) + '" stroke="#e2e8f0"></line><text x="' + (L - 6) + '" y="' + (Y(v) + 4).toFixed(1) + '" text-anchor="end" font-size="11" fill="#64748b">' + esc(yfmt(v)) + "</text>";
    const every = Math.ceil(n / 12);
    labels.forEach((lb, i) => { if (i % every === 0) s += '<text x="' + X(i).toFixed(1) + '" y="' + (H - 10) + '" text-anchor="middle" font-size="11" fill="#64748b">' + esc(lb) + "</text>"; });
    const bars = series.filter((x) => x.type === "bar");
    bars.forEach((x, bi) => {
      const bw = Math.max(1, (cw * 0.75) / bars.length);
      x.values.forEach((v, i) => {
        if (v == null) return;
        const x0 = L + cw * i + cw * 0.125 + bi * bw, y0 = Y(Math.max(v, 0)), y1 = Y(Math.min(v, 0));
        s += '<rect x="' + x0.toFixed(1) + '" y="' + y0.toFixed(1) + '" width="' + (bw - 1).toFixed(1) + '" height="' + Math.max(0.5, y1 - y0).toFixed(1) + '" fill="' + x.colour + '" rx="1.5"><title>' + esc(labels[i] + " · " + x.name + " " + x.fmt(v)) + "</title></rect>";
      });
    });
    series.filter((x) => x.type !== "bar").forEach((x) => {
      let d = "", pen = false;
      x.values.forEach((v, i) => {
        if (v == null || !isFinite(v)) { pen = false; return; }
        d += (pen ? "L" : "M") + X(i).toFixed(1) + " " + Y(v).toFixed(1);
        pen = true;
      });
      s += '<path d="' + d + '" fill="none" stroke="' + x.colour + '" stroke-width="2"></path>';
      x.values.forEach((v, i) => { if (v != null && isFinite(v)) s += '<circle cx="' + X(i).toFixed(1) + '" cy="' + Y(v).toFixed(1) + '" r="' + (n > 40 ? 1.5 : 3) + '" fill="' + x.colour + '"><title>' + esc(labels[i] + " · " + x.name + " " + x.fmt(v)) + "</title></circle>"; });
    });
    if (opts.ref != null && opts.ref >= lo && opts.ref <= hi) s += '<line x1="' + L + '" x2="' + (W - R) + '" y1="' + Y(opts.ref).toFixed(1) + '" y2="' + Y(opts.ref).toFixed(1) + '" stroke="#b45309" stroke-dasharray="5 4"></line>';
    s += "</svg>";
    // A reference outside the drawn range is named in the legend, with an arrow to where it lies.
    const refOut = opts.ref == null ? "" : opts.ref < lo ? " ↓" : opts.ref > hi ? " ↑" : "";
    const lg = '<div class="legend">' + series.map((x) => '<span><i style="background:' + x.colour + '"></i>' + esc(x.name) + "</span>").join("") + (opts.refName ? '<span><i style="background:repeating-linear-gradient(90deg,#b45309 0 5px,transparent 5px 9px)"></i>' + esc(opts.refName + refOut) + "</span>" : "") + "</div>";
    return '<div class="chart">' + s + lg + "</div>";
  }

  PAGE.trends = async function (main, id) {
    const ser = await api(site() + "/series?step=" + S.step);
    if (stale(id)) return;
    const fmtLabel = (d) => S.step === "hour" ? F.dt(d, { hour: "2-digit", minute: "2-digit" }) : S.step === "day" ? F.dt(d, { month: "2-digit", day: "2-digit" }) : F.dt(d, { year: "numeric", month: "2-digit" });
    const labels = ser.steps.map((x) => fmtLabel(x.from));
    const metered = S.model.meters;
    if (!S.meter || !metered.some((m) => m.id === S.meter)) S.meter = metered.length ? metered[0].id : null;
    const bench = S.model.benchmark;
    let h = "<h1>" + esc(t("nav.trends")) + '</h1><p class="sub">' + esc(S.model.name) + '</p><div class="bar"><div class="seg">' + ["hour", "day", "month"].map((p) => '<button type="button" data-step="' + p + '" class="' + (S.step === p ? "on" : "") + '">' + esc(t("step." + p)) + "</button>").join("") + "</div></div>";
    h += '<div class="two"><section class="card" id="trend-r"><h2>' + esc(t("trend.r")) + "</h2>" + chart(labels, [{ name: t("trend.r"), values: ser.steps.map((x) => x.reuse_rate), colour: "#0e7490", type: "line", fmt: (v) => F.pct(v, 2) }], (v) => F.pct(v, 1), { fit: true, ref: bench ? bench.reuse_rate : null, refName: bench ? t("tile.benchmark", { v: F.pct(bench.reuse_rate, 1), sector: bench.sector, year: bench.year }) : null }) + "</section>";
    // Intake and reused water differ by two orders of magnitude (recirculation): one chart each.
    h += '<section class="card" id="trend-vi"><h2>' + esc(t("vol.vi")) + " (m³)</h2>" + chart(labels, [{ name: t("vol.vi"), values: ser.steps.map((x) => x.vi), colour: "#2563eb", type: "bar", fmt: F.vol }], (v) => F.num(v, 0)) + "</section></div>";
    h += '<div class="two"><section class="card" id="trend-vr"><h2>' + esc(t("vol.vr")) + " (m³)</h2>" + chart(labels, [{ name: t("vol.vr"), values: ser.steps.map((x) => x.vr), colour: "#0d9488", type: "bar", fmt: F.vol }], (v) => F.num(v, 0)) + "</section>";
    h += '<section class="card" id="trend-vd"><h2>' + esc(t("vol.vd")) + " / " + esc(t("vol.vl")) + " (m³)</h2>" + chart(labels, [
      { name: t("vol.vd"), values: ser.steps.map((x) => x.vd), colour: "#92400e", type: "bar", fmt: F.vol },
      { name: t("vol.vl"), values: ser.steps.map((x) => x.vl), colour: "#dc2626", type: "bar", fmt: F.vol },
    ], (v) => F.num(v, 0)) + "</section></div>";
    h += '<section class="card" id="trend-m"><h2>' + esc(t("trend.meter")) + '</h2><div class="bar"><label class="custom">' + esc(t("trend.pick")) + ' <select class="pick" id="meter">' + metered.map((m) => '<option value="' + esc(m.id) + '"' + (m.id === S.meter ? " selected" : "") + ">" + esc((m.name || m.id) + " (" + m.id + ")") + "</option>").join("") + "</select></label></div>";
    const mv = ser.steps.map((x) => (x.meters[S.meter] ? x.meters[S.meter].volume : null));
    const mf = ser.steps.map((x) => (x.meters[S.meter] ? x.meters[S.meter].flow : null));
    h += '<div class="two"><div>' + chart(labels, [{ name: t("trend.volume") + " (m³)", values: mv, colour: "#7c3aed", type: "bar", fmt: F.vol }], (v) => F.num(v, 0)) + "</div><div>" + chart(labels, [{ name: t("trend.flow") + " (m³/h)", values: mf, colour: "#db2777", type: "line", fmt: F.flow }], (v) => F.num(v, 1), { fit: true }) + "</div></div></section>";
    main.innerHTML = h;
    main.querySelectorAll("[data-step]").forEach((b) => b.addEventListener("click", () => { S.step = b.dataset.step; render(false); }));
    $("#meter", main).addEventListener("change", (e) => { S.meter = e.target.value; render(false); });
  };

  PAGE.meters = async function (main, id) {
    // Ages are measured on the platform's clock (the demo's runs faster than the wall's).
    const [ms, model] = await Promise.all([api(site() + "/meters"), api(site() + "/model")]);
    if (stale(id)) return;
    S.model = model;
    const clock = new Date(model.now).getTime();
    const reg = {};
    S.model.meters.forEach((m) => { reg[m.id] = m; });
    const nowDay = F.local(clock).slice(0, 10);
    const soonDay = F.local(clock + 30 * 86400000).slice(0, 10);
    let staleN = 0, dueN = 0, rows = "";
    for (const m of ms) {
      const r = reg[m.id] || {};
      const age = m.time ? Math.max(0, (clock - new Date(m.time).getTime()) / 1000) : null;
      // Stale: no reading for three reporting intervals (DOMAIN.md); a meter whose register
      // gives no interval is taken to report every 5 minutes.
      const isStale = m.missing || (age != null && age > 3 * (r.interval_seconds > 0 ? r.interval_seconds : 300));
      if (isStale) staleN++;
      const due = r.verification_due || "";
      const dueCls = due && due < nowDay ? "bad" : due && due <= soonDay ? "warn" : "";
      if (dueCls) dueN++;
      const pts = m.points || {};
      const total = pts.total || pts.totalizer, flow = pts.flow;
      const q = total ? total.quality : flow ? flow.quality : "";
      rows += '<tr data-meter="' + esc(m.id) + '" class="' + (m.missing ? "missing" : isStale ? "stale" : "") + '"><td class="name">' + esc(m.name || m.id) + '</td><td class="muted hide-phone">' + esc(m.id) + "</td><td>" + esc(t("meters.level." + m.level)) + '</td><td class="num">' + esc(total && total.value != null ? F.num(total.value, 2) + " m³" : t("common.none")) + '</td><td class="num">' + esc(flow && flow.value != null ? F.flow(flow.value) : t("common.none")) + "</td><td class=\"hide-phone\">" + esc(m.time ? F.time(m.time) : t("common.none")) + "</td><td>" + (m.missing ? '<span class="pill bad">' + esc(t("meters.missing")) + "</span>" : esc(F.age(age)) + (isStale ? ' <span class="pill warn">' + esc(t("meters.stale")) + "</span>" : "")) + "</td><td>" + (q ? '<span class="pill ' + (q === "good" ? "ok" : q === "bad" ? "bad" : "warn") + '">' + esc(t("quality." + q)) + "</span>" : "") + "</td><td>" + (due ? esc(due) + (dueCls ? ' <span class="pill ' + dueCls + '">' + esc(t(dueCls === "bad" ? "meters.overdue" : "meters.soon")) + "</span>" : "") : t("common.none")) + "</td></tr>";
    }
    let h = "<h1>" + esc(t("meters.title")) + '</h1><p class="sub">' + esc(t("meters.summary", { n: ms.length, stale: staleN, due: dueN })) + "</p>";
    h += '<section class="card"><div class="scroll"><table><thead><tr><th>' + esc(t("common.name")) + "</th><th class=\"hide-phone\">" + esc(t("meters.id")) + "</th><th>" + esc(t("meters.level")) + '</th><th class="num">' + esc(t("meters.last")) + '</th><th class="num">' + esc(t("meters.flow")) + "</th><th class=\"hide-phone\">" + esc(t("meters.time")) + "</th><th>" + esc(t("meters.age")) + "</th><th>" + esc(t("meters.quality")) + "</th><th>" + esc(t("meters.due")) + "</th></tr></thead><tbody>" + rows + "</tbody></table></div></section>";
    main.innerHTML = h;
  };

  // ----- withdrawal plans: burn-down with the projection and its range -----
  function burndown(p) {
    const W = 420, H = 200, L = 60, R = 12, T = 12, B = 26;
    const t0 = new Date(p.from).getTime(), t1 = new Date(p.to).getTime(), ta = Math.min(new Date(p.at).getTime(), t1);
    const projs = [p.projection_linear].concat(p.projection_last_year != null ? [p.projection_last_year] : []);
    // The range: the two projections, widened by the share of the period without data, since a
    // gap could hide use at any pace.
    const gap = (1 - p.coverage) * p.projected;
    const lo = Math.max(p.used, Math.min.apply(null, projs) - gap), hi = Math.max.apply(null, projs) + gap;
    const ticks = niceTicks(0, Math.max(hi, p.volume) * 1.05, 4);
    const top = ticks[ticks.length - 1];
    const X = (x) => L + (W - L - R) * (x - t0) / (t1 - t0 || 1), Y = (v) => T + (H - T - B) * (1 - v / top);
    let s = '<svg viewBox="0 0 ' + W + " " + H + '" role="img">';
    for (const v of ticks) s += '<line x1="' + L + '" x2="' + (W - R) + '" y1="' + Y(v).toFixed(1) + '" y2="' + Y(v).toFixed(1) + '" stroke="#e2e8f0"></line><text x="' + (L - 6) + '" y="' + (Y(v) + 4).toFixed(1) + '" text-anchor="end" font-size="11" fill="#64748b">' + esc(F.num(v, 0)) + "</text>";
    s += '<polygon points="' + [X(ta), Y(p.used), X(t1), Y(hi), X(t1), Y(lo)].map((v) => v.toFixed(1)).join(" ") + '" fill="#0e7490" fill-opacity=".14"></polygon>';
    s += '<line x1="' + L + '" x2="' + (W - R) + '" y1="' + Y(p.volume).toFixed(1) + '" y2="' + Y(p.volume).toFixed(1) + '" stroke="#b91c1c" stroke-width="1.5"></line>';
    s += '<text x="' + (W - R) + '" y="' + (Y(p.volume) - 5).toFixed(1) + '" text-anchor="end" font-size="11" fill="#b91c1c">' + esc(t("plans.plan", { v: F.vol(p.volume) })) + "</text>";
    s += '<line x1="' + X(t0).toFixed(1) + '" y1="' + Y(0).toFixed(1) + '" x2="' + X(ta).toFixed(1) + '" y2="' + Y(p.used).toFixed(1) + '" stroke="#0e7490" stroke-width="2.5"></line>';
    s += '<line x1="' + X(ta).toFixed(1) + '" y1="' + Y(p.used).toFixed(1) + '" x2="' + X(t1).toFixed(1) + '" y2="' + Y(p.projected).toFixed(1) + '" stroke="#0e7490" stroke-width="2" stroke-dasharray="6 4"></line>';
    s += '<circle cx="' + X(ta).toFixed(1) + '" cy="' + Y(p.used).toFixed(1) + '" r="3.5" fill="#0e7490"></circle>';
    s += '<text x="' + L + '" y="' + (H - 8) + '" font-size="11" fill="#64748b">' + esc(F.date(p.from)) + '</text><text x="' + (W - R) + '" y="' + (H - 8) + '" text-anchor="end" font-size="11" fill="#64748b">' + esc(F.date(t1 - 1)) + "</text>";
    s += "</svg>";
    return { svg: s, lo: lo, hi: hi };
  }

  PAGE.plans = async function (main, id) {
    const plans = await api(site() + "/plans");
    if (stale(id)) return;
    let h = "<h1>" + esc(t("plans.title")) + '</h1><p class="sub">' + esc(S.model.name) + "</p>";
    if (!plans.length) { main.innerHTML = h + '<div class="card muted">' + esc(t("plans.none")) + "</div>"; return; }
    // The plans in force at the platform's clock are drawn; the others are listed below.
    const at = new Date(plans[0].at).getTime();
    const inForce = plans.filter((p) => new Date(p.from).getTime() <= at && at < new Date(p.to).getTime());
    const others = plans.filter((p) => !inForce.includes(p));
    const titleOf = (p) => (p.source ? t("plans.source", { v: nodeName(p.source) }) : t("plans.site")) + " · " + (p.period === "month" ? p.year + "-" + String(p.month).padStart(2, "0") : String(p.year));
    h += '<div class="plans">';
    for (const p of inForce) {
      const bd = burndown(p);
      const low = p.coverage < LOW_COVERAGE;
      const cls = p.projected_over ? "bad" : p.crossed.length || low ? "warn" : "ok";
      const title = titleOf(p);
      h += '<section class="card plan" data-plan="' + esc(p.plan) + '"><h3>' + esc(title) + ' <span class="pill ' + cls + '">' + esc(p.projected_over ? t("plans.over") : p.crossed.length ? t("plans.crossed", { v: F.pct(p.crossed[p.crossed.length - 1], 0) }) : low ? t("plans.nodata") : t("plans.ok")) + "</span></h3>";
      h += '<div class="figs"><span>' + esc(t("plans.used", { v: F.vol(p.used) + " (" + F.pct(p.used_fraction, 1) + ")" })) + "</span><span>" + esc(t("plans.remaining", { v: F.vol(p.remaining) })) + "</span><span>" + esc(t("plans.projected", { v: F.vol(p.projected) })) + "</span><span>" + esc(t("plans.range", { lo: F.vol(bd.lo), hi: F.vol(bd.hi) })) + "</span></div>";
      h += '<div class="chart">' + bd.svg + '<div class="legend"><span><i style="background:#0e7490"></i>' + esc(t("plans.legend.used")) + '</span><span><i style="background:repeating-linear-gradient(90deg,#0e7490 0 6px,transparent 6px 10px)"></i>' + esc(t("plans.legend.proj")) + '</span><span><i class="box" style="background:rgba(14,116,144,.2)"></i>' + esc(t("plans.legend.band")) + "</span></div></div>";
      h += '<div class="figs muted">' + (p.coverage < LOW_COVERAGE ? '<span class="pill warn">' + esc(t("common.lowcov", { v: F.pct(p.coverage, 0) })) + "</span>" : "") + covBar(p.coverage) + (p.approval ? "<span>" + esc(t("plans.approval", { v: p.approval })) + "</span>" : "") + "</div></section>";
    }
    h += "</div>";
    if (others.length) {
      h += '<section class="card"><h2>' + esc(t("plans.others")) + '</h2><div class="scroll"><table><thead><tr><th>' + esc(t("common.name")) + '</th><th class="num">' + esc(t("plans.th.plan")) + '</th><th class="num">' + esc(t("plans.th.used")) + '</th><th class="num">' + esc(t("plans.th.share")) + "</th><th>" + esc(t("plans.th.status")) + "</th></tr></thead><tbody>";
      for (const p of others) {
        const future = new Date(p.from).getTime() > at;
        const cls = p.used > p.volume ? "bad" : p.crossed.length || p.coverage < LOW_COVERAGE ? "warn" : "ok";
        const word = p.used > p.volume ? t("plans.exceeded") : p.coverage < LOW_COVERAGE ? t("plans.nodata") : t("plans.closed");
        h += '<tr data-plan="' + esc(p.plan) + '"><td>' + esc(titleOf(p)) + '</td><td class="num">' + esc(F.vol(p.volume)) + '</td><td class="num">' + esc(future ? t("common.none") : F.vol(p.used)) + '</td><td class="num">' + esc(future ? t("common.none") : F.pct(p.used_fraction, 1)) + "</td><td>" + (future ? '<span class="pill">' + esc(t("plans.future")) + "</span>" : '<span class="pill ' + cls + '">' + esc(word) + "</span> " + covBar(p.coverage).replace('class="cov"', 'class="cov" style="display:inline-flex"')) + "</td></tr>";
      }
      h += "</tbody></table></div></section>";
    }
    main.innerHTML = h;
  };

  // ----- alerts (from the alerting API; hidden when the platform has none) -----
  async function fetchAlerts(siteID) {
    if (S.alerts === false) return null;
    try {
      const r = await api("/api/v1/alerts?site=" + encodeURIComponent(siteID));
      S.alerts = true;
      return r.alerts || [];
    } catch (e) {
      if (e.status === 404) { S.alerts = false; applyChrome(); return null; }
      throw e;
    }
  }
  function dialog(html, onOK) {
    const ov = document.createElement("div");
    ov.className = "overlay";
    ov.innerHTML = '<form class="card dialog">' + html + '<p class="err" hidden></p><div class="bar"><button class="btn">' + esc(t("common.ok")) + '</button><button type="button" class="btn light" data-cancel>' + esc(t("alerts.cancel")) + "</button></div></form>";
    document.body.appendChild(ov);
    const f = ov.querySelector("form");
    ov.querySelector("[data-cancel]").addEventListener("click", () => ov.remove());
    f.addEventListener("submit", async (e) => {
      e.preventDefault();
      try {
        await onOK(f);
        ov.remove();
      } catch (err) {
        if (err.status === 401) { ov.remove(); return; }
        const p = f.querySelector(".err");
        p.textContent = t("alerts.failed", { msg: err.message });
        p.hidden = false;
      }
    });
  }
  // silenceMatchers select this one alert: every label it carries (alertname, site, family and
  // what it is about: meter, edge, node, plan, period...) but severity, which an escalation from
  // warning to critical changes, as alerting leaves it out of the alert's identity.
  function silenceMatchers(a) {
    const ls = Object.assign({}, a.labels || {}, { alertname: a.name || a.rule, site: a.site });
    delete ls.severity;
    return Object.keys(ls).sort().map((k) => ({ name: k, op: "=", value: ls[k] }));
  }
  PAGE.alerts = async function (main, id) {
    const alerts = await fetchAlerts(S.site);
    if (stale(id)) return;
    let h = "<h1>" + esc(t("alerts.title")) + '</h1><p class="sub">' + esc(S.model.name) + "</p>";
    if (alerts == null) { main.innerHTML = h + '<div class="card muted" data-alerts="unavailable">' + esc(t("alerts.unavailable")) + "</div>"; return; }
    const active = alerts.filter((a) => a.state !== "resolved");
    if (!active.length) { main.innerHTML = h + '<div class="card muted">' + esc(t("alerts.none")) + "</div>"; return; }
    h += '<section class="card"><div class="scroll"><table><thead><tr><th>' + esc(t("alerts.severity")) + "</th><th>" + esc(t("common.name")) + "</th><th>" + esc(t("alerts.summary")) + "</th><th>" + esc(t("alerts.since")) + "</th><th>" + esc(t("alerts.state")) + "</th><th></th></tr></thead><tbody>";
    for (const a of active) {
      const sev = a.severity === "critical" ? "bad" : a.severity === "warning" ? "warn" : "";
      h += '<tr data-alert="' + esc(a.id) + '"><td><span class="pill ' + sev + '">' + esc(t("sev." + a.severity)) + "</span></td><td>" + esc(a.name || a.rule) + "</td><td>" + esc(S.lang === "zh-CN" && a.summary_zh ? a.summary_zh : a.summary) + "</td><td>" + esc(a.starts_at || a.active_at ? F.time(a.starts_at || a.active_at) : "") + "</td><td>" + esc(t("state." + a.state)) + (a.acknowledged_by ? '<div class="muted">' + esc(t("alerts.acked", { who: a.acknowledged_by })) + "</div>" : "") + (a.silenced ? ' <span class="pill">' + esc(t("alerts.silenced")) + "</span>" : "") + '</td><td><button class="btn small" data-ack="' + esc(a.id) + '"' + (a.acknowledged_by || a.state !== "firing" ? " disabled" : "") + ">" + esc(t("alerts.ack")) + '</button> <button class="btn small light" data-silence="' + esc(a.id) + '">' + esc(t("alerts.silence")) + "</button></td></tr>";
    }
    main.innerHTML = h + "</tbody></table></div></section>";
    main.querySelectorAll("[data-ack]").forEach((b) => b.addEventListener("click", () => dialog("<h2>" + esc(t("alerts.ack")) + "</h2><label>" + esc(t("alerts.comment")) + '<textarea name="comment" rows="3"></textarea></label>', async (f) => {
      await api("/api/v1/alerts/" + encodeURIComponent(b.dataset.ack) + "/ack", { method: "POST", body: { comment: f.comment.value } });
      render(true);
    })));
    main.querySelectorAll("[data-silence]").forEach((b) => b.addEventListener("click", () => {
      const a = active.find((x) => String(x.id) === b.dataset.silence);
      dialog("<h2>" + esc(t("alerts.silence")) + "</h2><label>" + esc(t("alerts.silence.for")) + '<select name="hours">' + [1, 4, 24, 72].map((n) => '<option value="' + n + '">' + esc(t("alerts.silence.h", { n: n })) + "</option>").join("") + "</select></label><label>" + esc(t("alerts.comment")) + '<textarea name="comment" rows="3"></textarea></label>', async (f) => {
        const start = new Date();
        await api("/api/v1/silences", { method: "POST", body: {
          matchers: silenceMatchers(a),
          starts_at: start.toISOString(), ends_at: new Date(start.getTime() + Number(f.hours.value) * 3600000).toISOString(), comment: f.comment.value } });
        render(true);
      });
    }));
  };

  // ----- park: every enterprise, ranked by reuse rate -----
  PAGE.park = async function (main, id) {
    const parkID = S.model.park;
    let h = "<h1>" + esc(t("park.title")) + '</h1><p class="sub">' + esc(parkID || "") + "</p>";
    if (!parkID) { main.innerHTML = h + '<div class="card muted">' + esc(t("park.none")) + "</div>"; return; }
    const [parks, total] = await Promise.all([api("/api/v1/parks"), api("/api/v1/parks/" + encodeURIComponent(parkID) + "/indicators?period=day")]);
    const park = parks.find((p) => p.id === parkID) || { sites: [S.site] };
    const totalR = total.declared === "reuse_rate_with_vu" ? total.reuse_rate_with_vu : total.reuse_rate;
    h += '<div class="grid"><section class="tile" data-tile="park-r"><div class="label">' + esc(t("park.total.r")) + '</div><div class="value">' + esc(F.pct(totalR, 2)) + '</div><div class="meta">' + covBar(total.coverage) + '</div></section><section class="tile" data-tile="park-vi"><div class="label">' + esc(t("park.total.vi")) + '</div><div class="value">' + esc(F.vol(total.volumes.vi)) + '</div><div class="meta">' + esc(t("park.count", { n: park.sites.length })) + "</div></section></div>";
    const rows = await Promise.all(park.sites.map(async (sid) => {
      const base = "/api/v1/sites/" + encodeURIComponent(sid);
      const [ind, plans, model, alerts] = await Promise.all([api(base + "/indicators?period=day"), api(base + "/plans"), api(base + "/model"), fetchAlerts(sid)]);
      const r = ind.declared === "reuse_rate_with_vu" ? ind.reuse_rate_with_vu : ind.reuse_rate;
      const over = plans.some((p) => p.projected_over), crossed = Math.max.apply(null, [0].concat(plans.map((p) => (p.crossed.length ? p.crossed[p.crossed.length - 1] : 0))));
      return { id: sid, name: model.name, r: r, cov: ind.coverage, vi: ind.volumes.vi, plans: plans.length, over: over, crossed: crossed,
        alerts: alerts == null ? null : alerts.filter((a) => a.state !== "resolved").length };
    }));
    if (stale(id)) return;
    rows.sort((a, b) => (b.r == null ? -1 : b.r) - (a.r == null ? -1 : a.r));
    // The bars start 5 points below the lowest rate, so that close rates still look different.
    const rs = rows.filter((x) => x.r != null).map((x) => x.r);
    const floor = rs.length ? Math.max(0, Math.min.apply(null, rs) - 0.05) : 0;
    h += '<section class="card"><div class="scroll"><table><thead><tr><th class="num">' + esc(t("park.rank")) + "</th><th>" + esc(t("park.site")) + '</th><th class="num">' + esc(t("park.r")) + '</th><th></th><th class="num">' + esc(t("park.intake")) + "</th><th>" + esc(t("park.plan")) + "</th>" + (S.alerts === false ? "" : '<th class="num">' + esc(t("park.alerts")) + "</th>") + "</tr></thead><tbody>";
    rows.forEach((x, i) => {
      const low = x.cov < LOW_COVERAGE;
      const plan = !x.plans ? '<span class="pill">' + esc(t("park.plan.none")) + "</span>" : x.over ? '<span class="pill bad">' + esc(t("park.plan.over")) + "</span>" : x.crossed ? '<span class="pill warn">' + esc(t("park.plan.warn", { v: F.pct(x.crossed, 0) })) + "</span>" : '<span class="pill ok">' + esc(t("park.plan.ok")) + "</span>";
      h += '<tr data-site="' + esc(x.id) + '"><td class="num">' + (i + 1) + '</td><td><a class="link" href="#/overview/' + encodeURIComponent(x.id) + '">' + esc(x.name) + '</a></td><td class="num">' + esc(F.pct(x.r, 2)) + (low ? ' <span class="pill warn">' + esc(t("common.coverage", { v: F.pct(x.cov, 0) })) + "</span>" : "") + '</td><td style="min-width:90px"><div class="rankbar" style="width:' + (x.r == null ? 0 : Math.round(Math.max(0.02, (x.r - floor) / (1 - floor || 1)) * 100)) + '%"></div></td><td class="num">' + esc(F.vol(x.vi)) + "</td><td>" + plan + "</td>" + (S.alerts === false ? "" : '<td class="num">' + esc(x.alerts == null ? t("common.none") : x.alerts) + "</td>") + "</tr>";
    });
    main.innerHTML = h + "</tbody></table></div></section>";
  };

  // ---------- evidence packs ----------
  // Each format is a plain link to the report API (a GET, so the session cookie is enough). A
  // click fetches the file first, so that a refusal (403 for a credential below auditor) or an
  // error (400 for a future period, 404 without data) shows the server's message on the page
  // rather than a broken download; the file is then saved under the server's name.
  const PACK_FORMATS = ["pdf", "xlsx", "csv", "zip"];
  function packPeriod(c) {
    const y = /^\d{4}$/;
    if (c.kind === "month") return /^\d{4}-\d{2}$/.test(c.month) ? c.month : null;
    if (c.kind === "year") return y.test(c.year) ? c.year : null;
    if (!y.test(c.from) || !y.test(c.to) || +c.from > +c.to) return null;
    return c.from === c.to ? c.from : c.from + ".." + c.to;
  }
  function packURL(period, format) {
    return site() + "/reports/" + encodeURIComponent(period) + "." + format + "?lang=" + (S.lang === "en" ? "en" : "zh");
  }
  function packFile(period, format) { return S.site + "-" + period.replace("..", "-") + "." + format; }
  function fileSize(n) { return n < 1048576 ? F.num(n / 1024, 0) + " KB" : F.num(n / 1048576, 1) + " MB"; }

  PAGE.reports = async function (main) {
    const now = F.local(S.model ? S.model.now : new Date());
    if (!S.pack) S.pack = { kind: "month", month: now.slice(0, 7), year: now.slice(0, 4), from: String(+now.slice(0, 4) - 2), to: now.slice(0, 4) };
    const c = S.pack;
    const kinds = ["month", "year", "years"];
    let h = "<h1>" + esc(t("packs.title")) + '</h1><p class="sub">' + esc(t("packs.intro")) + "</p>";
    h += '<section class="card"><h2>' + esc(t("packs.period")) + '</h2><div class="bar"><div class="seg" role="group">' +
      kinds.map((k) => '<button type="button" data-kind="' + k + '" class="' + (c.kind === k ? "on" : "") + '">' + esc(t("packs.kind." + k)) + "</button>").join("") + "</div>";
    h += '<form class="custom" id="pack-form">';
    if (c.kind === "month") h += "<label>" + esc(t("packs.month")) + ' <input type="month" name="month" value="' + esc(c.month) + '" pattern="\\d{4}-\\d{2}" placeholder="YYYY-MM" required></label>';
    if (c.kind === "year") h += "<label>" + esc(t("packs.year")) + ' <input type="number" name="year" min="2000" max="2999" step="1" value="' + esc(c.year) + '" required></label>';
    if (c.kind === "years") {
      h += "<label>" + esc(t("packs.from")) + ' <input type="number" name="from" min="2000" max="2999" step="1" value="' + esc(c.from) + '" required></label>';
      h += "<label>" + esc(t("packs.to")) + ' <input type="number" name="to" min="2000" max="2999" step="1" value="' + esc(c.to) + '" required></label>';
    }
    h += '</form></div><p class="muted" id="pack-span"></p><h2>' + esc(t("packs.format")) + '</h2><div class="packs">' +
      PACK_FORMATS.map((f) => '<a class="pack" data-format="' + f + '"><strong>' + esc(t("packs.fmt." + f)) + "</strong><span>" + esc(t("packs.fmt." + f + ".what")) + "</span></a>").join("") + "</div>";
    h += '<p id="pack-msg" role="status" hidden></p></section>';
    h += '<section class="card"><h2>' + esc(t("packs.notes")) + '</h2><ul class="notes"><li>' + esc(t("packs.note.role")) + "</li><li>" + esc(t("packs.note.partial")) + "</li><li>" + esc(t("packs.note.verify")) + "</li></ul></section>";
    main.innerHTML = h;

    const form = main.querySelector("#pack-form"), msg = main.querySelector("#pack-msg");
    const say = (cls, text) => { msg.className = cls; msg.textContent = text; msg.hidden = !text; };
    function update() {
      for (const k of ["month", "year", "from", "to"]) if (form[k]) c[k] = form[k].value.trim();
      const period = packPeriod(c);
      main.querySelector("#pack-span").textContent = period ? t("packs.span", { p: period, lang: t("packs.lang") }) : t("packs.invalid");
      main.querySelectorAll("a.pack").forEach((a) => {
        const f = a.dataset.format;
        if (period) { a.href = packURL(period, f); a.download = packFile(period, f); a.removeAttribute("aria-disabled"); } else { a.removeAttribute("href"); a.setAttribute("aria-disabled", "true"); }
      });
      say("", "");
    }
    main.querySelectorAll("[data-kind]").forEach((b) => b.addEventListener("click", () => { c.kind = b.dataset.kind; render(false); }));
    form.addEventListener("input", update);
    form.addEventListener("submit", (e) => e.preventDefault());
    main.querySelectorAll("a.pack").forEach((a) => a.addEventListener("click", async (e) => {
      e.preventDefault();
      if (!a.href || main.dataset.busy) return;
      const file = a.download;
      main.dataset.busy = "1";
      a.classList.add("busy");
      say("muted", t("packs.working", { f: file }));
      try {
        const res = await fetch(a.href, { credentials: "same-origin" });
        if (res.status === 401) { showLogin(); say("err", t("packs.login")); return; }
        if (!res.ok) {
          let m = res.statusText;
          try { const e = (await res.json()).error; m = (e && (e.message || (typeof e === "string" ? e : ""))) || m; } catch (err) { /* not JSON: the status text */ }
          say("err", t(res.status === 403 ? "packs.denied" : "packs.failed", { msg: m }));
          return;
        }
        const blob = await res.blob();
        const u = URL.createObjectURL(blob);
        const save = document.createElement("a");
        save.href = u;
        save.download = file;
        document.body.appendChild(save);
        save.click();
        save.remove();
        setTimeout(() => URL.revokeObjectURL(u), 60000);
        say("ok", t("packs.done", { f: file, size: fileSize(blob.size) }));
      } catch (err) {
        say("err", t("packs.failed", { msg: err.message }));
      } finally {
        delete main.dataset.busy;
        a.classList.remove("busy");
      }
    }));
    update();
  };

  // ---------- boot ----------
  async function boot() {
    if (location.pathname === "/login") {
      const m = location.hash.match(/token=([^&]+)/);
      history.replaceState(null, "", "/");
      if (m) await login(decodeURIComponent(m[1]));
    }
    S.lang = localStorage.getItem("aqualoop.lang");
    if (!CAT[S.lang]) S.lang = null;
    try {
      S.sites = await api("/api/v1/sites");
    } catch (e) {
      if (!S.lang) S.lang = (navigator.language || "").toLowerCase().startsWith("zh") ? "zh-CN" : "en";
      applyChrome();
      if (e.status !== 401) $("#main").innerHTML = '<div class="card err">' + esc(t("common.error", { msg: e.message })) + "</div>";
      return false;
    }
    whoami();
    const sel = $("#site");
    sel.innerHTML = S.sites.map((s) => '<option value="' + esc(s.id) + '">' + esc(s.name || s.id) + "</option>").join("");
    const saved = localStorage.getItem("aqualoop.site");
    if (!parseHash().site && saved && S.sites.some((s) => s.id === saved)) S.site = saved;
    sel.addEventListener("change", () => { location.hash = "#/" + S.page + "/" + encodeURIComponent(sel.value); });
    window.addEventListener("hashchange", () => route().catch(routeError));
    await route();
    return true;
  }
  function routeError(e) { if (e.status !== 401) $("#main").innerHTML = '<div class="card err">' + esc(t("common.error", { msg: e.message })) + "</div>"; }

  $("#lang").addEventListener("click", () => {
    S.lang = S.lang === "en" ? "zh-CN" : "en";
    localStorage.setItem("aqualoop.lang", S.lang);
    applyChrome();
    render(false);
  });
  $("#logout").addEventListener("click", () => { logout(); });
  $("#login-form").addEventListener("submit", async (e) => {
    e.preventDefault();
    if (await login($("#login-token").value)) {
      $("#login-token").value = "";
      if (!S.sites.length) boot().catch(routeError); else render(false);
    }
  });
  // A page kept in the back-forward cache would hold its event stream open, and a browser opens
  // at most six HTTP/1.1 connections to one host: close the stream when the page is hidden away.
  window.addEventListener("pagehide", () => { if (S.es) { S.es.close(); S.es = null; } });
  window.addEventListener("pageshow", (e) => { if (e.persisted && S.site) { S.opened = true; connectLive(); } });
  boot().catch(routeError);
})();
